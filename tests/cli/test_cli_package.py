"""``modelport model package``, run as a user runs it (subprocesses): the build context, the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.service.package import NEEDS_ENVIRONMENT
from tests.clirun import modelport

SCORE = "def init():\n    pass\n\n\ndef run(raw_data):\n    return raw_data\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    modelport("workspace", "create", "pkgws", cwd=tmp_path)
    (tmp_path / "model.pkl").write_bytes(b"model bytes")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE)
    config = {
        "entryScript": "score.py",
        "sourceDirectory": "src",
        "environment": {"name": "pkg-env", "python": {"userManagedDependencies": True}},
    }
    (tmp_path / "inferenceconfig.json").write_text(json.dumps(config))
    (tmp_path / "noenv.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "src"}))
    modelport("model", "register", "-n", "iris", "-p", "model.pkl", cwd=tmp_path)
    return tmp_path


def test_dockerfile_only_writes_the_context_and_prints_the_package(project: Path) -> None:
    proc = modelport("model", "package", "-m", "iris:1", "-ic", "inferenceconfig.json", "--dockerfile-only",
                     "-o", "ctx", "--image-name", "team/iris", "--image-label", "v1",
                     cwd=project)  # fmt: skip

    context = project / "ctx"
    assert json.loads(proc.stdout) == {
        "generateDockerfile": True,
        "state": "Succeeded",
        "location": str(context.resolve()),
    }
    assert "Packaging iris:1 with entry script src/score.py in environment 'pkg-env'" in proc.stderr
    assert "Build it: docker build -t team/iris:v1 ctx" in proc.stderr
    assert (context / "azureml-app/azureml-models/iris/1/model.pkl").read_bytes() == b"model bytes"
    assert (context / "azureml-app/src/score.py").read_text() == SCORE
    assert '"--entry_script", "/var/azureml-app/src/score.py"' in (context / "Dockerfile").read_text()

    again = modelport("model", "package", "-m", "iris:1", "-ic", "inferenceconfig.json", "-o", "ctx",
                      cwd=project, rc=1)  # fmt: skip
    assert "is not an empty folder. Fix: name a new or empty folder" in again.stderr


def test_errors_name_the_fix(project: Path) -> None:
    image_mode = modelport(
        "model", "package", "-m", "iris:1", "-ic", "inferenceconfig.json", cwd=project, rc=1
    )
    fix = "no target has one. Fix: name the target (compute_target='NAME', --ct NAME)"
    assert fix in " ".join(image_mode.stderr.split())
    no_target = modelport("model", "package", "-m", "iris:1", "-ic", "inferenceconfig.json", "--ct", "aks",
                          cwd=project, rc=1)  # fmt: skip
    assert "Compute Target with name aks not found" in no_target.stderr
    no_env = modelport(
        "model", "package", "-m", "iris:1", "-ic", "noenv.json", "-o", "ctx", cwd=project, rc=1
    )
    assert NEEDS_ENVIRONMENT in no_env.stderr
    no_dir = modelport("model", "package", "-m", "iris:1", "-ic", "inferenceconfig.json", "--dockerfile-only",
                       cwd=project, rc=2)  # fmt: skip
    assert "-o/--output-path DIR" in no_dir.stderr
    assert not (project / "ctx").exists()
