"""Fixtures for the Azure ML v1 notebook ports: one workspace and one local agent per module.

The workspace is created as a ported notebook creates it (``Workspace.create`` with Azure's
arguments); the project folder holds what a notebook's folder held: the trained model file, a
``source_directory`` with ``score.py``, and ``.azureml/config.json``. Every agent started here is
stopped at teardown.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import modelport_home, module_home  # noqa: F401 - shared fixtures

IRIS_FILE = "sklearn_iris.pkl"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The notebook's folder, with the iris SVC trained on scikit-learn's bundled data in outputs/."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    folder = tmp_path_factory.mktemp("notebook")
    (folder / "outputs").mkdir()
    features, labels = load_iris(return_X_y=True)
    joblib.dump(SVC(gamma="scale").fit(features, labels), folder / "outputs" / IRIS_FILE)
    previous = Path.cwd()
    os.chdir(folder)  # notebooks run in their folder; model_path and source_directory are relative
    yield folder
    os.chdir(previous)


@pytest.fixture(scope="module")
def ws(project: Path, module_home: Path):  # noqa: F811
    """``Workspace.create(...)`` with Azure's arguments, then ``write_config``/``from_config``."""
    from modelport.azureml.core import Workspace
    from modelport.compute.local.driver import LocalDriver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        created = Workspace.create(
            "aml-port",
            subscription_id="0000-sub",
            resource_group="rg-ml",
            location="westeurope",
            exist_ok=True,
            show_output=False,
        )
    created.write_config()
    workspace = Workspace.from_config()
    yield workspace
    LocalDriver().stop_agent(workspace)
