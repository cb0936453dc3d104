"""The init container's fetch program against a real S3-protocol server (moto), run the way the
pod runs it: ``python -m modelport.compute.kubernetes.fetch plan.json``. Only the pod is
simulated: the plan's app root is a temporary folder instead of the pod's emptyDir, and the
ConfigMap volume is a folder of symlinks like the one the kubelet writes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelport.compute.kubernetes import fetch_plan as fp
from modelport.workspace.artifacts import ArtifactStore
from tests.compute.kubernetes.specs import make_spec
from tests.servers import S3Server

pytestmark = pytest.mark.s3


def _store(s3: S3Server, prefix: str) -> ArtifactStore:
    store = ArtifactStore(f"s3://fetch-tests/{prefix}", s3.storage_options())
    store.ensure_root()
    return store


def _plan(
    s3: S3Server, prefix: str, files: list[fp.FetchFile], app_root: Path, inline: dict[str, bytes]
) -> dict:
    # Credentials reach the pod as environment variables from a Secret; the plan only names them.
    access = fp.ArtifactAccess(
        f"s3://fetch-tests/{prefix}",
        credentials_secret="store-credentials",
        storage_options={
            "endpoint_url": s3.endpoint_url,
            "key": "${STORE_KEY}",
            "secret": "${STORE_SECRET}",
        },
    )
    plan = fp.fetch_plan(make_spec(), access, files, inline)
    plan["appRoot"] = str(app_root)
    return plan


def _kubelet_config_map_volume(folder: Path, files: dict[str, bytes]) -> None:
    # The kubelet writes ConfigMap items into a timestamped folder and exposes them via symlinks.
    data = folder / "..2026_11_24_00_00_00.0001"
    for relative, content in files.items():
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_bytes(content)
    (folder / "..data").symlink_to(data.name)
    for top in {relative.split("/")[0] for relative in files}:
        (folder / top).symlink_to(f"..data/{top}")


def _run(plan: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    env = {**os.environ, "STORE_KEY": "testing", "STORE_SECRET": "testing"}
    return subprocess.run(
        [sys.executable, "-m", "modelport.compute.kubernetes.fetch", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_models_and_inline_source_land_in_the_azureml_layout(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3, "ok")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"weights" * 1000)
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\n")
    blob_model, blob_script = store.put_file(model), store.put_file(script)
    volume = tmp_path / "volume"
    volume.mkdir()
    inline = {"src/score.py": b"def init():\n    pass\n"}
    _kubelet_config_map_volume(volume, inline)
    app = tmp_path / "app"
    files = [
        fp.FetchFile("azureml-models/model0/1/model.pkl", blob_model.digest, 0o644),
        fp.FetchFile("src/run.sh", blob_script.digest, 0o755),
    ]
    plan = _plan(s3, "ok", files, app, inline)
    plan["inlineSource"] = str(volume)

    result = _run(plan, tmp_path)

    assert result.returncode == 0, result.stderr
    assert (app / "azureml-models/model0/1/model.pkl").read_bytes() == b"weights" * 1000
    assert (app / "src/run.sh").stat().st_mode & 0o777 == 0o755
    copied = app / "src/score.py"
    assert copied.read_bytes() == inline["src/score.py"] and not copied.is_symlink()
    assert app.joinpath(plan["modelDir"]).is_dir()
    assert "done: 3 file(s)" in result.stdout  # what get_logs(init=True) will show


def test_a_damaged_blob_fails_the_pod_with_the_fix(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3, "damaged")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"original")
    digest = hashlib.sha256(b"original").hexdigest()
    # The blob under this digest holds other bytes, as after corruption in the store.
    store.fs.pipe_file(store.blob_path(digest), b"tampered")
    app = tmp_path / "app"
    plan = _plan(s3, "damaged", [fp.FetchFile("azureml-models/model0/1/model.pkl", digest)], app, {})

    result = _run(plan, tmp_path)

    assert result.returncode == 1
    assert "does not match the registered digest" in result.stderr
    assert "register the model again" in result.stderr
    assert not (app / "azureml-models/model0/1/model.pkl").exists()


def test_a_path_leaving_the_app_root_is_refused(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3, "escape")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"x")
    blob = store.put_file(model)
    plan = _plan(s3, "escape", [fp.FetchFile("../outside.pkl", blob.digest)], tmp_path / "app", {})

    result = _run(plan, tmp_path)

    assert result.returncode == 1
    assert not (tmp_path / "outside.pkl").exists()


def test_a_missing_credential_variable_names_it(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3, "nocreds")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"x")
    blob = store.put_file(model)
    plan = _plan(
        s3, "nocreds", [fp.FetchFile("azureml-models/m/1/model.pkl", blob.digest)], tmp_path / "a", {}
    )
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    env = {k: v for k, v in os.environ.items() if k not in ("STORE_KEY", "STORE_SECRET")}

    result = subprocess.run(
        [sys.executable, "-m", "modelport.compute.kubernetes.fetch", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert result.returncode == 1
    assert "STORE_KEY" in result.stderr
