"""The facade's Azure-shaped arguments: workspaces named by Azure ids, ACI and AKS-endpoint configs on
the default target, compute configuration objects validated as Azure ML did, one warning per call."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import httpx
import pytest

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.azureml.core import ComputeTarget, Model, Workspace
from modelport.azureml.core.authentication import InteractiveLoginAuthentication
from modelport.azureml.core.compute import AksCompute, KubernetesCompute
from modelport.azureml.core.compute_target import ComputeTargetException
from modelport.azureml.core.model import InferenceConfig
from modelport.azureml.core.webservice import AciWebservice, AksEndpoint, AksWebservice, LocalWebservice
from modelport.azureml.exceptions import UserErrorException, WebserviceException, WorkspaceException
from modelport.compute import targets
from modelport.compute.kubernetes.target import KubernetesTarget

SCORE = "def init():\n    pass\n\n\ndef run(raw_data):\n    return {'echo': raw_data}\n"


def _ignored_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AzureArgumentIgnoredWarning)]


def test_workspace_by_azure_ids_and_from_an_azure_config_json(ws, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opened = Workspace(
            "sub-1", "rg-1", "aml-port", auth=InteractiveLoginAuthentication(), sku="enterprise"
        )
    assert _ignored_warnings(caught) == [
        "Workspace(): auth, sku ignored (Azure-only; no meaning for modelport)."
    ]
    assert (opened.name, opened.subscription_id, opened.resource_group) == ("aml-port", "sub-1", "rg-1")
    with pytest.raises(WorkspaceException, match="Workspace 'nowhere' not found on this machine"):
        Workspace("sub-1", "rg-1", "nowhere")

    portal = tmp_path / "portal"
    portal.mkdir()
    (portal / "config.json").write_text(
        json.dumps({"subscription_id": "sub-2", "resource_group": "rg-2", "workspace_name": "aml-port"})
    )
    from_portal = Workspace.from_config(path=str(portal))
    assert (from_portal.name, from_portal.subscription_id, from_portal.resource_group) == (
        "aml-port",
        "sub-2",
        "rg-2",
    )
    scoped = tmp_path / "scoped" / ".azureml"
    scoped.mkdir(parents=True)
    scope = (
        "/subscriptions/sub-3/resourceGroups/rg-3/providers/Microsoft.MachineLearningServices/workspaces/"
        "aml-port"
    )
    (scoped / "config.json").write_text(json.dumps({"Scope": scope}))
    from_scope = Workspace.from_config(path=str(scoped.parent))
    assert (from_scope.subscription_id, from_scope.resource_group) == ("sub-3", "rg-3")
    assert isinstance(from_scope.webservices, dict)
    assert from_scope.compute_targets == {}  # the local target is implicit


def test_workspace_create_exist_ok_warns_once_naming_the_azure_arguments(ws) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = Workspace.create(
            "aml-port", subscription_id="s", resource_group="rg", location="westeurope",
            storage_account="sa", key_vault="kv", exist_ok=True, show_output=False,
        )  # fmt: skip
    assert _ignored_warnings(caught) == [
        "Workspace.create(): storage_account, key_vault ignored (Azure-only; no meaning for modelport)."
    ]
    assert again.name == "aml-port" and again.subscription_id == "s"


def test_aci_configuration_deploys_one_unauthenticated_replica_locally(ws, project: Path) -> None:
    (project / "echo").mkdir(exist_ok=True)
    (project / "echo" / "score.py").write_text(SCORE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = AciWebservice.deploy_configuration(
            cpu_cores=1, memory_gb=1, location="westeurope", dns_name_label="iris"
        )
    [message] = _ignored_warnings(caught)
    assert "single replica" in message and "ignored: location, dns_name_label" in message
    service = Model.deploy(ws, "aci-echo", [], InferenceConfig("score.py", source_directory="echo"), config)
    assert isinstance(service, AciWebservice)
    service.wait_for_deployment()
    assert service.num_replicas == 1 and not service.auth_enabled
    answer = httpx.post(service.scoring_uri, content='{"a": 1}', headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json() == {"echo": '{"a": 1}'}
    service.delete()


def test_a_named_target_that_does_not_exist_is_refused_before_anything_runs(ws, project: Path) -> None:
    (project / "echo").mkdir(exist_ok=True)
    (project / "echo" / "score.py").write_text(SCORE)
    config = InferenceConfig("score.py", source_directory="echo")
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound: Compute Target with name myaks"):
        Model.deploy(
            ws, "nowhere", [], config, AksWebservice.deploy_configuration(compute_target_name="myaks")
        )
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        ComputeTarget(ws, "myaks")
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        AksWebservice(ws, "nowhere")


def test_local_port_taken_by_another_program_is_refused_at_deploy(ws, project: Path) -> None:
    (project / "echo").mkdir(exist_ok=True)
    (project / "echo" / "score.py").write_text(SCORE)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(
            UserErrorException, match=f"port {port} on 127.0.0.1 is in use by another program"
        ):
            Model.deploy(
                ws, "taken", [], InferenceConfig("score.py", source_directory="echo"),
                LocalWebservice.deploy_configuration(port=port),
            )  # fmt: skip


def test_aks_compute_configurations_validate_as_azure_ml() -> None:
    config = AksCompute.provisioning_configuration(
        agent_count=3, vm_size="Standard_D3_v2", cluster_purpose=AksCompute.ClusterPurpose.DEV_TEST
    )
    assert config.cluster_purpose == "DevTest"
    with pytest.raises(ComputeTargetException, match="agent count must be a positive integer"):
        AksCompute.provisioning_configuration(agent_count=0)
    with pytest.raises(ComputeTargetException, match="not all ssl information provided"):
        AksCompute.provisioning_configuration(ssl_cname="www.contoso.com")
    with pytest.raises(ComputeTargetException, match="not all virtual net information provided"):
        AksCompute.provisioning_configuration(vnet_name="vnet")
    with pytest.raises(ComputeTargetException, match="either the certificate"):
        config.enable_ssl(ssl_cname="a", ssl_cert_pem_file="c", ssl_key_pem_file="k", leaf_domain_label="x")

    attach = AksCompute.attach_configuration(resource_group="rg", cluster_name="kind-dev")
    assert attach.cluster_name == "kind-dev"
    resource_id = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/k"
    assert AksCompute.attach_configuration(resource_id=resource_id).cluster_name == "k"
    with pytest.raises(ComputeTargetException, match="Invalid resource_id"):
        AksCompute.attach_configuration(resource_id="/subscriptions/s/k")
    with pytest.raises(ComputeTargetException, match="resource_group and cluster_name"):
        AksCompute.attach_configuration(cluster_name="only-a-name")
    with pytest.raises(ComputeTargetException, match="load_balancer_subnet is only allowed"):
        AksCompute.attach_configuration("rg", "k", load_balancer_type="PublicIp", load_balancer_subnet="s")

    with pytest.raises(UserErrorException, match="unknown option.*kubeconfig, namespace"):
        AksCompute.attach_configuration("rg", "k", namespaces="svc")
    with pytest.raises(UserErrorException, match="context is given by cluster_name"):
        AksCompute.attach_configuration("rg", "k", context="other")
    with pytest.raises(UserErrorException, match="namespace='Svc_1'"):
        KubernetesCompute.attach_configuration(namespace="Svc_1")
    arc = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/edge"
    assert KubernetesCompute.attach_configuration(resource_id=arc).kubernetes_options == {"context": "edge"}


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: lab
  user: {token: not-a-secret}
contexts:
- name: lab
  context: {cluster: lab, user: lab}
current-context: lab
"""


