"""Model registry behaviour on every backend (SQLite/PostgreSQL metadata, local/S3 artifacts)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from modelport.errors import ModelNotFoundException, UserErrorException, WebserviceException
from modelport.registry.model import Model
from modelport.workspace.tables import model_files, models, service_models, services


def _blob_digests(ws) -> set[str]:
    store = ws.artifact_store
    root = f"{store.root}/blobs/sha256"
    if not store.fs.exists(root):
        return set()
    return {Path(p).name for p in store.fs.find(root)}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs" / "model.pkl"
    path.parent.mkdir()
    path.write_bytes(os.urandom(4096))
    return path


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "outputs" / "my_model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"weights-a")
    (folder / "sub" / "b.txt").write_text("vocab")
    (folder / "c.json").write_text("{}")
    return folder


def test_register_file_assigns_versions_and_keeps_metadata(workspace, model_file: Path) -> None:
    first = Model.register(
        workspace,
        model_file,
        "iris",
        tags={"area": "iris"},
        properties={"accuracy": "0.97"},
        description="svc",
        model_framework=Model.Framework.SCIKITLEARN,
        model_framework_version="1.5",
    )
    second = Model.register(workspace, model_file, "iris")
    assert (first.version, second.version) == (1, 2)
    assert (
        first.id == "iris:1" and first.tags == {"area": "iris"} and first.properties == {"accuracy": "0.97"}
    )
    assert first.model_framework == "ScikitLearn" and first.model_framework_version == "1.5"
    assert first.created_time.tzinfo is not None
    # Identical content is stored once.
    assert _blob_digests(workspace) == {hashlib.sha256(model_file.read_bytes()).hexdigest()}


def test_model_lookup_by_name_id_version_and_filters(workspace, model_file: Path) -> None:
    Model.register(workspace, model_file, "m", tags={"stage": "dev"})
    Model.register(workspace, model_file, "m", tags={"stage": "prod"}, properties={"p": "1"})
    Model.register(workspace, model_file, "m", tags={"stage": "dev"})
    assert Model(workspace, "m").version == 3
    assert Model(workspace, id="m:2").tags == {"stage": "prod"}
    assert Model(workspace, "m", version=1).version == 1
    assert Model(workspace, "m", tags=[["stage", "prod"]]).version == 2
    assert Model(workspace, "m", properties=["p"]).version == 2
    with pytest.raises(WebserviceException, match="^Error, one of id or name must be provided."):
        Model(workspace)
    with pytest.raises(
        ModelNotFoundException, match="^ModelNotFound: Model with name m, version 9 not found"
    ):
        Model(workspace, "m", version=9)
    with pytest.raises(WebserviceException, match="ModelNotFound"):
        Model(workspace, "m", tags=[["stage", "qa"]])


def test_list_filters_latest_and_argument_checks(workspace, model_file: Path) -> None:
    Model.register(workspace, model_file, "a", tags={"k": "1"}, model_framework="Onnx")
    Model.register(workspace, model_file, "a", tags={"k": "2"})
    Model.register(workspace, model_file, "b", properties={"owner": "x"})
    assert [m.id for m in Model.list(workspace)] == ["a:2", "a:1", "b:1"]
    assert [m.id for m in Model.list(workspace, latest=True)] == ["a:2", "b:1"]
    assert [m.id for m in Model.list(workspace, name="a")] == ["a:2", "a:1"]
    assert [m.id for m in Model.list(workspace, tags=["k"])] == ["a:2", "a:1"]
    assert [m.id for m in Model.list(workspace, tags=[["k", "1"]])] == ["a:1"]
    assert [m.id for m in Model.list(workspace, tags=["k"], latest=True)] == ["a:2"]
    assert [m.id for m in Model.list(workspace, properties=[["owner", "x"]])] == ["b:1"]
    assert [m.id for m in Model.list(workspace, model_framework="Onnx")] == ["a:1"]
    assert set(workspace.models) == {"a", "b"} and workspace.models["a"].version == 2
    with pytest.raises(UserErrorException, match="page_count"):
        Model.list(workspace, page_count=10)
    with pytest.raises(UserErrorException, match="tags must be a list"):
        Model.list(workspace, tags={"k": "1"})  # type: ignore[arg-type]


def test_folder_layout_and_download(workspace, model_folder: Path, tmp_path: Path) -> None:
    model = Model.register(workspace, model_folder, "folder-model")
    assert model.file_count == 3 and model.root == "my_model" and model.kind == "folder"
    target = tmp_path / "download"
    path = model.download(target)
    assert path == str(target / "my_model")
    assert (target / "my_model" / "sub" / "b.txt").read_text() == "vocab"
    assert (target / "my_model" / "a.bin").read_bytes() == b"weights-a"
    assert not [p for p in target.iterdir() if p.name.startswith(".modelport-download")]
    with pytest.raises(WebserviceException, match="File already exists. To overwrite, set exist_ok to True."):
        model.download(target)
    (target / "my_model" / "a.bin").write_bytes(b"changed")
    model.download(target, exist_ok=True)
    assert (target / "my_model" / "a.bin").read_bytes() == b"weights-a"


def test_child_paths_select_files_and_cannot_escape(workspace, model_folder: Path, tmp_path: Path) -> None:
    model = Model.register(workspace, model_folder, "child", child_paths=["a.bin", "sub/b.txt"])
    path = model.download(tmp_path / "d")
    assert sorted(p.relative_to(path).as_posix() for p in Path(path).rglob("*") if p.is_file()) == [
        "a.bin",
        "sub/b.txt",
    ]
    with pytest.raises(WebserviceException, match="does not exist under model_path"):
        Model.register(workspace, model_folder, "child", child_paths=["missing.bin"])
    with pytest.raises(WebserviceException, match="no '..'"):
        Model.register(workspace, model_folder, "child", child_paths=["../outside"])
    assert [m.version for m in Model.list(workspace, name="child")] == [1]


def test_single_file_download_returns_the_file(workspace, model_file: Path, tmp_path: Path) -> None:
    model = Model.register(workspace, model_file, "single")
    path = model.download(tmp_path / "out")
    assert Path(path).read_bytes() == model_file.read_bytes()
    assert path.endswith("model.pkl")


def test_tags_and_properties(workspace, model_file: Path) -> None:
    model = Model.register(workspace, model_file, "tp", tags={"a": "1"}, properties={"p": "1"})
    model.add_tags({"b": "2", "a": "10"})
    model.remove_tags(["b", "not-there"])
    model.add_properties({"q": "2"})
    with pytest.raises(WebserviceException, match="properties are immutable.*: p$"):
        model.add_properties({"p": "changed", "r": "3"})
    model.update(tags={"only": "this"}, description="new")
    fresh = Model(workspace, id="tp:1")
    assert fresh.tags == {"only": "this"} and fresh.description == "new"
    assert fresh.properties == {"p": "1", "q": "2"}  # the refused call added nothing
    fresh.update_tags_properties(add_tags={"x": "1"}, remove_tags="only", add_properties={"s": "4"})
    assert Model(workspace, id="tp:1").tags == {"x": "1"}
    assert Model(workspace, id="tp:1").properties == {"p": "1", "q": "2", "s": "4"}


def test_serialize_has_the_azure_ml_keys(workspace, model_file: Path) -> None:
    data = Model.register(workspace, model_file, "ser").serialize()
    for key in [
        "createdTime",
        "createdBy",
        "description",
        "id",
        "mimeType",
        "name",
        "framework",
        "frameworkVersion",
        "tags",
        "properties",
        "unpack",
        "url",
        "version",
        "experimentName",
        "runId",
        "runDetails",
        "datasets",
        "resourceConfiguration",
        "sampleInputDatasetId",
        "sampleOutputDatasetId",
    ]:
        assert key in data
    assert data["id"] == "ser:1" and data["version"] == 1


def test_delete_removes_rows_and_unshared_blobs(workspace, model_file: Path, model_folder: Path) -> None:
    shared1 = Model.register(workspace, model_file, "d1")
    shared2 = Model.register(workspace, model_file, "d2")
    folder = Model.register(workspace, model_folder, "d3")
    before = _blob_digests(workspace)
    folder.delete()
    assert _blob_digests(workspace) == {hashlib.sha256(model_file.read_bytes()).hexdigest()}
    assert before > _blob_digests(workspace)
    shared1.delete()
    assert _blob_digests(workspace)  # still used by d2
    shared2.delete()
    assert _blob_digests(workspace) == set()
    with workspace.metadata_store.read() as conn:
        assert conn.execute(select(func.count()).select_from(models)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(model_files)).scalar() == 0
    # Versions are never reused after a delete.
    assert Model.register(workspace, model_file, "d1").version == 2


def test_delete_is_refused_while_services_use_the_model(workspace, model_file: Path) -> None:
    from datetime import UTC, datetime

    model = Model.register(workspace, model_file, "used")
    now = datetime.now(UTC)
    with workspace.metadata_store.write() as conn:
        for name in ("svc-b", "svc-a"):
            conn.execute(
                insert(services).values(
                    name=name, compute_type="local", created_time=now, updated_time=now, spec={}
                )
            )
            conn.execute(insert(service_models).values(service_name=name, model_id=model.db_id))
    with pytest.raises(WebserviceException, match="used by service\\(s\\) svc-a, svc-b"):
        model.delete()
    assert Model(workspace, id="used:1").version == 1
    assert model.services_using() == ["svc-a", "svc-b"]


@pytest.mark.parametrize(
    "name", ["", "-x", ".hidden", "a/b", "a..b", "..", "x\x00y", "a" * 256, "sp ace", "ü"]
)
def test_invalid_model_names_are_refused(workspace, model_file: Path, name: str) -> None:
    with pytest.raises(WebserviceException, match="Invalid model name"):
        Model.register(workspace, model_file, name)
    assert Model.list(workspace) == []


def test_argument_errors_name_the_field(workspace, model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model_path .*does not exist"):
        Model.register(workspace, tmp_path / "missing.pkl", "m")
    with pytest.raises(WebserviceException, match="model_framework_version cannot be given"):
        Model.register(workspace, model_file, "m", model_framework_version="1.0")
    with pytest.raises(WebserviceException, match="Invalid tags"):
        Model.register(workspace, model_file, "m", tags=["a"])  # type: ignore[arg-type]
    with pytest.raises(WebserviceException, match="JSON-serialisable"):
        Model.register(workspace, model_file, "m", properties={"k": object()})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WebserviceException, match="empty folder"):
        Model.register(workspace, empty, "m")
    assert Model.list(workspace) == [] and _blob_digests(workspace) == set()
