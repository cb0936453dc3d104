"""``Model``, the model registry's API: register, look up, list, download, tags and properties, delete.

A model version is a row plus the list of its files: the rows live in the metadata store
(:mod:`modelport.registry.model_store`), the files content-addressed in the artifact store
(:mod:`modelport.registry.model_artifacts`). A registration uploads first and then, in one
transaction, takes the next version number and inserts the rows: if anything fails, the
transaction rolls back (the version number goes back too) and the blobs this call created are
removed, so no row, file or version is left behind.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport._notes import note
from modelport.errors import ModelNotFoundException, UserErrorException, WebserviceException
from modelport.names import check_model_name
from modelport.registry import model_artifacts, model_store
from modelport.registry import tags as tag_rules
from modelport.runtime.model_path import get_model_path as local_model_path
from modelport.runtime.model_path import model_roots
from modelport.workspace.artifacts import Progress
from modelport.workspace.blobs import discard_unreferenced_blobs

if TYPE_CHECKING:
    from modelport.workspace import Workspace


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
        row = model_store.find_model(workspace, name, version, model_framework, tag_filters, property_filters)
        if row is None:
            raise model_store.not_found(name, version if version is not None else "latest")
        self._load(workspace, row)

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
        # Unpacked by position (model_store.MODEL_COLUMNS): listing builds thousands of these,
        # and attribute access on rows by name costs more than the rest of the work.
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

    def _reload(self, row: Any) -> None:
        """Take the row a change returned (None: the version is no longer registered)."""
        if row is None:
            raise self._not_found()
        self._load(self.workspace, row)

    def _not_found(self) -> ModelNotFoundException:
        return model_store.not_found(self.name, self.version)

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
        tags = tag_rules.check_mapping(tags, "tags")
        properties = tag_rules.check_mapping(properties, "properties")
        if description is not None and not isinstance(description, str):
            raise WebserviceException(f"Invalid description: expected a string, got {description!r}.")
        files = model_artifacts.collect_model_files(model_path, child_paths)
        action = f"Registering model {model_name}"
        note(action)
        stored, created = model_artifacts.upload_model_files(workspace, files, action, progress)
        path = Path(model_path)
        try:
            row = model_store.insert_model(
                workspace,
                model_name,
                files,
                stored,
                created,
                description=description,
                tags=tags,
                properties=properties,
                framework=model_framework,
                framework_version=model_framework_version,
                kind="file" if path.is_file() else "folder",
                root=path.name,
                size_bytes=sum(f.size for f in files),
                file_count=len(files),
                content_digest=model_artifacts.manifest_digest(stored),
            )
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
        if run_id is not None or dataset_id is not None:
            return []  # models registered here never come from a training run or a dataset
        rows = model_store.list_models(
            workspace, name, model_framework, latest, tag_filters, property_filters
        )
        return [Model._from_row(workspace, row) for row in rows]

    # ------------------------------------------------------------------ files
    def stored_files(self) -> Sequence[Any]:
        """The model's files as stored: rows of (path, digest, size, mode), by path."""
        return model_store.file_rows(self.workspace, self.db_id)

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
        model_artifacts.download_model_files(self.workspace, self.stored_files(), target, exist_ok)
        return str(target / self.root)

    def get_sas_urls(self) -> dict[str, str]:
        """Relative file name → a URL the file can be read from (presigned for object stores)."""
        return model_artifacts.file_urls(self.workspace, self.stored_files())

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
    def _modify(self, change: model_store.TagChange) -> None:
        """Run ``change(tags, properties) -> (tags, properties)`` on the stored row, atomically."""
        self._reload(model_store.change_tags_properties(self.workspace, self.db_id, change))

    def add_tags(self, tags: dict[str, Any]) -> None:
        """Add or replace tags."""
        new = tag_rules.check_mapping(tags, "tags")
        self._modify(lambda current, props: (tag_rules.add_tags(current, new, report=True), props))

    def remove_tags(self, tags: str | builtins.list[str]) -> None:
        """Remove tags by key (missing keys are reported, not an error)."""
        keys = [tags] if isinstance(tags, str) else list(tags)
        self._modify(lambda current, props: (tag_rules.remove_tags(current, keys, report=True), props))

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; existing keys cannot be changed (properties are immutable, as in Azure ML)."""
        new = tag_rules.check_mapping(properties, "properties")
        self._modify(lambda tags, current: (tags, tag_rules.add_properties(current, new)))

    def update_tags_properties(
        self,
        add_tags: dict[str, Any] | None = None,
        remove_tags: str | builtins.list[str] | None = None,
        add_properties: dict[str, Any] | None = None,
    ) -> None:
        """Add tags, remove tags and add properties in one atomic change."""
        new_tags = tag_rules.check_mapping(add_tags, "tags")
        new_props = tag_rules.check_mapping(add_properties, "properties")
        removed = [remove_tags] if isinstance(remove_tags, str) else list(remove_tags or [])

        def change(tags: dict[str, Any], props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            tags = tag_rules.remove_tags(
                tag_rules.add_tags(tags, new_tags, report=False), removed, report=False
            )
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
            values["tags"] = tag_rules.check_mapping(tags, "tags")
        if description is not None:
            if not isinstance(description, str):
                raise WebserviceException(f"Invalid description: expected a string, got {description!r}.")
            values["description"] = description
        if not values:
            return
        self._reload(model_store.update_model(self.workspace, self.db_id, values))

    # ------------------------------------------------------------------ delete
    def services_using(self) -> builtins.list[str]:
        """Names of the services deployed with this model version."""
        return model_store.services_using(self.workspace, self.db_id)

    def delete(self) -> None:
        """Delete this version and the stored files no other version shares.

        Refused while a service uses the model; the error names the services.
        """
        digests = model_store.delete_model(self.workspace, self.db_id, self.id)
        if digests is None:
            raise self._not_found()
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
