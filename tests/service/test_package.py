"""``Model.package`` (the Azure ML facade and the SDK): the package, its build context and its errors.

The written context is checked file by file; that it serves is shown by running the Dockerfile's
``CMD`` with its ``ENV`` on this machine, the context's ``azureml-app/`` standing in for the
image's ``/var/azureml-app`` (no container engine here: the image's filesystem is the one part
simulated; tests/compute/kubernetes/realnode/test_package_node.py builds and runs the image).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelport import Model as SdkModel
from modelport.azureml.core import Environment, InferenceConfig, Model
from modelport.azureml.core.model import ModelPackage
from modelport.compute import targets
from modelport.compute.kubernetes.build_context import INSTRUCTIONS, RUNTIME_UID
from modelport.compute.kubernetes.fetch_plan import APP_ROOT
from modelport.compute.kubernetes.objects import DEFAULT_IMAGE
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import UserErrorException, WebserviceException
from modelport.registry.environment import ContainerRegistry
from modelport.service.package import NEEDS_ENVIRONMENT
from modelport.workspace import Workspace
from tests.compute.kubernetes.test_serving_testbed import IRIS_SCORE, SAMPLE
from tests.registry.test_build_context import instructions, pairs
from tests.servers import free_port, wait_for_port, wait_until


@pytest.fixture
def ws(workspace_factory: Any) -> Workspace:
    return workspace_factory("sqlite-local")  # type: ignore[no-any-return]


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    """A logistic regression on the iris data, trained here."""
    features, labels = load_iris(return_X_y=True)
    path = tmp_path / "model.pkl"
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), path)
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "helpers").mkdir(parents=True)
    (folder / "score.py").write_text(IRIS_SCORE)
    (folder / "helpers" / "util.py").write_text("VALUE = 1\n")
    return folder


@pytest.fixture
def model(ws: Workspace, iris: Path) -> Model:
    return Model.register(ws, str(iris), "iris")


def _environment() -> Environment:
    env = Environment("iris-env")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    env.environment_variables = {"GREETING": "it's me"}
    return env


def _config(source: Path, environment: Environment | None = None) -> InferenceConfig:
    return InferenceConfig(entry_script="score.py", source_directory=str(source), environment=environment)


def _values(dockerfile: str, instruction: str) -> list[str]:
    """The arguments of every ``instruction``, as the build reads the file."""
    return [arguments for keyword, arguments in instructions(dockerfile) if keyword == instruction]


def _env_values(dockerfile: str) -> dict[str, str]:
    """Every ``ENV`` name and value, read back as Docker reads them."""
    return {
        name: value for arguments in _values(dockerfile, "ENV") for name, value in pairs(arguments).items()
    }


def test_the_saved_context_holds_the_models_the_source_and_a_command_that_serves_them(
    ws: Workspace, model: Model, iris: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    package = Model.package(ws, [model], _config(source, _environment()), generate_dockerfile=True)
    package.wait_for_creation(show_output=True)

    assert isinstance(package, ModelPackage)
    assert package.state == "Succeeded" and package.location is None
    printed = capsys.readouterr().out
    assert "Packaging iris:1 with entry script src/score.py in environment 'iris-env'" in printed
    assert "docker build -t iris:latest DIR" in printed
    assert package.get_logs() == printed
    assert package.get_logs(decode=False, offset=10) == printed[10:].encode()

    dest = tmp_path / "context"
    package.save(dest)

    assert package.location == str(dest.resolve())
    assert package.serialize() == {
        "generateDockerfile": True,
        "state": "Succeeded",
        "location": str(dest.resolve()),
    }
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [
        "Dockerfile",
        "README.md",
        "azureml-app/azureml-models/iris/1/model.pkl",
        "azureml-app/src/helpers/util.py",
        "azureml-app/src/score.py",
        "conda.yml",
        "requirements.txt",
    ]
    assert (dest / "azureml-app/azureml-models/iris/1/model.pkl").read_bytes() == iris.read_bytes()
    assert (dest / "azureml-app/src/score.py").read_text() == IRIS_SCORE
    assert "scikit-learn" in (dest / "requirements.txt").read_text().splitlines()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".context")], "staging folder left behind"

    dockerfile = (dest / "Dockerfile").read_text()
    assert _values(dockerfile, "FROM") == [DEFAULT_IMAGE]
    # The environment's step copies requirements.txt alone: the models are copied once, below.
    assert _values(dockerfile, "COPY") == [
        "requirements.txt /tmp/modelport-build/",
        f"--chown={RUNTIME_UID} azureml-app/ {APP_ROOT}/",
    ]
    env = _env_values(dockerfile)
    assert env["GREETING"] == "it's me"
    assert env["AML_APP_ROOT"] == APP_ROOT
    assert env["AZUREML_MODEL_DIR"] == f"{APP_ROOT}/azureml-models/iris/1"
    assert env["AZUREML_ENTRY_SCRIPT"] == "src/score.py"
    assert env["AZUREML_SOURCE_DIRECTORY"] == "src"
    assert _values(dockerfile, "WORKDIR") == [APP_ROOT]
    assert _values(dockerfile, "EXPOSE") == ["5001"]
    (cmd,) = _values(dockerfile, "CMD")
    assert json.loads(cmd) == [
        *("python", "-m", "modelport", "serve"),
        *("--entry_script", f"{APP_ROOT}/src/score.py"),
        *("--model_dir", f"{APP_ROOT}/azureml-models/iris/1"),
        *("--port", "5001", "--host", "0.0.0.0"),
    ]
    # The app's layers come after the image turns non-root; every instruction is one modelport writes.
    keywords = [keyword for keyword, _ in instructions(dockerfile)]
    assert keywords[-6:] == ["USER", "COPY", "ENV", "WORKDIR", "EXPOSE", "CMD"]
    assert set(keywords) <= set(INSTRUCTIONS)
    readme = (dest / "README.md").read_text()
    assert "docker build -t iris:latest ." in readme and "docker run --rm -p 5001:5001 iris:latest" in readme


def test_the_contexts_command_serves_the_model_from_its_app_root(
    ws: Workspace, model: Model, source: Path, tmp_path: Path
) -> None:
    """Runs the Dockerfile's CMD with its ENV, /var/azureml-app replaced by the context's azureml-app."""
    package = Model.package(ws, [model], _config(source, _environment()), generate_dockerfile=True)
    dest = tmp_path / "context"
    package.save(dest)
    dockerfile = (dest / "Dockerfile").read_text()
    app_root = str(dest / "azureml-app")
    (cmd,) = _values(dockerfile, "CMD")
    port = free_port()
    argv = [sys.executable if a == "python" else a.replace(APP_ROOT, app_root) for a in json.loads(cmd)]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {name: value.replace(APP_ROOT, app_root) for name, value in _env_values(dockerfile).items()}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=app_root,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, "the package's command")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: client.get("/health/ready").status_code == 200, "init() to return")
            reply = client.post("/score", json=SAMPLE)
        assert reply.status_code == 200, log.read_text()
        assert reply.json() == [0, 2]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_several_models_share_the_models_folder_and_the_sdk_packages_too(
    ws: Workspace, iris: Path, source: Path, tmp_path: Path
) -> None:
    first = SdkModel.register(ws, str(iris), "iris")
    second = SdkModel.register(ws, str(source / "helpers"), "helpers")

    package = SdkModel.package(
        ws,
        [first, "helpers:1"],
        _config(source, _environment()),
        True,
        image_name="team/iris",
        image_label="v2",
    )
    package.save(tmp_path / "context")

    dockerfile = (tmp_path / "context" / "Dockerfile").read_text()
    assert _env_values(dockerfile)["AZUREML_MODEL_DIR"] == f"{APP_ROOT}/azureml-models"
    assert (tmp_path / "context/azureml-app/azureml-models/helpers/1/helpers/util.py").is_file()
    assert "docker build -t team/iris:v2 ." in (tmp_path / "context/README.md").read_text()
    assert second.id == "helpers:1"


def test_packaging_needs_an_environment_and_checks_the_image_name(
    ws: Workspace, model: Model, source: Path
) -> None:
    with pytest.raises(WebserviceException) as missing:
        Model.package(ws, [model], _config(source), generate_dockerfile=True)
    assert missing.value.message == NEEDS_ENVIRONMENT
    assert NEEDS_ENVIRONMENT == (
        "Error, model packaging requires an InferenceConfig containing an Environment object."
    )
    with pytest.raises(UserErrorException, match="You must provide an InferenceConfig"):
        Model.package(ws, [], generate_dockerfile=True)
    with pytest.raises(WebserviceException, match="Invalid image_name 'Iris:1'"):
        Model.package(ws, [model], _config(source, _environment()), True, image_name="Iris:1")
    with pytest.raises(WebserviceException, match="Invalid image_label '-x'"):
        Model.package(ws, [model], _config(source, _environment()), True, image_label="-x")


def _attach(ws: Workspace, name: str, **settings: Any) -> None:
    """Record an attached Kubernetes target (no cluster is reached: packaging reads its settings only)."""
    definition = KubernetesTarget(kubeconfig="never-read", **settings).model_dump(mode="json")
    targets.add_target(ws, name, "kubernetes", definition)
    targets.set_state(ws, name, targets.SUCCEEDED, definition=definition)


def test_image_mode_pushes_to_a_targets_registry_and_says_which_when_none_or_several(
    ws: Workspace, model: Model, source: Path
) -> None:
    config = _config(source, _environment())
    with pytest.raises(UserErrorException, match="no target has one. Fix: name the target"):
        Model.package(ws, [model], config)
    _attach(ws, "plain")
    with pytest.raises(UserErrorException, match="'plain' has no registry to push the package's image to"):
        Model.package(ws, [model], config, compute_target="plain")
    _attach(ws, "one", registry="registry.one:5000")
    _attach(ws, "two", registry="registry.two:5000")
    with pytest.raises(UserErrorException, match="targets one, two have one. Fix: name the target"):
        Model.package(ws, [model], config)
    with pytest.raises(UserErrorException, match="generate_dockerfile=True pushes nothing"):
        Model.package(ws, [model], config, True, compute_target="one")


def test_image_mode_without_a_builder_is_failed_naming_what_to_install(
    ws: Workspace, model: Model, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH holds no builder (an empty folder: a machine without one), so the build stops before
    any push; building and pushing for real needs a builder and a base image (the real node)."""
    _attach(ws, "prod", registry="registry.example:5000/team", registry_username="me",
            registry_password="${PKG_REGISTRY_PASSWORD}")  # fmt: skip
    monkeypatch.setenv("PKG_REGISTRY_PASSWORD", "secret")
    empty = tmp_path / "no-builders"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    package = Model.package(ws, [model], _config(source, _environment()), image_label="v1")

    assert package.state == "Failed" and package.generate_dockerfile is False and package.location is None
    assert package.image == "registry.example:5000/team/iris:v1"
    assert package.error is not None and package.error["code"] == "ImageBuildFailed"
    assert "install docker (with its daemon running), podman or buildah" in package.error["message"]
    assert package.error["message"] in package.get_logs()
    with pytest.raises(WebserviceException, match="non-successful terminal state.\nState: Failed"):
        package.wait_for_creation()
    assert package.get_container_registry() == ContainerRegistry("registry.example:5000", "me", "secret")
    assert package.serialize() == {"generateDockerfile": False, "state": "Failed", "location": None}
    with pytest.raises(WebserviceException, match="built into an image"):
        package.save(tmp_path / "context")
    with pytest.raises(WebserviceException, match="does not contain an image"):
        package.pull()


