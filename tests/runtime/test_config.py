"""Configuration (flags, variables, config.json) and the Azure import paths inside a replica."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.clirun import modelport
from tests.runtime.conftest import SCRIPTS_DIR, ServerFactory, free_port


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return modelport("serve", *args, rc=None, env=env, timeout=60)


def test_invalid_settings_are_reported_together(tmp_path: Path, modelport_only: None) -> None:
    script = tmp_path / "score.py"
    shutil.copy(SCRIPTS_DIR / "plain.py", script)
    result = _serve(
        "--entry_script",
        str(script),
        env={"WORKER_COUNT": "zero", "SCORING_TIMEOUT_MS": "-5", "MODELPORT_JSON_ENCODING": "yaml"},
    )
    assert result.returncode == 1
    assert "WORKER_COUNT / --worker_count: 'zero' is not an integer" in result.stderr
    assert "SCORING_TIMEOUT_MS: -5 is out of range" in result.stderr
    assert "MODELPORT_JSON_ENCODING / --json_encoding: 'yaml'" in result.stderr


def test_port_in_use_is_a_one_line_error(tmp_path: Path, modelport_only: None) -> None:
    import socket

    script = tmp_path / "score.py"
    shutil.copy(SCRIPTS_DIR / "plain.py", script)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(
            "--entry_script", str(script), "--port", str(port), env={"AML_APP_ROOT": str(tmp_path)}
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr


def test_config_file_and_server_port_variable(factory: ServerFactory, modelport_only: None) -> None:
    port = free_port()
    settings = {
        "SERVICE_NAME": "iris-svc",
        "SERVICE_VERSION": "7",
        "SERVICE_PATH_PREFIX": "/api/v1/service/iris",
    }
    server = factory.start(
        "plain", app_files={"config.json": json.dumps(settings)}, env={"SERVER_PORT": str(port)}
    )
    # --port from the factory wins over SERVER_PORT; the config file fills what no variable sets.
    document = server.client().get("/swagger.json").json()
    assert document["info"]["title"] == "iris-svc"
    assert document["info"]["version"] == "7"
    assert "/api/v1/service/iris/score" in document["paths"]


def test_model_path_and_azure_imports_inside_the_replica(
    factory: ServerFactory, iris_model_dir: Path, modelport_only: None
) -> None:
    (iris_model_dir / "iris" / "2").mkdir(exist_ok=True)
    (iris_model_dir / "iris" / "2" / "model.pkl").write_bytes(b"v2")
    server = factory.start("model_path", env={"AZUREML_MODEL_DIR": str(iris_model_dir)})
    client = server.client()
    paths = client.get("/score").json()
    assert paths == {
        "latest": str(iris_model_dir / "iris" / "2" / "model.pkl"),
        "v1": str(iris_model_dir / "iris" / "1" / "model.pkl"),
    }
    missing = client.get("/score", params={"name": "nope"})
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("ModelNotFound: Model nope not found in cache")


def test_model_path_with_single_model_dir(
    factory: ServerFactory, iris_model_dir: Path, modelport_only: None
) -> None:
    server = factory.start("model_path", args=("--model_dir", str(iris_model_dir / "iris" / "1")))
    assert server.client().get("/score").json()["v1"] == str(iris_model_dir / "iris" / "1" / "model.pkl")


@pytest.mark.parametrize("flag", ["--help"])
def test_serve_help_lists_azmlinfsrv_flags(flag: str) -> None:
    result = _serve(flag)
    assert result.returncode == 0
    for name in (
        "--entry_script",
        "--model_dir",
        "--port",
        "--worker_count",
        "--host",
        "--max_request_bytes",
    ):
        assert name in result.stdout


def test_separate_health_port(factory: ServerFactory) -> None:
    health_port = free_port()
    server = factory.start(
        "plain", args=("--health_port", str(health_port)), env={"SEPERATE_HEALTH_ENDPOINT": "true"}
    )
    reply = httpx.get(f"http://127.0.0.1:{health_port}/", timeout=30)
    assert reply.text == "Healthy"
    assert server.client().get("/").text == "Healthy"


def test_unknown_config_file_keys_are_a_warning(factory: ServerFactory, modelport_only: None) -> None:
    files = {"config.json": json.dumps({"SERVICE_NAME": "svc", "BOGUS": 1})}
    server = factory.start("plain", app_files=files)
    assert server.client().get("/swagger.json").json()["info"]["title"] == "svc"
    assert "ignoring unknown keys ['BOGUS']" in server.log()
