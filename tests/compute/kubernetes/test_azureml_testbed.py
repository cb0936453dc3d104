"""Tier 1: the Azure ML v1 facade's compute targets on the Kubernetes testbed.

``AksCompute``/``ComputeTarget`` attach, create, list, status and detach against the real control
plane; the FastProd failure surfacing in ``wait_for_completion``; a typical Azure ML v1 "deploy to
AKS" notebook and a multi-model deployment, written with ``modelport.azureml.*`` imports only, up to
Healthy (the simulated node runs no containers); and the ``az ml``-shaped CLI with ``-ct``.
"""

from __future__ import annotations

import json
import textwrap
import uuid
import warnings
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.azureml.core import ComputeTarget, Environment, Model, Webservice, Workspace
from modelport.azureml.core.compute import AksCompute, KubernetesCompute
from modelport.azureml.core.model import InferenceConfig
from modelport.azureml.core.webservice import AksWebservice
from modelport.azureml.exceptions import ComputeTargetException, WebserviceException
from tests.azureml.test_notebook_aks import MULTI_SCORE, SCHEMA_SCORE
from tests.clirun import modelport
from tests.compute.kubernetes.node import SimulatedNode
from tests.compute.kubernetes.testbed import ControlPlane
from tests.servers import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.s3]

CONDA = textwrap.dedent(
    """
    name: iris-env
    dependencies:
      - python=3.11
      - pip:
        - azureml-defaults
        - scikit-learn
        - joblib
        - inference-schema[numpy-support]
    """
)
DEPLOY_TIMEOUT_S = 180
FRONT_END = "modelport-frontend"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _apart() -> dict[str, str]:
    """modelport's options that keep each test's target apart (a system namespace serves one target)."""
    return {
        "namespace": _unique("svc"),
        "system_namespace": _unique("sys"),
        "frontend_service_type": "ClusterIP",
    }


