"""Workspace configuration files: finding them, reading them, writing them, and the name index.

A modelport config (``.modelport/config.json``) says where a workspace's data lives::

    {"workspace_name": "demo", "metadata_url": "sqlite:///metadata.db",
     "artifact_url": "artifacts", "storage_options": {}}

Relative SQLite paths and relative artifact folders are resolved against the folder holding
the config file. An Azure ML ``config.json`` (``subscription_id``/``resource_group``/
``workspace_name``, or ``Scope``) names a workspace; modelport opens the local workspace of
that name through the index in ``$MODELPORT_HOME/workspaces.json`` (default ``~/.modelport``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from modelport._io import atomic_write_text, file_lock
from modelport.errors import UserErrorException, WorkspaceException

MODELPORT_CONFIG = (".modelport", "config.json")
# Azure ML's search order: each (folder, file) pair is tried through every parent before the next.
AZUREML_CONFIGS = (
    (".azureml", "config.json"),
    (".azureml", "project.json"),
    ("aml_config", "config.json"),
    ("aml_config", "project.json"),
    ("", "config.json"),
    ("", "project.json"),
)


def modelport_home() -> Path:
    """The per-user folder holding the workspace index and default workspace folders."""
    return Path(os.environ.get("MODELPORT_HOME") or Path.home() / ".modelport")


@dataclass
class WorkspaceLocation:
    """Where a workspace's metadata and artifacts live (absolute, resolved)."""

    name: str
    metadata_url: str
    artifact_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None


def _absolute_metadata_url(url: str, base: Path) -> str:
    if url.startswith("sqlite:///"):
        database = make_url(url).database or ""
        if database and database != ":memory:" and not os.path.isabs(database):
            return f"sqlite:///{(base / database).resolve()}"
    return url


def _absolute_artifact_url(url: str, base: Path) -> str:
    if "://" in url or os.path.isabs(url):
        return url
    return str((base / url).resolve())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserErrorException(f"Cannot read workspace config {path}: {exc.strerror}.") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserErrorException(
            f"Workspace config {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Fix: repair the file, or recreate it with `modelport workspace create` / write_config()."
        ) from exc
    if not isinstance(data, dict):
        raise UserErrorException(
            f"Workspace config {path} must hold a JSON object, not {type(data).__name__}."
        )
    return data


def parse_config(path: Path) -> WorkspaceLocation:
    """Read a modelport or Azure ML config file into a location (AML files name the workspace only)."""
    data = _read_json(path)
    base = path.parent
    if "metadata_url" in data:
        name = data.get("workspace_name")
        if not isinstance(name, str):
            raise UserErrorException(f"Workspace config {path} lacks 'workspace_name'. Fix: add it.")
        artifact_url = data.get("artifact_url")
        return WorkspaceLocation(
            name=name,
            metadata_url=_absolute_metadata_url(str(data["metadata_url"]), base),
            artifact_url=_absolute_artifact_url(str(artifact_url), base) if artifact_url else None,
            storage_options=dict(data.get("storage_options") or {}),
            config_path=path,
        )
    scope = data.get("Scope")
    if isinstance(scope, str):
        parts = scope.split("/")
        if len(parts) < 9:
            raise UserErrorException(
                f"Workspace config {path} has a malformed Scope {scope!r}; expected "
                "/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<w>."
            )
        name = parts[8]
    else:
        missing = [k for k in ("subscription_id", "resource_group", "workspace_name") if k not in data]
        if missing:
            raise UserErrorException(
                f"Workspace config {path} lacks {', '.join(missing)}. An Azure ML config.json needs "
                "subscription_id, resource_group and workspace_name; a modelport one needs workspace_name "
                "and metadata_url."
            )
        name = str(data["workspace_name"])
    location = lookup_index(name)
    if location is None:
        raise WorkspaceException(
            f"{path} names workspace {name!r}, but no local workspace has that name. "
            f"Fix: `modelport workspace create {name}` (or Workspace.create({name!r}))."
        )
    return location


def find_config(path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> Path:
    """Find the config file: ``path`` itself if it is a file, else search upward from ``path`` (or CWD)."""
    start = Path(path) if path is not None else Path.cwd()
    if start.is_file():
        return start
    if path is not None and not start.exists():
        raise UserErrorException(f"The path {str(start)!r} given to find a workspace config does not exist.")
    start = start.resolve()
    pairs = [MODELPORT_CONFIG, *AZUREML_CONFIGS]
    if file_name:
        pairs = [(folder, file_name) for folder in dict.fromkeys(folder for folder, _ in pairs)]
    for folder, name in pairs:
        for directory in (start, *start.parents):
            candidate = directory / folder / name
            if candidate.is_file():
                return candidate
    raise UserErrorException(
        f"No workspace config found in {start} or its parents (looked for .modelport/config.json and Azure "
        "ML's .azureml/config.json, aml_config/config.json, config.json). Fix: run `modelport workspace "
        "create NAME` here, or pass the folder or file with path=/--path."
    )


def config_payload(location: WorkspaceLocation, base: Path | None = None) -> dict[str, Any]:
    """The JSON written for ``location``; paths inside ``base`` are written relative to it."""
    metadata_url = location.metadata_url
    artifact_url = location.artifact_url
    if base is not None:
        database = make_url(metadata_url).database if metadata_url.startswith("sqlite:") else None
        if database and Path(database).is_relative_to(base):
            metadata_url = f"sqlite:///{Path(database).relative_to(base)}"
        if artifact_url and "://" not in artifact_url and Path(artifact_url).is_relative_to(base):
            artifact_url = str(Path(artifact_url).relative_to(base))
    payload: dict[str, Any] = {"workspace_name": location.name, "metadata_url": metadata_url}
    if artifact_url:
        payload["artifact_url"] = artifact_url
    if location.storage_options:
        payload["storage_options"] = location.storage_options
    return payload


def write_config_file(path: Path, location: WorkspaceLocation, relative: bool = False) -> None:
    """Write a modelport config file atomically."""
    payload = config_payload(location, base=path.parent if relative else None)
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n", mode=0o600)


def _index_path() -> Path:
    return modelport_home() / "workspaces.json"


def read_index() -> dict[str, str]:
    """Workspace name → config file path, for every workspace created by this user."""
    path = _index_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkspaceException(
            f"The workspace index {path} is unreadable ({exc}). Fix: delete it and open workspaces by "
            "path (Workspace.from_config(path=...)); each open re-registers it."
        ) from exc
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def update_index(name: str, config_path: Path | None) -> None:
    """Record (or with ``None``, forget) where workspace ``name``'s config lives."""
    path = _index_path()
    with file_lock(path.with_suffix(".lock")):
        index = read_index()
        if config_path is None:
            index.pop(name, None)
        else:
            index[name] = str(config_path.resolve())
        atomic_write_text(path, json.dumps(index, indent=2, sort_keys=True) + "\n")


def lookup_index(name: str) -> WorkspaceLocation | None:
    """The location of workspace ``name`` from the index, if its config still exists."""
    config = read_index().get(name)
    if config is None or not Path(config).is_file():
        return None
    location = parse_config(Path(config))
    return location if location.name == name else None