def test_save_refuses_a_folder_in_use_and_leaves_nothing_when_a_model_is_gone(
    ws: Workspace, model: Model, source: Path, tmp_path: Path
) -> None:
    package = Model.package(ws, [model], _config(source, _environment()), generate_dockerfile=True)
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")

    with pytest.raises(WebserviceException, match="not an empty folder. Fix: name a new or empty folder"):
        package.save(used)
    assert [p.name for p in used.iterdir()] == ["keep.txt"]

    model.delete()
    with pytest.raises(WebserviceException):
        package.save(tmp_path / "context")
    assert not (tmp_path / "context").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".context")]
    assert package.location is None


def test_container_registry_is_the_base_images_with_the_environments_credentials(
    ws: Workspace, model: Model, source: Path
) -> None:
    plain = Model.package(ws, [model], _config(source, _environment()), generate_dockerfile=True)
    # DEFAULT_IMAGE names no registry host: Docker's default registry.
    assert plain.get_container_registry() == ContainerRegistry(address="docker.io")

    private = _environment()
    private.docker.base_image = "registry.example:5000/team/base:1"
    private.docker.base_image_registry = ContainerRegistry("registry.example:5000", "me", "secret")
    package = Model.package(ws, [model], _config(source, private), generate_dockerfile=True)
    assert package.get_container_registry() == ContainerRegistry("registry.example:5000", "me", "secret")
    with pytest.raises(WebserviceException, match="does not contain an image"):
        package.pull()
