"""The model registry: ``Model.register``, lookup, listing, download, tags and properties, delete.

Files are stored content-addressed (see :mod:`modelport.workspace.artifacts`); a model version
is a row plus the list of its files. A registration uploads first and then, in one
transaction, takes the next version number and inserts the rows: if anything fails, the
transaction rolls back (the version number goes back too) and the blobs this call created are
removed, so no row, file or version is left behind.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select, update

from modelport._notes import note
from modelport.errors import (
    ModelNotFoundException,
    UserErrorException,
    WebserviceException,
)
from modelport.names import check_model_name
from modelport.registry import tags as tag_rules
from modelport.runtime.model_path import get_model_path as local_model_path
from modelport.runtime.model_path import model_roots
from modelport.workspace.artifacts import NoProgress, Progress
from modelport.workspace.blobs import discard_unreferenced_blobs
from modelport.workspace.filesets import (
    MissingPathError,
    check_readable,
    collect_files,
    restore_collected,
    store_files,
)
from modelport.workspace.store import only_latest_versions
from modelport.workspace.tables import model_files, models, service_models
from modelport.workspace.workspace import current_user

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Columns of `models` read for listing (no file lists: listing 10 000 models stays fast).
_MODEL_COLUMNS = tuple(models.c)


def _check_mapping(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WebserviceException(
            f"Invalid {field}: expected a dict of str to str, got {type(value).__name__} {value!r}."
        )
    try:
        json.dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise WebserviceException(f"Invalid {field}: values must be JSON-serialisable ({exc}).") from exc
    for key in value:
        if not isinstance(key, str) or not key:
            raise WebserviceException(f"Invalid {field}: keys must be non-empty strings, got {key!r}.")
    return dict(value)


def _manifest_digest(entries: Iterable[tuple[str, str, int]]) -> str:
    canonical = json.dumps(sorted(entries), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class _ByteProgress:
    """Forwards byte counts to the caller's progress, ignoring the store's per-file phases."""

    def __init__(self, target: Progress) -> None:
        self._target = target

    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, amount: int) -> None:
        self._target.advance(amount)


class Model:
    """A registered model version (Azure ML's ``azureml.core.Model``)."""

    # The version's row in the metadata store: what services reference (``ModelRef.db_id``).
    db_id: int

    class Framework:
        """Values of ``model_framework`` that Azure ML knows."""

        CUSTOM = "Custom"
        TENSORFLOW = "TensorFlow"
        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        TFKERAS = "TfKeras"
        PYTORCH = "PyTorch"
        MULTI = "Multi"

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
    ) -> None:
        if name is None and id is None:
            raise WebserviceException("Error, one of id or name must be provided.")
        if id is not None:
            name, sep, ver = id.rpartition(":")
            if not sep or not name or not ver.isdigit():
                raise WebserviceException(
                    f"Invalid model id {id!r}: expected '<name>:<version>', e.g. 'iris:1'."
                )
            version = int(ver)
        assert name is not None
        tag_filters = tag_rules.normalise_filters(tags, "tags")
        property_filters = tag_rules.normalise_filters(properties, "properties")
        query = select(*_MODEL_COLUMNS).where(models.c.name == name)
        if version is not None:
            query = query.where(models.c.version == int(version))
        if model_framework is not None:
            query = query.where(models.c.framework == model_framework)
        with workspace.metadata_store.read() as conn:
            rows = conn.execute(query.order_by(models.c.version.desc())).all()
        for row in rows:
            matched = tag_rules.matches_filters(row.tags, tag_filters)
            if matched and tag_rules.matches_filters(row.properties, property_filters):
                self._load(workspace, row)
                return
        shown = version if version is not None else "latest"
        raise ModelNotFoundException(
            f"ModelNotFound: Model with name {name}, version {shown} not found in provided workspace"
        )

    # ------------------------------------------------------------------ loading
    @classmethod
    def _from_row(cls, workspace: Workspace, row: Any) -> Model:
        model = cls.__new__(cls)
        model._load(workspace, row)
        return model

    # Attributes Azure ML models have that never vary here (no training runs, no datasets).
    mime_type = "application/octet-stream"
    unpack = False
    experiment_name: str | None = None
    run_id: str | None = None
    run = None
    parent_id: str | None = None
    resource_configuration = None
    sample_input_dataset = None
    sample_output_dataset = None

    def _load(self, workspace: Workspace, row: Any) -> None:
        # Unpacked by position: listing builds thousands of these, and attribute access on
        # rows by name costs more than the rest of the work.
        (
            self.db_id,
            self.name,
            self.version,
            self.description,
            tags,
            properties,
            self.model_framework,
            self.model_framework_version,
            self.created_time,
            self.created_by,
            self.kind,
            self.root,
            self.size_bytes,
            self.file_count,
            self.content_digest,
        ) = row
        self.workspace = workspace
        self.tags: dict[str, Any] = tags or {}
        self.properties: dict[str, Any] = properties or {}

    @property
    def id(self) -> str:
        """``"<name>:<version>"``."""
        return f"{self.name}:{self.version}"

    @property
    def url(self) -> str:
        """Where the model lives, as a URL."""
        return f"modelport://models/{self.name}/{self.version}"

    @property
    def datasets(self) -> dict[str, Any]:
        """Datasets by scenario (always empty: models here are registered from files)."""
        return {}

    @property
    def derived_model_ids(self) -> list[str]:
        """Ids of models derived from this one (always empty here)."""
        return []

    def _reload(self, conn: Connection) -> None:
        row = conn.execute(select(*_MODEL_COLUMNS).where(models.c.id == self.db_id)).first()
        if row is None:
            raise ModelNotFoundException(
                f"ModelNotFound: Model with name {self.name}, version {self.version} not found in provided "
                "workspace"
            )
        self._load(self.workspace, row)

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, version={self.version})"

    # ------------------------------------------------------------------ register
    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        datasets: Any = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: Sequence[str] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        *,
        progress: Progress | None = None,
    ) -> Model:
        """Register a file or folder as the next version of ``model_name``.

        Identical content already in the store is not stored again. On any failure nothing
        is left behind: no version, no row, no blob created by this call.
        """
        check_model_name(model_name)
        if model_framework_version is not None and model_framework is None:
            raise WebserviceException(
                "model_framework_version cannot be given without model_framework. Fix: pass "
                "model_framework as well (e.g. Model.Framework.SCIKITLEARN)."
            )
        tags = _check_mapping(tags, "tags")
        properties = _check_mapping(properties, "properties")
        if description is not None and not isinstance(description, str):
            raise WebserviceException(f"Invalid description: expected a string, got {description!r}.")
        path = Path(model_path)
        if not path.exists():
            raise MissingPathError(
                f"model_path {str(model_path)!r} does not exist (resolved against {os.getcwd()}). Fix: pass "
                "the path of the model file or folder."
            )
        files = collect_files(path, "model_path", child_paths)
        check_readable(files, "model file")
        note(f"Registering model {model_name}")

        store = workspace.artifact_store
        total = sum(f.size for f in files)
        progress = progress or NoProgress()
        progress.start(f"Registering model {model_name}", total * (1 if store.is_local else 2))
        stored, created = store_files(workspace, files, _ByteProgress(progress))
        try:
            digest = _manifest_digest((f.path, f.digest, f.size) for f in stored)
            now = datetime.now(UTC)
            with workspace.metadata_store.write() as conn:
                workspace.metadata_store.lock_blobs(conn)
                restore_collected(workspace, files, stored, created)
                version = workspace.metadata_store.next_version(conn, "model", model_name)
                model_id = conn.execute(
                    insert(models)
                    .values(
                        name=model_name,
                        version=version,
                        description=description,
                        tags=tags,
                        properties=properties,
                        framework=model_framework,
                        framework_version=model_framework_version,
                        created_time=now,
                        created_by=current_user(),
                        kind="file" if path.is_file() else "folder",
                        root=path.name,
                        size_bytes=total,
                        file_count=len(files),
                        content_digest=digest,
                    )
                    .returning(models.c.id)
                ).scalar_one()
                conn.execute(
                    insert(model_files),
                    [
                        {
                            "model_id": model_id,
                            "path": f.path,
                            "digest": f.digest,
                            "size": f.size,
                            "mode": f.mode,
                        }
                        for f in stored
                    ],
                )
                row = conn.execute(select(*_MODEL_COLUMNS).where(models.c.id == model_id)).one()
        except BaseException:
            discard_unreferenced_blobs(workspace, created)
            raise
        return Model._from_row(workspace, row)

    # ------------------------------------------------------------------ list
    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        run_id: str | None = None,
        latest: bool = False,
        dataset_id: str | None = None,
        expand: bool = True,
        page_count: int = 255,
        model_framework: str | None = None,
    ) -> list[Model]:
        """Registered models, newest version first within each name; filters combine with AND."""
        if not isinstance(page_count, int) or not 20 <= page_count <= 255:
            raise UserErrorException(f"Invalid page_count {page_count!r}: it must be between 20 and 255.")
        tag_filters = tag_rules.normalise_filters(tags, "tags")
        property_filters = tag_rules.normalise_filters(properties, "properties")
        query = select(*_MODEL_COLUMNS)
        if name is not None:
            query = query.where(models.c.name == name)
        if model_framework is not None:
            query = query.where(models.c.framework == model_framework)
        if run_id is not None or dataset_id is not None:
            return []  # models registered here never come from a training run or a dataset
        if latest and not tag_filters and not property_filters:
            query = only_latest_versions(query, models)
        with workspace.metadata_store.read() as conn:
            rows = conn.execute(query.order_by(models.c.name, models.c.version.desc())).all()
        result: list[Model] = []
        seen: set[str] = set()
        for row in rows:
            if tag_filters and not tag_rules.matches_filters(row.tags, tag_filters):
                continue
            if property_filters and not tag_rules.matches_filters(row.properties, property_filters):
                continue
            if latest:
                if row.name in seen:
                    continue
                seen.add(row.name)
            result.append(Model._from_row(workspace, row))
        return result

    # ------------------------------------------------------------------ files
    def stored_files(self) -> Sequence[Any]:
        """The model's files as stored: rows of (path, digest, size, mode), by path."""
        with self.workspace.metadata_store.read() as conn:
            return conn.execute(
                select(model_files.c.path, model_files.c.digest, model_files.c.size, model_files.c.mode)
                .where(model_files.c.model_id == self.db_id)
                .order_by(model_files.c.path)
            ).all()

    def download(
        self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False, exists_ok: bool | None = None
    ) -> str:
        """Write the model's files under ``target_dir`` with their stored layout; return the model's path.

        Files are fetched into a staging folder first, so a failure part-way leaves ``target_dir``
        as it was.
        """
        if exists_ok is not None:
            if exist_ok:
                raise WebserviceException("Error, 'exists_ok' is deprecated; pass only 'exist_ok'.")
            exist_ok = exists_ok
        target = Path(target_dir)
        files = self.stored_files()
        clashes = [str(target / f.path) for f in files if (target / f.path).exists()]
        if clashes and not exist_ok:
            raise WebserviceException(
                "File already exists. To overwrite, set exist_ok to True. "
                f"Existing: {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''}"
            )
        target.mkdir(parents=True, exist_ok=True)
        staging = target / f".modelport-download-{uuid.uuid4().hex[:12]}"
        try:
            for f in files:
                self.workspace.artifact_store.fetch(f.digest, staging / f.path, f.mode)
            for f in files:
                destination = target / f.path
                destination.parent.mkdir(parents=True, exist_ok=True)
                if destination.is_dir():
                    raise WebserviceException(f"Cannot overwrite folder {destination} with a model file.")
                os.replace(staging / f.path, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(target / self.root)

    def get_sas_urls(self) -> dict[str, str]:
        """Relative file name → a URL the file can be read from (presigned for object stores)."""
        store = self.workspace.artifact_store
        urls: dict[str, str] = {}
        for f in self.stored_files():
            blob = store.blob_path(f.digest)
            urls[f.path] = f"file://{blob}" if store.is_local else store.fs.sign(blob)
        return urls

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """Path of a model's files: the local cache (``$AML_APP_ROOT/azureml-models``) first.

        With ``_workspace`` and the model missing locally (or ``version`` None), the version is
        downloaded into the cache, as Azure ML did.
        """
        if _workspace is None:
            return local_model_path(model_name, version)
        if version is not None:
            try:
                return local_model_path(model_name, version)
            except WebserviceException:
                pass
        model = Model(_workspace, name=model_name, version=version)
        version_dir = model_roots()[0] / model.name / str(model.version)
        model.download(version_dir, exist_ok=True)
        return str(version_dir / model.root)

    # ------------------------------------------------------------------ tags and properties
    def _modify(self, change: Any) -> None:
        """Run ``change(tags, properties) -> (tags, properties)`` on the stored row, atomically."""
        with self.workspace.metadata_store.write() as conn:
            row = conn.execute(
                select(models.c.tags, models.c.properties).where(models.c.id == self.db_id).with_for_update()
            ).first()
            if row is None:
                raise ModelNotFoundException(
                    f"ModelNotFound: Model with name {self.name}, version {self.version} not found in "
                    "provided workspace"
                )
            tags, properties = change(dict(row.tags or {}), dict(row.properties or {}))
            conn.execute(
                update(models).where(models.c.id == self.db_id).values(tags=tags, properties=properties)
            )
            self._reload(conn)

    def add_tags(self, tags: dict[str, Any]) -> None:
        """Add or replace tags."""
        new = _check_mapping(tags, "tags")

        def change(current: dict[str, Any], props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            for key, value in new.items():
                if key in current and current[key] != value:
                    note(f"Replacing tag {key} -> {current[key]} with {key} -> {value}")
            return {**current, **new}, props

        self._modify(change)

    def remove_tags(self, tags: str | builtins.list[str]) -> None:
        """Remove tags by key (missing keys are reported, not an error)."""
        keys = [tags] if isinstance(tags, str) else list(tags)

        def change(current: dict[str, Any], props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            for key in keys:
                if key not in current:
                    note(f"Tag with key {key} not found, will not be removed")
                current.pop(key, None)
            return current, props

        self._modify(change)

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; existing keys cannot be changed (properties are immutable, as in Azure ML)."""
        new = _check_mapping(properties, "properties")

        def change(tags: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            return tags, tag_rules.add_properties(current, new)

        self._modify(change)

    def update_tags_properties(
        self,
        add_tags: dict[str, Any] | None = None,
        remove_tags: str | builtins.list[str] | None = None,
        add_properties: dict[str, Any] | None = None,
    ) -> None:
        """Add tags, remove tags and add properties in one atomic change."""
        new_tags = _check_mapping(add_tags, "tags")
        new_props = _check_mapping(add_properties, "properties")
        removed = [remove_tags] if isinstance(remove_tags, str) else list(remove_tags or [])

        def change(tags: dict[str, Any], props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            tags = {**tags, **new_tags}
            for key in removed:
                tags.pop(key, None)
            return tags, tag_rules.add_properties(props, new_props)

        self._modify(change)

    def update(
        self,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> None:
        """Replace the whole tag dict and/or the description (Azure ML semantics)."""
        values: dict[str, Any] = {}
        if tags is not None:
            values["tags"] = _check_mapping(tags, "tags")
        if description is not None:
            if not isinstance(description, str):
                raise WebserviceException(f"Invalid description: expected a string, got {description!r}.")
            values["description"] = description
        if not values:
            return
        with self.workspace.metadata_store.write() as conn:
            result = conn.execute(update(models).where(models.c.id == self.db_id).values(**values))
            if result.rowcount == 0:
                raise ModelNotFoundException(
                    f"ModelNotFound: Model with name {self.name}, version {self.version} not found in "
                    "provided workspace"
                )
            self._reload(conn)

    # ------------------------------------------------------------------ delete
    def services_using(self) -> builtins.list[str]:
        """Names of the services deployed with this model version."""
        with self.workspace.metadata_store.read() as conn:
            return list(
                conn.execute(
                    select(service_models.c.service_name)
                    .where(service_models.c.model_id == self.db_id)
                    .order_by(service_models.c.service_name)
                ).scalars()
            )

    def delete(self) -> None:
        """Delete this version and the stored files no other version shares.

        Refused while a service uses the model; the error names the services.
        """
        digests: list[str] = []
        with self.workspace.metadata_store.write() as conn:
            users = list(
                conn.execute(
                    select(service_models.c.service_name)
                    .where(service_models.c.model_id == self.db_id)
                    .order_by(service_models.c.service_name)
                ).scalars()
            )
            if users:
                raise WebserviceException(
                    f"Model {self.id} cannot be deleted: it is used by service(s) {', '.join(users)}. "
                    "Fix: delete those services or update them to another model version first.",
                    status_code=412,
                )
            digests = list(
                conn.execute(
                    select(model_files.c.digest).where(model_files.c.model_id == self.db_id)
                ).scalars()
            )
            conn.execute(delete(model_files).where(model_files.c.model_id == self.db_id))
            result = conn.execute(delete(models).where(models.c.id == self.db_id))
            if result.rowcount == 0:
                raise ModelNotFoundException(
                    f"ModelNotFound: Model with name {self.name}, version {self.version} not found in "
                    "provided workspace"
                )
        discard_unreferenced_blobs(self.workspace, digests)

    # ------------------------------------------------------------------ serialisation
    def serialize(self) -> dict[str, Any]:
        """The Azure ML dict form of the model (``az ml model show`` prints it)."""
        return {
            "createdTime": self.created_time.isoformat() if self.created_time else None,
            "createdBy": self.created_by,
            "description": self.description,
            "id": self.id,
            "mimeType": self.mime_type,
            "name": self.name,
            "framework": self.model_framework,
            "frameworkVersion": self.model_framework_version,
            "tags": self.tags,
            "properties": self.properties,
            "unpack": self.unpack,
            "url": self.url,
            "version": self.version,
            "experimentName": self.experiment_name,
            "runId": self.run_id,
            "runDetails": None,
            "datasets": self.datasets,
            "resourceConfiguration": self.resource_configuration,
            "sampleInputDatasetId": None,
            "sampleOutputDatasetId": None,
            "sizeBytes": self.size_bytes,
            "fileCount": self.file_count,
            "contentDigest": self.content_digest,
        }
