"""Diagnostics and the per-service routes of the local front end: timeouts, swagger, metrics, new code."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from modelport import Model
from modelport.compute.local.agent import DEPLOY_TIMEOUT_ENV
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import WebserviceException

HANGING_INIT_SCORE = textwrap.dedent(
    """
    import time

    def init():
        time.sleep(60)  # longer than the deployment timeout this module sets

    def run(raw_data):
        return raw_data
    """
)

SCHEMA_SCORE = textwrap.dedent(
    """
    import numpy as np
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.schema_decorators import input_schema, output_schema

    def init():
        pass

    @input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
    @output_schema(NumpyParameterType(np.array([3.0])))
    def run(data):
        return data.sum(axis=1).tolist()
    """
)

VERSIONED_SCORE = textwrap.dedent(
    """
    import os

    def init():
        pass

    def run(raw_data):
        return {"model_dir": os.environ["AZUREML_MODEL_DIR"].split("azureml-models/")[1], "code": "CODE"}
    """
)


@pytest.fixture(scope="module", autouse=True)
def short_deploy_timeout() -> Iterator[None]:
    """Rollouts time out after 4 s in this module (set before its agent starts)."""
    os.environ[DEPLOY_TIMEOUT_ENV] = "4"
    yield
    os.environ.pop(DEPLOY_TIMEOUT_ENV, None)


def _inference(write_source, script: str) -> InferenceConfig:
    return InferenceConfig(entry_script="score.py", source_directory=str(write_source(script)))


def test_a_rollout_that_never_gets_ready_times_out_as_unhealthy(local_ws, write_source) -> None:
    service = Model.deploy(
        local_ws, "hangs", [], _inference(write_source, HANGING_INIT_SCORE), local_deploy_configuration()
    )
    with pytest.raises(WebserviceException, match="DeploymentTimedOut") as caught:
        service.wait_for_deployment(timeout_sec=120)
    assert "current service state: Unhealthy" in str(caught.value)
    assert service.error["statusCode"] == 504 and "0 of 1 replicas ready" in service.error["message"]
    service.delete()


def test_swagger_and_metrics_per_service_through_the_front_end(local_ws, write_source) -> None:
    service = Model.deploy(
        local_ws, "schema-svc", [], _inference(write_source, SCHEMA_SCORE), local_deploy_configuration()
    )
    service.wait_for_deployment(timeout_sec=120)
    swagger = httpx.get(service.swagger_uri, timeout=10)
    assert swagger.status_code == 200
    assert "data" in json.dumps(swagger.json()["definitions"]["ServiceInput"])
    assert service.run({"data": [[1.0, 2.0], [3.0, 4.0]]}) == [3.0, 7.0]
    base = service.scoring_uri.split("/api/")[0]
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'service="schema-svc"' in metrics
    service.delete()


def test_update_with_new_models_and_code_rolls_out_both(local_ws, write_source, tmp_path) -> None:
    first = tmp_path / "v1.bin"
    first.write_bytes(b"version one")
    model_v1 = Model.register(local_ws, first, "versioned")
    first.write_bytes(b"version two")
    model_v2 = Model.register(local_ws, first, "versioned")
    service = Model.deploy(
        local_ws,
        "versioned-svc",
        [model_v1],
        _inference(write_source, VERSIONED_SCORE.replace("CODE", "a")),
        local_deploy_configuration(),
    )
    service.wait_for_deployment(timeout_sec=120)
    assert service.run("{}") == {"model_dir": "versioned/1", "code": "a"}
    with pytest.raises(WebserviceException, match='both "models" and "inference_config"'):
        service.update(models=[model_v2])
    service.update(
        models=[model_v2], inference_config=_inference(write_source, VERSIONED_SCORE.replace("CODE", "b"))
    )
    service.wait_for_deployment(timeout_sec=120)
    assert service.run("{}") == {"model_dir": "versioned/2", "code": "b"}
    assert [m.id for m in service.models] == ["versioned:2"]
    model_v1.delete()  # no longer in use
    service.delete()