def test_compute_targets_without_a_cluster(ws, tmp_path: Path, capsys) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    for reserved in ("local", "amlcompute", "containerinstance"):
        with pytest.raises(UserErrorException, match=f"different target name. {reserved} is a reserved"):
            ComputeTarget.create(ws, reserved, AksCompute.provisioning_configuration())
    with pytest.raises(UserErrorException, match="Invalid compute target name 'my_aks'"):
        ComputeTarget.attach(ws, "my_aks", AksCompute.attach_configuration("rg", "lab"))
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound: Compute Target with name prod"):
        AksCompute(ws, "prod")

    # A failed attach returns at once, leaves nothing, and raises in wait_for_completion (Azure ML's shape).
    config = AksCompute.attach_configuration("rg", "myaks", kubeconfig=str(kubeconfig))
    failed = ComputeTarget.attach(ws, "prod", config)
    assert failed.provisioning_state == "Failed" and ComputeTarget.list(ws) == []
    with pytest.raises(ComputeTargetException) as caught:
        failed.wait_for_completion(show_output=True)
    assert str(caught.value).startswith(
        "Compute object provisioning polling reached non-successful terminal state, current provisioning "
        "state: Failed\nProvisioning operation error:\nStatusCode: 400\nMessage: context='myaks' is not in "
        "kubeconfig"
    )
    assert 'Provisioning operation finished, operation "Failed"' in capsys.readouterr().out
    assert failed.provisioning_errors[0]["error"]["code"] == "BadRequest"

    # A recorded target reads back as AksCompute; refusals happen at once, before the cluster.
    definition = KubernetesTarget(kubeconfig=str(kubeconfig), context="lab", cluster_purpose="DevTest")
    targets.add_target(ws, "prod", "kubernetes", definition.model_dump(mode="json"))
    targets.set_state(ws, "prod", targets.SUCCEEDED)
    made = definition.model_copy(update={"created": True, "provisioning": {"agentCount": 3}})
    targets.add_target(ws, "made", "kubernetes", made.model_dump(mode="json"))
    targets.set_state(ws, "made", targets.SUCCEEDED)
    try:
        prod = ComputeTarget(ws, "prod")
        assert type(prod) is AksCompute and prod.type == "AKS" and prod.is_attached
        assert (prod.cluster_purpose, prod.cluster_fqdn, prod.get_status()) == (
            "DevTest",
            "https://127.0.0.1:1",
            "Succeeded",
        )
        payload = prod.serialize()
        assert payload["id"].endswith("/workspaces/aml-port/computes/prod")
        assert payload["properties"]["computeType"] == "AKS" and payload["properties"]["isAttachedCompute"]
        assert payload["properties"]["properties"]["kubernetes"]["context"] == "lab"
        assert sorted(ws.compute_targets) == ["made", "prod"]
        assert [type(c) for c in ComputeTarget.list(ws)] == [AksCompute, AksCompute]
        with pytest.raises(ComputeTargetException, match="Long running operation information not known, "
                           "unable to poll. Current state is Succeeded"):  # fmt: skip
            prod.wait_for_completion()
        with pytest.raises(ComputeTargetException, match="'prod' already exists"):
            ComputeTarget.attach(ws, "prod", config)
        with pytest.raises(ComputeTargetException, match=r"refused for attached clusters.*prod.detach\(\)"):
            prod.delete()
        # The cluster is unreachable: detach says so at once and the target stays.
        with pytest.raises(ComputeTargetException, match="Cannot reach the cluster"):
            prod.detach()
        assert prod.get_status() == "Succeeded"

        created = AksCompute(ws, "made")
        assert not created.is_attached and created.agent_count == 3
        with (
            pytest.warns(UserWarning, match="the cluster itself is not deleted"),
            pytest.raises(ComputeTargetException, match="Cannot reach the cluster"),
        ):
            created.delete()
    finally:
        targets.remove_target(ws, "prod")
        targets.remove_target(ws, "made")


