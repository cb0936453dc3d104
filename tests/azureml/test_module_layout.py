"""The facade mirrors Azure ML v1's module layout: every path a notebook imports from works with the
``modelport.`` prefix, and a name reached by two paths is one object."""

from __future__ import annotations

import importlib

import pytest

# (module, name): Azure ML v1's own module of each name (azureml-core 1.61), then the packages that
# re-export it, as notebooks import them.
LAYOUT = [
    ("azureml.core.webservice.webservice", "Webservice"),
    ("azureml.core.webservice.aks", "AksWebservice"),
    ("azureml.core.webservice.aks", "AksServiceDeploymentConfiguration"),
    ("azureml.core.webservice.aks", "AksEndpoint"),
    ("azureml.core.webservice.local", "LocalWebservice"),
    ("azureml.core.webservice.local", "LocalWebserviceDeploymentConfiguration"),
    ("azureml.core.webservice.aci", "AciWebservice"),
    ("azureml.core.webservice.aci", "AciServiceDeploymentConfiguration"),
    ("azureml.core.webservice", "Webservice"),
    ("azureml.core.webservice", "AksWebservice"),
    ("azureml.core.webservice", "AksEndpoint"),
    ("azureml.core.webservice", "LocalWebservice"),
    ("azureml.core.webservice", "AciWebservice"),
    ("azureml.core.compute.compute", "ComputeTarget"),
    ("azureml.core.compute.aks", "AksCompute"),
    ("azureml.core.compute.aks", "AksProvisioningConfiguration"),
    ("azureml.core.compute.aks", "AksAttachConfiguration"),
    ("azureml.core.compute.aks", "SslConfiguration"),
    ("azureml.core.compute.kubernetes", "KubernetesCompute"),
    ("azureml.core.compute", "ComputeTarget"),
    ("azureml.core.compute", "AksCompute"),
    ("azureml.core.compute", "KubernetesCompute"),
    ("azureml.core", "ComputeTarget"),
    ("azureml.core", "Webservice"),
]


@pytest.mark.parametrize(("module", "name"), LAYOUT, ids=[f"{m}.{n}" for m, n in LAYOUT])
def test_azure_ml_import_path_works_with_the_modelport_prefix(module: str, name: str) -> None:
    found = getattr(importlib.import_module(f"modelport.{module}"), name)
    # The same object wherever it is imported from: isinstance checks agree across import paths.
    package = "compute" if ".compute" in module or name == "ComputeTarget" else "webservice"
    assert found is getattr(importlib.import_module(f"modelport.azureml.core.{package}"), name)


def test_every_service_and_target_type_keeps_its_azure_ml_name() -> None:
    from modelport.azureml.core.compute.aks import AksCompute
    from modelport.azureml.core.compute.kubernetes import KubernetesCompute
    from modelport.azureml.core.webservice.aci import AciWebservice
    from modelport.azureml.core.webservice.aks import AksEndpoint, AksWebservice
    from modelport.azureml.core.webservice.webservice import Webservice

    assert issubclass(AksWebservice, Webservice) and issubclass(AciWebservice, AksWebservice)
    assert issubclass(AksEndpoint, AksWebservice) and issubclass(KubernetesCompute, AksCompute)
    assert AksCompute.type == KubernetesCompute.type == "AKS"
