"""Fixtures for the service lifecycle on the local target: real agents, replicas and sockets.

One MODELPORT_HOME and one workspace per test module, so that the module's tests share one
local agent (starting replica processes is what takes time); every agent started here is
stopped at teardown, even when a test fails.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IRIS_SCORE = textwrap.dedent(
    """
    import json
    import os

    import joblib

    model = None


    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))


    def run(raw_data):
        data = json.loads(raw_data)["data"]
        return model.predict(data).tolist()
    """
)

FAILING_INIT_SCORE = textwrap.dedent(
    """
    def init():
        raise RuntimeError("the model file is corrupt (raised on purpose by the test)")


    def run(raw_data):
        return raw_data
    """
)


@pytest.fixture(autouse=True, scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One MODELPORT_HOME for the whole module (replaces the per-test one)."""
    home = tmp_path_factory.mktemp("service-home")
    previous = os.environ.get("MODELPORT_HOME")
    os.environ["MODELPORT_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("MODELPORT_HOME", None)
    else:
        os.environ["MODELPORT_HOME"] = previous


@pytest.fixture(autouse=True)
def modelport_home(module_home: Path) -> Path:
    """Overrides the suite-wide per-test home: tests of a module share the module's."""
    return module_home


@pytest.fixture(scope="module")
def local_ws(module_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A workspace whose local agent is stopped after the module's tests."""
    from modelport.compute.local.driver import LocalDriver
    from modelport.workspace import Workspace

    ws = Workspace.create("svc-tests", path=tmp_path_factory.mktemp("ws"))
    yield ws
    LocalDriver().stop_agent(ws)


@pytest.fixture(scope="module")
def iris_model(local_ws, tmp_path_factory: pytest.TempPathFactory):
    """The iris SVC, trained here (scikit-learn's bundled data) and registered."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    from modelport.registry.model import Model

    features, labels = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("model") / "model.pkl"
    joblib.dump(SVC(gamma="scale").fit(features, labels), path)
    return Model.register(local_ws, path, "iris", model_framework=Model.Framework.SCIKITLEARN)


@pytest.fixture(scope="module")
def write_source(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """Write an entry script into a fresh source folder; returns the folder."""

    def write(script: str, name: str = "src") -> Path:
        folder = tmp_path_factory.mktemp(name)
        (folder / "score.py").write_text(script)
        return folder

    return write
