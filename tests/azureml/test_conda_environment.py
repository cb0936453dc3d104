"""The notebook's conda environment, built for real: ``CondaDependencies.create`` saved to a YAML
file, ``Environment.from_conda_specification``, and the iris service running in that environment."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import sklearn

from modelport.azureml.core import Environment, Model
from modelport.azureml.core.conda_dependencies import CondaDependencies
from modelport.azureml.core.model import InferenceConfig
from modelport.azureml.core.webservice import AksWebservice
from tests.compute.test_envbuild import package_index  # noqa: F401 - the shared skip fixture

SCORE = textwrap.dedent(
    """
    import json
    import os
    import sys

    import joblib


    def init():
        global model
        model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_iris.pkl"))


    def run(raw_data):
        return {"prediction": model.predict(json.loads(raw_data)["data"]).tolist(), "python": sys.executable}
    """
)


@pytest.mark.slow
def test_iris_service_in_a_built_conda_environment(ws, project: Path, package_index) -> None:  # noqa: F811
    model = Model.register(ws, model_path="outputs/sklearn_iris.pkl", model_name="iris-conda")
    deps = CondaDependencies.create(
        pip_packages=["azureml-defaults", f"scikit-learn=={sklearn.__version__}", "joblib"],
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )
    deps.save("myenv.yml")
    env = Environment.from_conda_specification(name="iris-conda-env", file_path="myenv.yml")
    (project / "conda_src").mkdir()
    (project / "conda_src" / "score.py").write_text(SCORE)
    inference_config = InferenceConfig(entry_script="score.py", source_directory="conda_src", environment=env)
    service = Model.deploy(
        ws, "iris-conda", [model], inference_config, AksWebservice.deploy_configuration(num_replicas=1)
    )
    service.wait_for_deployment(timeout_sec=300)
    answer = service.run(json.dumps({"data": [[6.7, 3.0, 5.2, 2.3]]}))
    assert answer["prediction"] == [2]
    assert answer["python"] != sys.executable  # the built environment's interpreter, not this one
    assert "iris-conda-env" in service.get_logs(init=True)
    assert service.environment.name == "iris-conda-env"
    service.delete()
