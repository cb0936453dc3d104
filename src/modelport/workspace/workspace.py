"""The Workspace: a metadata store plus an artifact store, found by name or by a config file."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from modelport.errors import WorkspaceException
from modelport.names import check_workspace_name
from modelport.workspace import config as cfg
from modelport.workspace.artifacts import ArtifactStore
from modelport.workspace.store import MetadataStore
from modelport.workspace.tables import workspace_info

SECRET_STORAGE_OPTIONS = {"key", "secret", "token", "password", "aws_secret_access_key", "aws_access_key_id"}


def current_user() -> str:
    """``user@host`` recorded as ``created_by`` on registered objects."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _storable_options(options: dict[str, Any]) -> dict[str, Any]:
    """Storage options safe to keep in the shared database: literal secrets are dropped."""
    return {
        k: v
        for k, v in options.items()
        if k not in SECRET_STORAGE_OPTIONS or (isinstance(v, str) and v.startswith("${") and v.endswith("}"))
    }


class Workspace:
    """A modelport workspace: model registry, environments and services of one team or project.

    Open one with :meth:`create`, :meth:`get` or :meth:`from_config`.
    """

    # Its stores, public to the layers above (registries, services, targets):
    metadata_store: MetadataStore  # the database: registries, services, compute targets
    artifact_store: ArtifactStore  # model files and source snapshots (a folder or s3://)
    store_location: cfg.WorkspaceLocation  # where both live, and the config file that named it

    def __init__(self, location: cfg.WorkspaceLocation, *, _create: bool = False) -> None:
        self.store_location = location
        self.metadata_store = MetadataStore(location.metadata_url)
        if _create:
            self.metadata_store.ensure_schema()
            return
        if self.metadata_store.is_empty():
            raise WorkspaceException(
                f"{self.metadata_store.safe_url} holds no modelport workspace. Fix: create one with "
                f"`modelport workspace create {location.name}` or Workspace.create({location.name!r}, ...)."
            )
        self.metadata_store.ensure_schema()
        row = self._read_info()
        if row is None or row.name != location.name:
            held = f"workspace {row.name!r}" if row is not None else "no workspace"
            raise WorkspaceException(
                f"{self.metadata_store.safe_url} holds {held}, not {location.name!r}. Fix: open the "
                "workspace by its own name, or point metadata_url at another database."
            )
        self._apply_info(row)

    # ----------------------------------------------------------------- opening
    @classmethod
    def create(
        cls,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        metadata_url: str | None = None,
        artifact_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
        exist_ok: bool = False,
        tags: dict[str, str] | None = None,
        location: str | None = None,
        description: str | None = None,
    ) -> Workspace:
        """Create a workspace (or, with ``exist_ok``, open the existing one of that name).

        Its config goes to ``<path>/.modelport/config.json`` (default: ``$MODELPORT_HOME/workspaces/<name>``),
        metadata to ``metadata_url`` (default: SQLite in that folder; any ``postgresql://`` URL works),
        artifacts to ``artifact_url`` (default: a folder beside it; any ``s3://bucket/prefix`` works,
        with ``storage_options`` ``endpoint_url``/``key``/``secret``).
        """
        check_workspace_name(name)
        root = (Path(path) / ".modelport") if path is not None else cfg.modelport_home() / "workspaces" / name
        root = root.resolve()
        config_path = root / "config.json"
        if config_path.is_file():
            existing = cfg.parse_config(config_path)
            if exist_ok and existing.name == name:
                return cls.get(name, path=str(config_path))
            raise WorkspaceException(
                f"A workspace ({existing.name!r}) already exists at {config_path}. Fix: open it with "
                f"Workspace.get / from_config, pass exist_ok=True, or choose another path."
            )
        created_root = not root.exists()
        loc = cfg.WorkspaceLocation(
            name=name,
            metadata_url=metadata_url or f"sqlite:///{root / 'metadata.db'}",
            artifact_url=artifact_url or str(root / "artifacts"),
            storage_options=dict(storage_options or {}),
            config_path=config_path,
        )
        try:
            ws = cls(loc, _create=True)
            ws._initialise(tags or {}, location, description, exist_ok)
            cfg.write_config_file(config_path, loc, relative=True)
            cfg.update_index(name, config_path)
        except BaseException:
            if created_root:
                shutil.rmtree(root, ignore_errors=True)
            raise
        return ws

    def _initialise(
        self, tags: dict[str, str], location: str | None, description: str | None, exist_ok: bool
    ) -> None:
        ArtifactStore(
            str(self.store_location.artifact_url), self.store_location.storage_options
        ).ensure_root()
        with self.metadata_store.write() as conn:
            row = conn.execute(select(workspace_info)).first()
            if row is None:
                conn.execute(
                    insert(workspace_info).values(
                        id=1,
                        name=self.store_location.name,
                        created_time=datetime.now(UTC),
                        location=location,
                        description=description,
                        tags=dict(tags),
                        artifact_url=str(self.store_location.artifact_url),
                        storage_options=_storable_options(self.store_location.storage_options),
                    )
                )
            elif row.name != self.store_location.name or not exist_ok:
                raise WorkspaceException(
                    f"The database {self.metadata_store.safe_url} already holds workspace {row.name!r}. "
                    f"Fix: open it with Workspace.get({row.name!r}, metadata_url=...), or use an empty "
                    "database."
                )
        info = self._read_info()
        assert info is not None
        self._apply_info(info)

    def _read_info(self) -> Any:
        with self.metadata_store.read() as conn:
            return conn.execute(select(workspace_info)).first()

    def _apply_info(self, row: Any) -> None:
        self.name: str = row.name
        self.location: str | None = row.location
        self.description: str | None = row.description
        self.tags: dict[str, str] = dict(row.tags or {})
        self.created_time: datetime = row.created_time
        self.artifact_url: str = self.store_location.artifact_url or row.artifact_url
        self.artifact_store = ArtifactStore(
            self.artifact_url, {**(row.storage_options or {}), **self.store_location.storage_options}
        )

    @classmethod
    def get(
        cls,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        metadata_url: str | None = None,
        artifact_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> Workspace:
        """Open an existing workspace by name: from ``metadata_url``, from the config at ``path``, or
        through the per-user index of created workspaces."""
        if metadata_url is not None:
            loc = cfg.WorkspaceLocation(name, metadata_url, artifact_url, dict(storage_options or {}))
            return cls(loc)
        if path is not None:
            loc = cfg.parse_config(cfg.find_config(path))
            if loc.name != name:
                raise WorkspaceException(
                    f"The config found from {path} is for workspace {loc.name!r}, not {name!r}."
                )
            return cls(loc)
        loc_or_none = cfg.lookup_index(name)
        if loc_or_none is None:
            known = ", ".join(sorted(cfg.read_index())) or "none"
            raise WorkspaceException(
                f"Workspace {name!r} not found (known workspaces: {known}). Fix: create it with "
                f"`modelport workspace create {name}`, or open it with path= or metadata_url=."
            )
        return cls(loc_or_none)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, _file_name: str | None = None, **_ignored: Any
    ) -> Workspace:
        """Open the workspace whose config is found from ``path`` (default: the current folder) upward.

        ``.modelport/config.json`` is tried first, then Azure ML's ``.azureml/config.json``,
        ``aml_config/config.json`` and ``config.json`` (which name a local workspace).
        """
        return cls(cfg.parse_config(cfg.find_config(path, _file_name)))

    @staticmethod
    def list() -> dict[str, str]:
        """Every workspace created by this user: name → config file."""
        return cfg.read_index()

    # ----------------------------------------------------------------- use
    def write_config(self, path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> Path:
        """Write ``<path>/.modelport/<file_name or config.json>`` for this workspace; return the path."""
        target = Path(path or Path.cwd()) / ".modelport" / (file_name or "config.json")
        loc = cfg.WorkspaceLocation(
            self.name,
            self.store_location.metadata_url,
            self.artifact_url,
            self.store_location.storage_options,
        )
        cfg.write_config_file(target.resolve(), loc)
        return target

    @property
    def metadata_url(self) -> str:
        """The metadata database URL, password masked."""
        return self.metadata_store.safe_url

    def get_details(self) -> dict[str, Any]:
        """A plain dict describing the workspace (what ``modelport workspace show`` prints)."""
        return {
            "name": self.name,
            "location": self.location,
            "description": self.description,
            "tags": self.tags,
            "createdTime": self.created_time.isoformat() if self.created_time else None,
            "metadataUrl": self.metadata_url,
            "artifactUrl": self.artifact_url,
            "configPath": str(self.store_location.config_path) if self.store_location.config_path else None,
        }

    def __repr__(self) -> str:
        return f"Workspace.get(name={self.name!r})"
