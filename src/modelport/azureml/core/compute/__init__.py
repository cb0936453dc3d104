"""``azureml.core.compute``: ``ComputeTarget``, ``AksCompute`` and ``KubernetesCompute``.

Submodules mirror Azure ML's: ``compute`` (``ComputeTarget``), ``aks`` (``AksCompute`` and its
configurations), ``kubernetes`` (``KubernetesCompute``).
"""

from modelport.azureml.core.compute.aks import (
    AksAttachConfiguration,
    AksCompute,
    AksProvisioningConfiguration,
    SslConfiguration,
    SystemService,
)
from modelport.azureml.core.compute.compute import ComputeTarget
from modelport.azureml.core.compute.kubernetes import KubernetesAttachConfiguration, KubernetesCompute

__all__ = [
    "AksAttachConfiguration",
    "AksCompute",
    "AksProvisioningConfiguration",
    "ComputeTarget",
    "KubernetesAttachConfiguration",
    "KubernetesCompute",
    "SslConfiguration",
    "SystemService",
]