@pytest.fixture
def ws(workspace_factory, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Workspace:  # type: ignore[no-untyped-def]
    """The notebook's workspace (artifacts in S3, which pods read), with KUBECONFIG at the testbed."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    native = workspace_factory("sqlite-s3", name=_unique("aml"))
    return Workspace.get(native.name)


def _gone(kube: Client, namespace: str) -> bool:
    return namespace not in {n.metadata.name for n in kube.list(Namespace)}


def test_attach_wait_list_status_and_detach(
    ws: Workspace, node: SimulatedNode, kube: Client, control_plane: ControlPlane, capsys
) -> None:
    apart = _apart()
    config = AksCompute.attach_configuration(
        resource_group="rg",
        cluster_name="testbed",
        cluster_purpose=AksCompute.ClusterPurpose.DEV_TEST,
        **apart,
    )

    aks = ComputeTarget.attach(ws, "prod", config)
    aks.wait_for_completion(show_output=True)

    assert 'Provisioning operation finished, operation "Succeeded"' in capsys.readouterr().out
    assert type(aks) is AksCompute and aks.provisioning_state == "Succeeded" and aks.is_attached
    assert kube.get(Deployment, FRONT_END, namespace=apart["system_namespace"]).status.readyReplicas == 1
    assert [c.name for c in ComputeTarget.list(ws)] == ["prod"] and list(ws.compute_targets) == ["prod"]
    again = ComputeTarget(workspace=ws, name="prod")
    assert again.get_status() == "Succeeded" and again.cluster_purpose == "DevTest"
    properties = again.serialize()["properties"]
    assert properties["computeType"] == "AKS" and properties["provisioningState"] == "Succeeded"
    assert properties["properties"]["clusterFqdn"] == control_plane.server
    assert properties["properties"]["kubernetes"]["context"] == "testbed"

    again.detach()
    again.wait_for_completion(show_output=True, is_delete_operation=True)

    assert 'operation "Succeeded"' in capsys.readouterr().out and again.provisioning_state == "Deleting"
    assert ComputeTarget.list(ws) == [] and ws.compute_targets == {}
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        again.get_status()
    wait_until(lambda: _gone(kube, apart["system_namespace"]), "the front end's namespace is deleted")


def test_fast_prod_on_one_node_fails_in_wait_for_completion(
    ws: Workspace, node: SimulatedNode, kube: Client, control_plane: ControlPlane
) -> None:
    apart = _apart()
    config = AksCompute.attach_configuration(resource_group="rg", cluster_name="testbed", **apart)

    aks = ComputeTarget.attach(ws, "prod", config)  # FastProd: Azure ML's default purpose

    assert aks.provisioning_state == "Failed" and aks.cluster_fqdn == control_plane.server
    with pytest.raises(ComputeTargetException) as caught:
        aks.wait_for_completion(show_output=True)
    message = str(caught.value)
    assert message.startswith(
        "Compute object provisioning polling reached non-successful terminal state, current provisioning "
        "state: Failed\nProvisioning operation error:\nStatusCode: 400\nMessage: At least 3 machine(s) are "
        "required for cluster with purpose 'FastProd'. Available machine(s) : 1"
    )
    assert ComputeTarget.list(ws) == []
    assert _gone(kube, apart["system_namespace"]) and _gone(kube, apart["namespace"])
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        ComputeTarget(ws, "prod")


def test_create_records_the_size_and_delete_detaches(ws: Workspace, node: SimulatedNode, capsys) -> None:
    config = AksCompute.provisioning_configuration(
        agent_count=3, vm_size="Standard_D3_v2", cluster_purpose="DevTest", location="westeurope",
        context="testbed", **_apart(),
    )  # fmt: skip

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = ComputeTarget.create(ws, "made", config)
    made.wait_for_completion(show_output=True)

    ignored = [str(w.message) for w in caught if issubclass(w.category, AzureArgumentIgnoredWarning)]
    assert ignored == ["ComputeTarget.create(): location ignored (Azure-only; no meaning for modelport)."]
    output = capsys.readouterr().out
    assert "Recorded agentCount=3, vmSize=Standard_D3_v2" in output and 'operation "Succeeded"' in output
    assert (made.agent_count, made.agent_vm_size, made.is_attached) == (3, "Standard_D3_v2", False)
    with pytest.raises(ComputeTargetException, match="'made' already exists"):
        ComputeTarget.create(ws, "made", config)

    with pytest.warns(UserWarning, match="the cluster itself is not deleted"):
        made.delete()
    made.wait_for_completion(is_delete_operation=True)

    assert ComputeTarget.list(ws) == []


def test_aks_deployment_notebook_up_to_healthy(
    ws: Workspace, node: SimulatedNode, kube: Client, tmp_path: Path, capsys
) -> None:
    # Cell: train and register the model.
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    features, labels = load_iris(return_X_y=True)
    (tmp_path / "outputs").mkdir()
    joblib.dump(SVC(gamma="scale").fit(features, labels), tmp_path / "outputs" / "sklearn_iris.pkl")
    model = Model.register(
        workspace=ws,
        model_path=str(tmp_path / "outputs" / "sklearn_iris.pkl"),
        model_name="iris-sk",
        tags={"area": "iris"},
        model_framework=Model.Framework.SCIKITLEARN,
    )

    # Cell: the AKS cluster: use it if attached, else attach it.
    apart = _apart()
    try:
        aks_target = ComputeTarget(workspace=ws, name="myaks")
    except ComputeTargetException:
        attach_config = AksCompute.attach_configuration(
            resource_group="rg", cluster_name="testbed", cluster_purpose="DevTest", **apart
        )
        aks_target = ComputeTarget.attach(ws, "myaks", attach_config)
        aks_target.wait_for_completion(show_output=True)

    # Cell: environment, entry script, deployment configuration.
    (tmp_path / "iris-env.yml").write_text(CONDA)
    env = Environment.from_conda_specification(name="iris-env", file_path=str(tmp_path / "iris-env.yml"))
    source = tmp_path / "iris_service"
    source.mkdir()
    (source / "score.py").write_text(SCHEMA_SCORE)
    (source / "labels.json").write_text('["setosa", "versicolor", "virginica"]')
    inference_config = InferenceConfig(entry_script="score.py", source_directory=str(source), environment=env)
    deployment_config = AksWebservice.deploy_configuration(
        cpu_cores=0.5, memory_gb=0.5, autoscale_enabled=True, autoscale_max_replicas=2, auth_enabled=True
    )

    # Cell: deploy and wait.
    service = Model.deploy(
        ws, "iris-aks", [model], inference_config, deployment_config, deployment_target=aks_target
    )
    service.wait_for_deployment(show_output=True, timeout_sec=DEPLOY_TIMEOUT_S)

    assert 'operation "Succeeded"' in capsys.readouterr().out
    assert isinstance(service, AksWebservice) and service.state == "Healthy"
    assert service.compute_name == "myaks" and service.compute_type == "AKS"
    assert service.namespace == apart["namespace"] and service.serialize()["computeType"] == "AKS"
    replicas = kube.get(Deployment, "iris-aks", namespace=apart["namespace"])
    assert replicas.spec.template.spec.containers[0].resources.requests["cpu"] == "500m"
    primary, secondary = service.get_keys()
    assert primary and secondary and primary != secondary

    # Cell: update, wait again.
    service.update(cpu_cores=0.25, tags={"stage": "prod"})
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.state == "Healthy" and service.tags == {"stage": "prod"}
    assert Webservice(ws, "iris-aks").container_resource_requirements.cpu == 0.25

    # Cell: clean up.
    service.delete()
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        Webservice(ws, "iris-aks")
    assert list(kube.list(Deployment, namespace=apart["namespace"])) == []
    aks_target.detach()
    assert ComputeTarget.list(ws) == []


def test_multi_model_deployment_up_to_healthy(ws: Workspace, node: SimulatedNode, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"weights")
    first = Model.register(ws, model_path=str(tmp_path / "model.pkl"), model_name="iris-sk")
    second = Model.register(ws, model_path=str(tmp_path / "model.pkl"), model_name="iris-copy")
    target = ComputeTarget.attach(
        ws,
        "multi",
        KubernetesCompute.attach_configuration(context="testbed", cluster_purpose="DevTest", **_apart()),
    )
    target.wait_for_completion()
    source = tmp_path / "multi"
    source.mkdir()
    (source / "score.py").write_text(MULTI_SCORE)
    inference_config = InferenceConfig(
        entry_script="score.py", source_directory=str(source), environment=Environment("multi-env")
    )

    service = Model.deploy(
        ws, "iris-multi", [first, second], inference_config,
        AksWebservice.deploy_configuration(num_replicas=1, compute_target_name="multi"),
    )  # fmt: skip
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.state == "Healthy" and sorted(m.name for m in service.models) == ["iris-copy", "iris-sk"]
    assert type(ComputeTarget(ws, "multi")) is AksCompute
    with pytest.raises(ComputeTargetException, match="still runs service"):
        target.detach()
    service.delete()
    target.detach()
    assert ComputeTarget.list(ws) == []


def test_az_ml_cli_attach_deploy_with_ct_and_detach(
    ws: Workspace, node: SimulatedNode, tmp_path: Path
) -> None:
    apart = _apart()
    resource_id = (
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/testbed"
    )
    where = ["-w", ws.name]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    (tmp_path / "model.txt").write_text("weights")
    (tmp_path / "inferenceconfig.json").write_text(
        json.dumps({"entryScript": "score.py", "sourceDirectory": "src"})
    )
    (tmp_path / "deploymentconfig.json").write_text(
        json.dumps({"computeType": "aks", "autoScalerEnabled": False, "numReplicas": 1})
    )

    attached = json.loads(modelport(
        "ml", "computetarget", "attach", "aks", "-n", "myaks", "-i", resource_id, "-g", "rg",
        "--cluster-purpose", "DevTest", "--namespace", apart["namespace"],
        "--system-namespace", apart["system_namespace"], "--frontend-service-type", "ClusterIP", *where,
    ).stdout)  # fmt: skip
    assert attached["name"] == "myaks" and attached["properties"]["provisioningState"] == "Succeeded"
    shown = json.loads(modelport("ml", "computetarget", "show", "-n", "myaks", *where).stdout)
    assert shown["properties"]["properties"]["kubernetes"]["namespace"] == apart["namespace"]
    modelport("ml", "model", "register", "-n", "tiny", "-p", str(tmp_path / "model.txt"), *where)

    deployed = json.loads(modelport(
        "ml", "model", "deploy", "-n", "tiny-svc", "-m", "tiny:1", "--ic", "inferenceconfig.json",
        "--dc", "deploymentconfig.json", "-ct", "myaks", *where, cwd=tmp_path,
    ).stdout)  # fmt: skip

    assert deployed["state"] == "Healthy" and deployed["computeName"] == "myaks"
    refused = modelport("ml", "computetarget", "detach", "-n", "myaks", *where, rc=1)
    assert "still runs service(s) tiny-svc" in refused.stderr
    modelport("ml", "service", "delete", "-n", "tiny-svc", *where)
    attached_delete = modelport("ml", "computetarget", "delete", "-n", "myaks", *where, rc=1)
    assert "refused for attached clusters" in attached_delete.stderr
    detached = modelport("ml", "computetarget", "detach", "-n", "myaks", "-g", "rg", *where)
    assert 'operation "Succeeded"' in detached.stderr
    assert json.loads(modelport("ml", "computetarget", "list", *where).stdout) == []
