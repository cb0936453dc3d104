"""Ports of typical Azure ML v1 "deploy to AKS" notebooks, run end to end on the local target.

Each test reads like the notebook it ports: only the import prefix differs from Azure ML v1
(``azureml.core`` → ``modelport.azureml.core``); the entry scripts are Azure ML's, unchanged
(they import ``azureml.*`` and ``inference_schema`` inside the replica).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from modelport.azureml.core import Environment, Model, Webservice
from modelport.azureml.core.conda_dependencies import CondaDependencies
from modelport.azureml.core.model import InferenceConfig
from modelport.azureml.core.webservice import AksWebservice
from modelport.azureml.exceptions import WebserviceException

SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})

# The scoring script of Azure ML's sklearn deployment samples: inference-schema decorators, the
# model read from AZUREML_MODEL_DIR, and a file of the source directory opened by its path
# relative to the app root (<source directory name>/labels.json).
SCHEMA_SCORE = textwrap.dedent(
    """
    import json
    import os

    import joblib
    import numpy as np
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
    from inference_schema.schema_decorators import input_schema, output_schema


    def init():
        global model, labels
        model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_iris.pkl"))
        with open(os.path.join("iris_service", "labels.json")) as handle:
            labels = json.load(handle)
        print("init done: labels", labels)


    @input_schema("data", NumpyParameterType(np.array([[5.1, 3.5, 1.4, 0.2]])))
    @output_schema(StandardPythonParameterType(["setosa"]))
    def run(data):
        return [labels[int(i)] for i in model.predict(data)]
    """
)

MULTI_SCORE = textwrap.dedent(
    """
    import json

    import joblib
    from azureml.core.model import Model


    def init():
        global first, second, paths
        paths = [Model.get_model_path("iris-sk"), Model.get_model_path(model_name="iris-copy", version=1)]
        first, second = (joblib.load(path) for path in paths)


    def run(raw_data):
        data = json.loads(raw_data)["data"]
        return {"first": first.predict(data).tolist(), "second": second.predict(data).tolist(),
                "paths": paths}
    """
)

RAW_SCORE = textwrap.dedent(
    """
    import json

    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse


    def init():
        pass


    @rawhttp
    def run(request):
        if request.method == "GET":
            return AMLResponse(json.dumps({"echo": request.args.get("q")}), 200,
                               {"Content-Type": "application/json"})
        if request.method == "POST":
            body = request.get_data(as_text=True)
            return AMLResponse(json.dumps({"length": len(body), "body": json.loads(body)}), 200,
                               {"Content-Type": "application/json"})
        return AMLResponse("bad request", 500)
    """
)


def _source(project: Path, name: str, script: str, **files: str) -> str:
    folder = project / name
    folder.mkdir(exist_ok=True)
    (folder / "score.py").write_text(script)
    for file_name, content in files.items():
        (folder / file_name).write_text(content)
    return name


def _workspace_python_env(name: str) -> Environment:
    """The notebook's environment; user-managed so that replicas run in this Python (no build)."""
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["azureml-defaults", "scikit-learn", "joblib", "inference-schema[numpy-support]"]
    )
    env.python.user_managed_dependencies = True
    return env


@pytest.fixture(scope="module")
def iris(ws):
    """``Model.register`` as the notebooks did it: a path relative to the notebook's folder."""
    return Model.register(
        workspace=ws,
        model_path="outputs/sklearn_iris.pkl",
        model_name="iris-sk",
        tags={"area": "iris", "type": "classification"},
        description="SVC on iris",
        model_framework=Model.Framework.SCIKITLEARN,
    )