def test_aks_deploy_configuration_rules_and_endpoint_config() -> None:
    with pytest.raises(WebserviceException) as failed:
        AksWebservice.deploy_configuration(cpu_cores=0, autoscale_enabled=True, num_replicas=2)
    assert "Invalid configuration, cpu_cores must be greater than zero." in failed.value.message
    assert "Invalid configuration, autoscale enabled and num_replicas provided." in failed.value.message
    with pytest.raises(
        WebserviceException, match="traffic_percentile cannot be negative or greater than 100"
    ):
        AksEndpoint.deploy_configuration(version_name="blue", traffic_percentile=120)
    with pytest.raises(WebserviceException, match="provided service name is invalid"):
        AksEndpoint.deploy_configuration(version_name="v1")  # 3-32 characters, as service names
    with pytest.warns(AzureArgumentIgnoredWarning, match="traffic split"):
        endpoint = AksEndpoint.deploy_configuration(
            version_name="blue", traffic_percentile=20, num_replicas=1
        )
    assert endpoint.num_replicas == 1


def test_aks_ssl_certificates_are_checked_at_configure_time(tmp_path: Path) -> None:
    """The in-cluster front end does not serve TLS yet, but a bad pair is refused now with the reason."""
    from tests.frontend.certs import rotation_set

    certs = rotation_set(tmp_path)
    good = {"ssl_cert_pem_file": str(certs["first"].cert), "ssl_key_pem_file": str(certs["first"].key)}
    config = AksCompute.provisioning_configuration(ssl_cname="localhost", **good)
    assert config.ssl_cname == "localhost"
    with pytest.raises(ComputeTargetException, match="does not belong to the certificate"):
        AksCompute.provisioning_configuration(
            ssl_cname="localhost",
            ssl_cert_pem_file=good["ssl_cert_pem_file"],
            ssl_key_pem_file=str(certs["second"].key),
        )
    with pytest.raises(ComputeTargetException, match="--ssl-cname svc.contoso.com: the certificate"):
        AksCompute.attach_configuration("rg", "k").enable_ssl(ssl_cname="svc.contoso.com", **good)
    with pytest.raises(
        ComputeTargetException, match="leaf_domain_label='svc'.*Fix: pass your own certificate"
    ):
        AksCompute.attach_configuration("rg", "k").enable_ssl(leaf_domain_label="svc")
