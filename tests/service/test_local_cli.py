"""`modelport model deploy`, `modelport service ...` and `modelport local ...` as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.clirun import modelport
from tests.service.conftest import IRIS_SCORE

SAMPLE_JSON = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})


def cli(*args: str, cwd: Path, rc: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``cwd``; assert its exit code."""
    return modelport(*args, cwd=cwd, rc=rc)


@pytest.fixture(scope="module")
def project(local_ws, iris_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the workspace config, score.py and the two config files."""
    folder = tmp_path_factory.mktemp("project")
    local_ws.write_config(path=folder)
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(IRIS_SCORE)
    (folder / "inferenceconfig.json").write_text(
        json.dumps({"entryScript": "score.py", "sourceDirectory": "src"})
    )
    (folder / "deploymentconfig.json").write_text(
        json.dumps({"computeType": "aks", "numReplicas": 1, "authEnabled": True, "sslEnabled": False})
    )
    return folder


def test_deploy_use_and_delete_from_the_cli(project: Path) -> None:
    deployed = cli(
        "model",
        "deploy",
        "-n",
        "cli-svc",
        "-m",
        "iris:1",
        "-ic",
        "inferenceconfig.json",
        "-dc",
        "deploymentconfig.json",
        "--tag",
        "team=ml",
        "-o",
        "json",
        cwd=project,
    )
    service = json.loads(deployed.stdout)
    assert service["state"] == "Healthy" and service["tags"] == {"team": "ml"}
    assert "Warning: " in deployed.stderr and "sslEnabled" in deployed.stderr  # unknown key, named
    assert "Service is Healthy" in deployed.stderr or "Service is Healthy" in deployed.stdout

    keys = json.loads(cli("service", "keys", "-n", "cli-svc", "-o", "json", cwd=project).stdout)
    assert set(keys) == {"primaryKey", "secondaryKey"}
    answer = httpx.post(
        service["scoringUri"],
        content=json.dumps({"data": [[6.7, 3.0, 5.2, 2.3]]}),
        headers={"Authorization": f"Bearer {keys['primaryKey']}"},
    )
    assert answer.json() == [2]
    ran = cli(
        "service", "run", "-n", "cli-svc", "-d", json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]}), cwd=project
    )
    assert json.loads(ran.stdout) == [0]

    listed = json.loads(cli("service", "list", "-o", "json", cwd=project).stdout)
    assert [s["name"] for s in listed] == ["cli-svc"]
    shown = cli("service", "show", "-n", "cli-svc", cwd=project).stdout
    assert "Healthy" in shown and "1 ready of 1" in shown
    assert "listening" in cli("service", "logs", "-n", "cli-svc", cwd=project).stdout

    regen = json.loads(
        cli("service", "regen-key", "-n", "cli-svc", "-k", "Primary", "-o", "json", cwd=project).stdout
    )
    assert regen["primaryKey"] != keys["primaryKey"]
    token = cli("service", "token", "-n", "cli-svc", cwd=project, rc=1)
    assert "does not use token auth" in token.stderr
    revoke = cli("service", "tokens", "revoke", "-n", "cli-svc", cwd=project, rc=1)
    assert "does not use token auth, so it has no tokens to revoke" in revoke.stderr

    add = ("service", "keys", "add", "-n", "cli-svc", "--key-name", "team-a", "--rate", "20/s")
    added = json.loads(cli(*add, "--burst", "40", "--quota", "100000/day", "-o", "json", cwd=project).stdout)
    assert added["name"] == "team-a" and len(added["key"]) >= 40
    named = {"Authorization": f"Bearer {added['key']}"}
    assert httpx.post(service["scoringUri"], content=SAMPLE_JSON, headers=named).status_code == 200
    listed_keys = json.loads(
        cli("service", "keys", "list", "-n", "cli-svc", "-o", "json", cwd=project).stdout
    )
    assert listed_keys == [{"name": "team-a", "rate": "20/s", "burst": 40, "quota": "100000/day"}]
    update = ("service", "keys", "update", "-n", "cli-svc", "--key-name", "team-a", "--quota", "none")
    assert json.loads(cli(*update, "-o", "json", cwd=project).stdout)["quota"] is None
    bad = cli(
        "service",
        "keys",
        "update",
        "-n",
        "cli-svc",
        "--key-name",
        "team-a",
        "--rate",
        "fast",
        cwd=project,
        rc=1,
    )
    assert "Invalid rate 'fast'" in bad.stderr
    cli("service", "keys", "remove", "-n", "cli-svc", "--key-name", "team-a", cwd=project)
    assert httpx.post(service["scoringUri"], content=SAMPLE_JSON, headers=named).status_code == 401

    status = json.loads(cli("local", "status", "-o", "json", cwd=project).stdout)
    assert status["running"] is True and status["frontendUrl"].startswith("http://127.0.0.1:")

    (project / "scaled.json").write_text(json.dumps({"computeType": "aks", "numReplicas": 2}))
    updated = json.loads(
        cli(
            "service",
            "update",
            "-n",
            "cli-svc",
            "-dc",
            "scaled.json",
            "--add-tag",
            "rolled=yes",
            "-o",
            "json",
            cwd=project,
        ).stdout
    )
    assert updated["generation"] == 2 and updated["numReplicas"] == 2 and updated["state"] == "Healthy"
    assert updated["tags"] == {"team": "ml", "rolled": "yes"}

    taken = cli(
        "model", "deploy", "-n", "cli-svc", "-m", "iris:1", "-ic", "inferenceconfig.json", cwd=project, rc=1
    )
    assert "already exists" in taken.stderr and "--overwrite" in taken.stderr
    cli("service", "delete", "-n", "cli-svc", cwd=project)
    gone = cli("service", "show", "-n", "cli-svc", cwd=project, rc=1)
    assert "WebserviceNotFound" in gone.stderr


def test_invalid_files_and_names_fail_before_anything_is_deployed(project: Path) -> None:
    (project / "bad.json").write_text(
        json.dumps({"computeType": "aks", "containerResourceRequirements": {"cpu": 0}})
    )
    bad = cli(
        "model",
        "deploy",
        "-n",
        "bad-svc",
        "-m",
        "iris:1",
        "-ic",
        "inferenceconfig.json",
        "-dc",
        "bad.json",
        cwd=project,
        rc=1,
    )
    assert "cpu_cores must be greater than zero" in bad.stderr
    invalid = cli(
        "model", "deploy", "-n", "Bad_Name", "-m", "iris:1", "-ic", "inferenceconfig.json", cwd=project, rc=1
    )
    assert "service name is invalid" in invalid.stderr
    missing = cli(
        "model", "deploy", "-n", "no-model", "-m", "ghost:1", "-ic", "inferenceconfig.json", cwd=project, rc=1
    )
    assert "ModelNotFound" in missing.stderr
    assert json.loads(cli("service", "list", "-o", "json", cwd=project).stdout) == []


def test_local_stop_and_start(project: Path) -> None:
    cli("local", "start", cwd=project)
    assert "stopped" in cli("local", "stop", cwd=project).stdout
    assert json.loads(cli("local", "status", "-o", "json", cwd=project).stdout)["running"] is False
    assert "No local agent" in cli("local", "stop", cwd=project).stdout


def test_a_stopped_agent_shows_as_unhealthy_with_the_fix(project: Path, local_ws, iris_model) -> None:
    from modelport import Model
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.service.webservice import Webservice

    inference = InferenceConfig("score.py", source_directory=str(project / "src"))
    service = Model.deploy(local_ws, "paused", [iris_model], inference, local_deploy_configuration())
    service.wait_for_deployment(timeout_sec=120)
    cli("local", "stop", cwd=project)
    stopped = Webservice(local_ws, "paused")
    assert stopped.state == "Unhealthy" and stopped.error["code"] == "LocalAgentNotRunning"
    assert "modelport local start" in stopped.error["message"]
    stopped.wait_for_deployment(timeout_sec=120)  # starts the agent, which brings the service back
    assert stopped.state == "Healthy" and stopped.run('{"data": [[5.1, 3.5, 1.4, 0.2]]}') == [0]
    stopped.delete()