def test_register_deploy_run_keys_logs_update_delete(ws, project, iris, capsys) -> None:
    assert ws.subscription_id == "0000-sub" and ws.resource_group == "rg-ml" and ws.name == "aml-port"
    assert iris.id == "iris-sk:1" and ws.models["iris-sk"].tags["area"] == "iris"
    assert isinstance(iris, Model) and all(isinstance(m, Model) for m in Model.list(ws))
    source = _source(
        project, "iris_service", SCHEMA_SCORE, **{"labels.json": '["setosa", "versicolor", "virginica"]'}
    )
    inference_config = InferenceConfig(
        entry_script="score.py", source_directory=source, environment=_workspace_python_env("iris-env")
    )
    aks_config = AksWebservice.deploy_configuration(
        cpu_cores=0.5, memory_gb=1, num_replicas=1, tags={"stage": "dev"}, description="iris on AKS"
    )
    service = Model.deploy(ws, "iris-aks", [iris], inference_config, aks_config)
    assert isinstance(service, AksWebservice)
    service.wait_for_deployment(show_output=True)
    assert 'service creation operation finished, operation "Succeeded"' in capsys.readouterr().out
    assert service.state == "Healthy" and service.error is None

    assert service.run(SAMPLE) == ["setosa", "virginica"]
    primary, secondary = service.get_keys()
    assert primary and secondary and primary != secondary
    allowed = httpx.post(
        service.scoring_uri,
        content=SAMPLE,
        headers={"Authorization": f"Bearer {secondary}", "Content-Type": "application/json"},
    )
    assert allowed.status_code == 200 and allowed.json() == ["setosa", "virginica"]
    assert httpx.post(service.scoring_uri, content=SAMPLE).status_code == 401
    swagger = httpx.get(service.swagger_uri).json()
    assert "data" in json.dumps(swagger["definitions"]) or "data" in json.dumps(swagger)
    assert "init done: labels" in service.get_logs()

    again = Webservice(ws, "iris-aks")
    assert type(again) is AksWebservice and again.tags == {"stage": "dev"}
    assert again.autoscaler.autoscale_enabled is False and again.container_resource_requirements.cpu == 0.5
    assert again.liveness_probe_requirements.initial_delay_seconds == 310
    data = again.serialize()
    assert (
        data["imageId"] is None and data["scoringUri"] == service.scoring_uri and data["state"] == "Healthy"
    )
    assert list(ws.webservices) == ["iris-aks"]
    assert [s.name for s in Webservice.list(ws, compute_type="AKS")] == ["iris-aks"]
    assert Webservice.list(ws, compute_type="ACI") == []
    with pytest.raises(WebserviceException, match='Invalid compute type "VM"'):
        Webservice.list(ws, compute_type="VM")

    service.update(num_replicas=2, tags={"stage": "prod"}, memory_gb=0.75)
    service.wait_for_deployment()
    assert service.num_replicas == 2 and service.tags == {"stage": "prod"}
    assert service.deployment_status["readyReplicas"] == 2
    assert service.run(SAMPLE) == ["setosa", "virginica"]
    with pytest.raises(WebserviceException, match="No parameters provided to update"):
        service.update()

    service.delete()
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        Webservice(ws, "iris-aks")


def test_multi_model_deployment_with_get_model_path(ws, project, iris) -> None:
    copy = Model.register(ws, model_path="outputs/sklearn_iris.pkl", model_name="iris-copy")
    inference_config = InferenceConfig(
        entry_script="score.py",
        source_directory=_source(project, "multi", MULTI_SCORE),
        environment=_workspace_python_env("iris-env"),
    )
    service = Model.deploy(
        ws, "iris-multi", [iris, copy], inference_config, AksWebservice.deploy_configuration(num_replicas=1)
    )
    service.wait_for_deployment()
    answer = service.run(SAMPLE)
    assert answer["first"] == answer["second"] == [0, 2]
    first, second = answer["paths"]
    assert first.endswith("azureml-models/iris-sk/1/sklearn_iris.pkl")
    assert second.endswith("azureml-models/iris-copy/1/sklearn_iris.pkl")
    service.delete()


def test_raw_http_entry_script_with_token_auth(ws, project) -> None:
    inference_config = InferenceConfig(
        entry_script="score.py", source_directory=_source(project, "raw", RAW_SCORE)
    )
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False, token_auth_enabled=True)
    service = Model.deploy(ws, "raw-token", [], inference_config, config)
    service.wait_for_deployment()
    assert service.token_auth_enabled and not service.auth_enabled

    assert service.run({"hello": "world"}) == {"length": 18, "body": {"hello": "world"}}
    token = service.get_access_token()
    assert token.token_type == "Bearer" and token.refresh_after < token.expiry_on
    echoed = httpx.get(
        service.scoring_uri, params={"q": "ping"}, headers={"Authorization": f"Bearer {token.access_token}"}
    )
    assert echoed.status_code == 200 and echoed.json() == {"echo": "ping"}
    primary_key = service.get_keys()[0]
    refused = httpx.get(service.scoring_uri, headers={"Authorization": f"Bearer {primary_key}"})
    assert refused.status_code == 401  # keys do not open a token-auth service
    with pytest.warns(DeprecationWarning):
        access_token, refresh_after = service.get_token()
    assert access_token and refresh_after
    service.delete()
