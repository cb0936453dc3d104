"""The facade's ``Model.deploy``: modelport's deploy, then the Azure ML type of the result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelport.azureml.core.webservice.aci import AciServiceDeploymentConfiguration, AciWebservice
from modelport.azureml.core.webservice.local import LocalWebserviceDeploymentConfiguration, remember_source
from modelport.azureml.core.webservice.webservice import typed
from modelport.config import InferenceConfig
from modelport.service.deploy import deploy as _deploy


def deploy_typed(
    workspace: Any,
    name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig | None,
    deployment_config: Any,
    deployment_target: Any,
    overwrite: bool,
    show_output: bool,
) -> Any:
    """Deploy as ``Model.deploy`` does, and return ``Local``/``Aci``/``AksWebservice`` per the config."""
    from modelport.compute.local.ports import check_port, free_port

    if isinstance(deployment_config, LocalWebserviceDeploymentConfiguration):
        if deployment_config.port is None:  # Azure ML chose a free port at deploy time
            deployment_config = deployment_config.model_copy(update={"port": free_port()})
        check_port(workspace, name, deployment_config.port)
    service = _deploy(
        workspace,
        name,
        list(models),
        inference_config,
        deployment_config,
        deployment_target,
        overwrite,
        show_output,
    )
    if isinstance(deployment_config, LocalWebserviceDeploymentConfiguration) and inference_config is not None:
        remember_source(workspace, name, inference_config)
    if isinstance(deployment_config, AciServiceDeploymentConfiguration):
        service.__class__ = AciWebservice
        return service
    return typed(service)
