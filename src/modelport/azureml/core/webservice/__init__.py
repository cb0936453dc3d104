"""``azureml.core.webservice``: ``Webservice``, ``AksWebservice``, ``AciWebservice``, ``LocalWebservice``,
``AksEndpoint``, as thin types over :class:`modelport.service.webservice.Webservice`.

Submodules mirror Azure ML's: ``webservice`` (the base), ``aks``, ``aci``, ``local``.
"""

from modelport.azureml.core.webservice.aci import AciServiceDeploymentConfiguration, AciWebservice
from modelport.azureml.core.webservice.aks import (
    AksEndpoint,
    AksServiceDeploymentConfiguration,
    AksWebservice,
    AutoScaler,
    ContainerResourceRequirements,
    DataCollection,
    LivenessProbeRequirements,
)
from modelport.azureml.core.webservice.deploy import deploy_typed
from modelport.azureml.core.webservice.local import LocalWebservice, LocalWebserviceDeploymentConfiguration
from modelport.azureml.core.webservice.webservice import Webservice

__all__ = [
    "AciServiceDeploymentConfiguration",
    "AciWebservice",
    "AksEndpoint",
    "AksServiceDeploymentConfiguration",
    "AksWebservice",
    "AutoScaler",
    "ContainerResourceRequirements",
    "DataCollection",
    "LivenessProbeRequirements",
    "LocalWebservice",
    "LocalWebserviceDeploymentConfiguration",
    "Webservice",
    "deploy_typed",
]
