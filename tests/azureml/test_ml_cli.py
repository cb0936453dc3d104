"""A CI script written for ``az ml`` v1, ported by replacing ``az ml`` with ``modelport ml``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.azureml.test_facade import KUBECONFIG
from tests.clirun import modelport

SCORE = textwrap.dedent(
    """
    import json
    import os

    import joblib


    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_iris.pkl"))


    def run(raw_data):
        return model.predict(json.loads(raw_data)["data"]).tolist()
    """
)
SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})


def ml(project: Path, *args: str, rc: int | None = 0) -> str:
    """``modelport ml ARGS`` in the project folder; its stdout."""
    return modelport("ml", *args, cwd=project, rc=rc).stdout


@pytest.fixture(scope="module")
def files(ws, project: Path) -> Path:
    """inferenceconfig.json and deploymentconfig.json as Azure ML users wrote them."""
    (project / "cli_src").mkdir()
    (project / "cli_src" / "score.py").write_text(SCORE)
    (project / "inferenceconfig.json").write_text(
        json.dumps(
            {
                "entryScript": "score.py",
                "sourceDirectory": "cli_src",
                "environment": {"name": "cli-env", "python": {"userManagedDependencies": True}},
            }
        )
    )
    (project / "deploymentconfig.json").write_text(
        json.dumps(
            {
                "computeType": "aks",
                "numReplicas": 1,
                "authEnabled": True,
                "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1},
            }
        )
    )
    return project


def test_ci_script_register_deploy_use_update_delete(files: Path) -> None:
    registered = ml(files, "model", "register", "-n", "cli-iris", "-p", "outputs/sklearn_iris.pkl",
                    "--tag", "stage=ci", "--property", "run=42", "-d", "from CI", "-t", "model.json",
                    "-g", "rg-ml", "--subscription-id", "0000-sub")  # fmt: skip
    model = json.loads(registered)
    assert (
        model["id"] == "cli-iris:1" and model["tags"] == {"stage": "ci"} and model["description"] == "from CI"
    )
    assert json.loads((files / "model.json").read_text())["modelId"] == "cli-iris:1"

    deployed = ml(files, "model", "deploy", "-n", "cli-svc", "-f", "model.json",
                  "-ic", "inferenceconfig.json", "-dc", "deploymentconfig.json",
                  "--tag", "team=ml", "--description", "ported")  # fmt: skip
    service = json.loads(deployed)
    assert service["state"] == "Healthy" and service["models"] == ["cli-iris:1"]
    assert service["tags"] == {"team": "ml"} and service["description"] == "ported"

    shown = json.loads(ml(files, "service", "show", "-n", "cli-svc", "-w", "aml-port"))
    assert shown["containerResourceRequirements"]["cpu"] == 0.5 and shown["authEnabled"] is True
    keys = json.loads(ml(files, "service", "get-keys", "-n", "cli-svc"))
    regenerated = json.loads(ml(files, "service", "regen-key", "-n", "cli-svc", "--key", "Secondary"))
    assert regenerated["primaryKey"] == keys["primaryKey"] and keys["primaryKey"]
    assert regenerated["secondaryKey"] != keys["secondaryKey"]
    assert json.loads(ml(files, "service", "run", "-n", "cli-svc", "-d", SAMPLE)) == [0]
    assert "modelport scoring server listening" in ml(files, "service", "get-logs", "-n", "cli-svc")
    assert [s["name"] for s in json.loads(ml(files, "service", "list"))] == ["cli-svc"]
    refused = modelport("ml", "service", "get-access-token", "-n", "cli-svc", cwd=files, rc=1)
    assert "does not use token auth" in refused.stderr

    updated = json.loads(ml(files, "service", "update", "-n", "cli-svc", "--ic", "inferenceconfig.json",
                            "-f", "model.json", "--add-tag", "release=2"))  # fmt: skip
    assert updated["state"] == "Healthy" and updated["generation"] == 2
    assert updated["tags"] == {"team": "ml", "release": "2"}
    assert "Deleted service cli-svc" in ml(files, "service", "delete", "-n", "cli-svc")
    assert json.loads(ml(files, "service", "list")) == []


def test_model_package_writes_the_build_context_of_az_ml_output_path(files: Path) -> None:
    ml(files, "model", "register", "-n", "pkg-iris", "-p", "outputs/sklearn_iris.pkl")

    printed = json.loads(ml(files, "model", "package", "-m", "pkg-iris:1", "--ic", "inferenceconfig.json",
                            "--output-path", "pkg-context", "-g", "rg-ml"))  # fmt: skip

    context = files / "pkg-context"
    assert printed == {"generateDockerfile": True, "state": "Succeeded", "location": str(context.resolve())}
    assert (context / "azureml-app/azureml-models/pkg-iris/1/sklearn_iris.pkl").is_file()
    assert (context / "azureml-app/cli_src/score.py").read_text() == SCORE
    as_table = modelport("ml", "model", "package", "-m", "pkg-iris:1", "--ic", "inferenceconfig.json",
                         "--output-path", "pkg-context-2", "-o", "table", cwd=files)  # fmt: skip
    assert "-o table has no effect on `modelport model package`" in as_table.stderr
    refused = modelport("ml", "model", "package", "-m", "pkg-iris:1", "--ic", "inferenceconfig.json",
                        cwd=files, rc=1)  # fmt: skip
    assert "--registry" in refused.stderr and "--dockerfile-only" in refused.stderr


def test_output_formats_and_azure_only_flags(files: Path) -> None:
    proc = modelport("ml", "model", "list", "-o", "none", "-v", "--resource-group", "rg", cwd=files)
    assert proc.stdout == "" and "--resource-group ignored" in proc.stderr
    assert "cli-iris" in ml(files, "model", "list", "-o", "table")
    bad = modelport("ml", "model", "list", "-o", "xml", cwd=files, rc=2)
    assert "expected one of json" in bad.stderr


def test_compute_target_commands_without_a_cluster(files: Path, tmp_path: Path) -> None:
    resource_id = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/k"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    attach = modelport("ml", "computetarget", "attach", "aks", "-n", "myaks", "-i", resource_id,
                       "--kubeconfig", str(kubeconfig), "-g", "rg", cwd=files, rc=1)  # fmt: skip
    assert "-g ignored" in attach.stderr and 'operation "Failed"' in attach.stderr
    assert "Error: Compute object provisioning polling reached non-successful terminal state" in attach.stderr
    assert "context='k' is not in kubeconfig" in attach.stderr and attach.stdout == ""
    bad_id = modelport("ml", "computetarget", "attach", "aks", "-n", "myaks", "-i", "/nope", cwd=files, rc=1)
    assert "Invalid resource_id" in bad_id.stderr
    neither = modelport("ml", "computetarget", "attach", "aks", "-n", "myaks", cwd=files, rc=1)
    assert "either -i <AKS resource id>" in neither.stderr
    create = modelport(
        "ml", "computetarget", "create", "aks", "-n", "myaks", "--agent-count", "0", cwd=files, rc=1
    )
    assert "agent count must be a positive integer" in create.stderr
    reserved = modelport("ml", "computetarget", "create", "aks", "-n", "local", cwd=files, rc=1)
    assert "local is a reserved name" in reserved.stderr
    for command in ("detach", "delete", "show"):
        missing = modelport("ml", "computetarget", command, "-n", "myaks", "-w", "aml-port", cwd=files, rc=1)
        assert "ComputeTargetNotFound: Compute Target with name myaks" in missing.stderr
    assert json.loads(ml(files, "computetarget", "list")) == []
    deploy = modelport("ml", "model", "deploy", "-n", "to-aks", "-ic", "inferenceconfig.json",
                       "-dc", "deploymentconfig.json", "-ct", "myaks", cwd=files, rc=1)  # fmt: skip
    assert "ComputeTargetNotFound: Compute Target with name myaks" in deploy.stderr


def test_translate_rewrites_only_what_az_ml_spelled_differently(tmp_path: Path) -> None:
    from modelport.cli.ml import translate
    from modelport.errors import UserErrorException

    metadata = tmp_path / "model.json"
    metadata.write_text(json.dumps({"modelId": "iris:3", "workspaceName": "prod"}))
    args, dropped, output = translate(
        ["-n", "svc", "--model-metadata-file", str(metadata), "--query", "state", "-g", "rg", "-o", "jsonc",
         "--num_lines", "20", "--subscription-id=abc"]
    )  # fmt: skip
    assert args == ["-n", "svc", "-m", "iris:3", "--num-lines", "20"]
    assert dropped == ["--query", "-g", "--subscription-id"] and output == "jsonc"
    with pytest.raises(UserErrorException, match="is for workspace 'prod', not 'dev'"):
        translate(["-w", "dev", "-f", str(metadata)])
