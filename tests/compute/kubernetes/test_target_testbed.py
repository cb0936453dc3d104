"""Tier 1: the Kubernetes compute target through the SDK, against the real control plane.

Attach, the FastProd check against the nodes the cluster really has, deploy → Healthy, update →
a new ReplicaSet with the old one scaled down, states from the real scheduler and controllers,
delete → nothing left, detach → nothing left, two targets kept apart. Pods are placed by the
real scheduler on the simulated node, which reports them running (no container runs here, so
these tests stop at Healthy; tests/compute/kubernetes/test_serving_testbed.py runs real replicas).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret, Service

from modelport import Model
from modelport.compute import targets
from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import disruption_budget_resource
from modelport.compute.kubernetes.cluster import attach, detach
from modelport.compute.kubernetes.diagnose import IMAGE_PULL_BACK_OFF
from modelport.compute.kubernetes.objects import FIELD_MANAGER, LABEL_MANAGED_BY
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.errors import ComputeTargetException, UserErrorException, WebserviceException
from modelport.service import states
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.compute.kubernetes.node import FAULT_ANNOTATION, SimulatedNode
from tests.compute.kubernetes.rbac import can
from tests.compute.kubernetes.specs import TESTBED_PDB_API
from tests.compute.kubernetes.testbed import ControlPlane
from tests.servers import free_port, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.s3]

SCORE = "def init():\n    pass\n\n\ndef run(raw):\n    return raw\n"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ws(workspace_factory) -> Workspace:  # type: ignore[no-untyped-def]
    """A workspace whose artifact store pods can read (S3 protocol, moto)."""
    return workspace_factory("sqlite-s3")


def _target(plane: ControlPlane, **options: object) -> KubernetesTarget:
    defaults: dict[str, object] = {
        "kubeconfig": str(plane.kubeconfig),
        "namespace": _unique("svc"),
        "system_namespace": _unique("sys"),
        "cluster_purpose": "DevTest",
        "frontend_service_type": "ClusterIP",
    }
    return KubernetesTarget(**{**defaults, **options})


@pytest.fixture
def prod(ws: Workspace, control_plane: ControlPlane, node: SimulatedNode) -> KubernetesTarget:
    """Target ``prod`` attached (DevTest) in fresh namespaces; detached afterwards."""
    target = _target(control_plane)
    attach(ws, "prod", target)
    yield target
    if targets.get_target(ws, "prod") is not None:
        for service in Webservice.list(ws):
            service.delete()
        detach(ws, "prod")


def _source(tmp_path: Path) -> InferenceConfig:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / "score.py").write_text(SCORE)
    return InferenceConfig(entry_script="score.py", source_directory=str(folder))


def _model(ws: Workspace, tmp_path: Path) -> Model:
    path = tmp_path / "model.txt"
    path.write_text("weights")
    return Model.register(ws, str(path), "tiny")


def test_attach_installs_the_front_end_and_detach_removes_it(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode, kube: Client
) -> None:
    kept = _unique("users")
    kube.create(Namespace(metadata=ObjectMeta(name=kept)))  # exists before: attach must not own it
    target = _target(control_plane, namespace=kept)

    said: list[str] = []
    record = attach(ws, "prod", target, progress=said.append)

    assert record.state == targets.SUCCEEDED
    assert record.definition["created_namespaces"] == [target.system_namespace]
    # The testbed's 1.20 serves no policy/v1: the budget is skipped, saying so, and attach goes on.
    assert [line for line in said if "No PodDisruptionBudget" in line and "1.21" in line], said
    front = kube.get(Deployment, fm.FRONTEND_NAME, namespace=target.system_namespace)
    assert front.status.readyReplicas == 1
    assert front.metadata.annotations[fm.ANNOTATION_OWNER] == f"{ws.name}/prod"
    managers = {entry.manager for entry in front.metadata.managedFields}
    assert FIELD_MANAGER in managers
    assert kube.get(Secret, fm.TOKEN_SECRET_NAME, namespace=target.system_namespace)

    detach(ws, "prod")

    assert targets.get_target(ws, "prod") is None
    assert kube.get(Namespace, kept).metadata.name == kept  # the user's namespace stays
    assert not list(kube.list(Secret, namespace=kept, labels={LABEL_MANAGED_BY: FIELD_MANAGER}))

    def system_namespace_gone() -> bool:
        return target.system_namespace not in {n.metadata.name for n in kube.list(Namespace)}

    wait_until(system_namespace_gone, "the system namespace attach created is deleted")


def test_fast_prod_is_refused_on_a_one_node_cluster_and_leaves_nothing(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode, kube: Client
) -> None:
    target = _target(control_plane, cluster_purpose="FastProd")

    with pytest.raises(ComputeTargetException) as caught:
        attach(ws, "prod", target)

    message = str(caught.value)
    assert "At least 3 machine(s) are required for cluster with purpose 'FastProd'" in message
    assert "Available machine(s) : 1" in message
    assert "DevTest" in message  # the fix
    assert targets.get_target(ws, "prod") is None
    names = {n.metadata.name for n in kube.list(Namespace)}
    assert target.system_namespace not in names and target.namespace not in names


def test_a_second_target_cannot_take_over_a_system_namespace(
    ws: Workspace, control_plane: ControlPlane, prod: KubernetesTarget
) -> None:
    other = _target(control_plane, system_namespace=prod.system_namespace)

    with pytest.raises(ComputeTargetException, match="already runs a modelport front end"):
        attach(ws, "other", other)

    assert targets.get_target(ws, "other") is None
    assert targets.get_target(ws, "prod").state == targets.SUCCEEDED


def test_deploy_update_and_delete_on_the_cluster(
    ws: Workspace, prod: KubernetesTarget, kube: Client, tmp_path: Path
) -> None:
    model = _model(ws, tmp_path)
    config = KubernetesDeploymentConfig(
        cpu_cores=0.5, memory_gb=0.25, autoscale_enabled=False, num_replicas=2, compute_target_name="prod"
    )

    service = Model.deploy(ws, "tiny-svc", [model], _source(tmp_path), config)
    service.wait_for_deployment(timeout_sec=120)

    assert service.state == states.HEALTHY
    assert service.compute_type == "Kubernetes" and service.compute_name == "prod"
    deployment = kube.get(Deployment, "tiny-svc", namespace=prod.namespace)
    scorer = deployment.spec.template.spec.containers[0]
    assert scorer.resources.requests == {"cpu": "500m", "memory": "256Mi"}
    assert deployment.spec.replicas == 2
    assert service.observed["readyReplicas"] == 2
    keys = kube.get(Secret, "tiny-svc-keys", namespace=prod.namespace)
    assert keys.metadata.ownerReferences[0].name == "tiny-svc"
    budget = kube.get(disruption_budget_resource(TESTBED_PDB_API), "tiny-svc", namespace=prod.namespace)
    assert budget.apiVersion == TESTBED_PDB_API  # chosen from what the 1.20 server offers
    old_sets = {rs.metadata.name for rs in kube.list(ReplicaSet, namespace=prod.namespace)}

    service.update(cpu_cores=0.25)
    service.wait_for_deployment(timeout_sec=120)

    assert service.state == states.HEALTHY
    sets = {rs.metadata.name: rs for rs in kube.list(ReplicaSet, namespace=prod.namespace)}
    new = [name for name in sets if name not in old_sets]
    assert len(new) == 1 and sets[new[0]].spec.replicas == 2
    assert all(sets[name].spec.replicas == 0 for name in old_sets)
    pods = list(kube.list(Pod, namespace=prod.namespace, labels={m.LABEL_SERVICE: "tiny-svc"}))
    assert {p.spec.containers[0].resources.requests["cpu"] for p in pods} == {"250m"}

    service.delete()

    with pytest.raises(WebserviceException):
        Webservice(ws, "tiny-svc")
    selector = {m.LABEL_SERVICE: "tiny-svc"}
    budgets = disruption_budget_resource(TESTBED_PDB_API)
    for kind in (Deployment, ReplicaSet, Pod, Service, Secret, ConfigMap, budgets):
        assert list(kube.list(kind, namespace=prod.namespace, labels=selector)) == [], kind


def test_a_replica_that_fits_no_node_is_unschedulable_with_the_missing_resource(
    ws: Workspace, prod: KubernetesTarget, tmp_path: Path
) -> None:
    config = KubernetesDeploymentConfig(cpu_cores=64, autoscale_enabled=False, num_replicas=1)

    service = Model.deploy(
        ws, "huge-svc", [_model(ws, tmp_path)], _source(tmp_path), config, deployment_target="prod"
    )

    def unschedulable() -> bool:
        service.update_deployment_state()
        return service.state == states.UNSCHEDULABLE

    wait_until(unschedulable, "the service is reported Unschedulable")
    assert "insufficient cpu" in service.error["message"]


def test_a_namespace_other_than_the_targets_is_refused_before_anything_is_stored(
    ws: Workspace, prod: KubernetesTarget, tmp_path: Path
) -> None:
    config = KubernetesDeploymentConfig(namespace="elsewhere", compute_target_name="prod")

    with pytest.raises(UserErrorException, match="namespace='elsewhere'"):
        Model.deploy(ws, "ns-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

    assert Webservice.list(ws) == []


def test_a_workspace_with_a_local_artifact_folder_is_refused_with_the_fix(
    workspace_factory, control_plane: ControlPlane, node: SimulatedNode, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    local = workspace_factory("sqlite-local")
    attach(local, "prod", _target(control_plane))
    try:
        config = KubernetesDeploymentConfig(compute_target_name="prod")
        with pytest.raises(UserErrorException, match="pods on a cluster cannot read"):
            Model.deploy(local, "local-svc", [_model(local, tmp_path)], _source(tmp_path), config)
        assert Webservice.list(local) == []
    finally:
        detach(local, "prod")


def test_the_cli_attaches_lists_shows_and_detaches(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode
) -> None:
    target = _target(control_plane)
    where = ["-w", ws.name]
    common = [
        "--kubeconfig", str(control_plane.kubeconfig), "--context", "testbed",
        "--namespace", target.namespace, "--system-namespace", target.system_namespace,
        "--frontend-service-type", "ClusterIP",
    ]  # fmt: skip

    refused = modelport("computetarget", "attach", "kubernetes", "-n", "prod", *common, *where, rc=1)
    assert "At least 3 machine(s) are required" in refused.stderr
    bad = modelport(
        "computetarget", "attach", "kubernetes", "-n", "prod", *common, "--context", "nope", *where, rc=1
    )
    assert "context='nope' is not in kubeconfig" in bad.stderr and "testbed" in bad.stderr

    attached = modelport(
        "computetarget", "attach", "kubernetes", "-n", "prod", *common, "--cluster-purpose", "DevTest",
        *where, "-o", "json",
    )  # fmt: skip
    shown = json.loads(attached.stdout)
    assert shown["provisioningState"] == "Succeeded" and shown["frontendReadyReplicas"] == 1
    assert shown["scoringBaseUrl"].startswith("http://10.0.0.")  # the ClusterIP
    listed = json.loads(modelport("computetarget", "list", *where, "-o", "json").stdout)
    assert [(t["name"], t["namespace"]) for t in listed] == [("prod", target.namespace)]

    modelport("computetarget", "detach", "-n", "prod", *where)

    assert json.loads(modelport("computetarget", "list", *where, "-o", "json").stdout) == []
    missing = modelport("computetarget", "show", "-n", "prod", *where, rc=1)
    assert "ComputeTargetNotFound" in missing.stderr

    made = modelport(
        "computetarget", "create", "kubernetes", "-n", "made", *common, "--cluster-purpose", "DevTest",
        "--agent-count", "3", *where, "-o", "json",
    )  # fmt: skip
    shown = json.loads(made.stdout)
    assert shown["isAttachedCompute"] is False and shown["provisioning"] == {"agentCount": 3}
    assert "Not provisioned (recorded only): agentCount=3" in made.stderr
    modelport("computetarget", "detach", "-n", "made", *where)


@pytest.fixture
def faulty(ws: Workspace, control_plane: ControlPlane, node: SimulatedNode):  # type: ignore[no-untyped-def]
    """Attach a target whose pods carry a fault annotation (the simulated node reports that failure)."""
    names: list[str] = []

    def make(fault: str, **options: object) -> str:
        name = f"faulty{len(names)}"
        attach(ws, name, _target(control_plane, pod_annotations={FAULT_ANNOTATION: fault}, **options))
        names.append(name)
        return name

    yield make
    for service in Webservice.list(ws):
        service.delete()
    for name in names:
        detach(ws, name)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("crash-loop", states.CRASH_LOOP_BACK_OFF),
        ("oom-killed", states.OOM_KILLED),
        ("image-pull", IMAGE_PULL_BACK_OFF),
    ],
)
def test_each_failure_of_the_pods_fails_the_deployment_with_its_code(
    ws: Workspace, faulty, tmp_path: Path, fault: str, code: str
) -> None:  # type: ignore[no-untyped-def]
    target = faulty(fault)
    config = KubernetesDeploymentConfig(autoscale_enabled=False, num_replicas=1, compute_target_name=target)
    service = Model.deploy(ws, "broken-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

    with pytest.raises(WebserviceException) as caught:
        service.wait_for_deployment(timeout_sec=120)

    assert service.state == states.FAILED
    assert service.error["code"] == code
    assert f'"code": "{code}"' in str(caught.value)
    assert "current service state: Failed" in str(caught.value)


def test_a_rollout_without_progress_ends_as_deployment_timed_out(
    ws: Workspace, faulty, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    target = faulty("image-pull", progress_deadline_s=10)
    config = KubernetesDeploymentConfig(autoscale_enabled=False, num_replicas=1, compute_target_name=target)
    service = Model.deploy(ws, "stuck-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

    def timed_out() -> bool:
        service.update_deployment_state()
        return (service.error or {}).get("code") == states.DEPLOYMENT_TIMED_OUT

    wait_until(timed_out, "the controller reports ProgressDeadlineExceeded", deadline_s=90)
    assert service.state == states.FAILED
    assert service.error["details"][0]["code"] == "ProgressDeadlineExceeded"


def test_doctor_stops_at_an_unreachable_front_end_and_leaves_nothing(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode
) -> None:
    closed = free_port()  # nothing listens there: the front end's address is unreachable
    attach(ws, "prod", _target(control_plane, scoring_url=f"http://127.0.0.1:{closed}"))
    try:
        result = modelport("doctor", "kubernetes", "-ct", "prod", "-w", ws.name, "-o", "json", rc=1)
    finally:
        detach(ws, "prod")

    steps = json.loads(result.stdout)
    assert [(s["step"], s["ok"]) for s in steps] == [
        ("cluster reachable, nodes ready", True),
        ("front end ready and reachable", False),
        ("probe service and model removed", True),
    ]
    assert f"cannot reach the front end at http://127.0.0.1:{closed}" in steps[1]["detail"]
    assert "--scoring-url" in steps[1]["detail"]
    assert Model.list(ws) == [] and Webservice.list(ws) == []


def test_two_targets_in_two_namespaces_stay_apart(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode, kube: Client, tmp_path: Path
) -> None:
    first, second = _target(control_plane), _target(control_plane)
    attach(ws, "first", first)
    attach(ws, "second", second)
    try:
        model, source = _model(ws, tmp_path), _source(tmp_path)
        for name, target in (("one-svc", "first"), ("two-svc", "second")):
            config = KubernetesDeploymentConfig(
                autoscale_enabled=False, num_replicas=1, compute_target_name=target
            )
            Model.deploy(ws, name, [model], source, config).wait_for_deployment(timeout_sec=120)

        labelled = {LABEL_MANAGED_BY: FIELD_MANAGER}
        assert {
            d.metadata.name for d in kube.list(Deployment, namespace=first.namespace, labels=labelled)
        } == {"one-svc"}
        assert {
            d.metadata.name for d in kube.list(Deployment, namespace=second.namespace, labels=labelled)
        } == {"two-svc"}
        account = f"{first.system_namespace}:{fm.FRONTEND_NAME}"
        assert can(kube, account, "get", "secrets", first.namespace)
        assert not can(kube, account, "get", "secrets", second.namespace)
        assert not can(
            kube, account, "patch", "deployments", second.namespace, group="apps", subresource="scale"
        )

        Webservice(ws, "one-svc").delete()
        survivor = Webservice(ws, "two-svc")
        assert survivor.state == states.HEALTHY and survivor.compute_name == "second"
    finally:
        for service in Webservice.list(ws):
            service.delete()
        detach(ws, "first")
        detach(ws, "second")


def test_a_namespace_quota_that_refuses_the_pods_fails_the_deployment_with_the_reason(
    ws: Workspace, prod: KubernetesTarget, kube: Client, tmp_path: Path
) -> None:
    from lightkube.models.core_v1 import ResourceQuotaSpec
    from lightkube.resources.core_v1 import ResourceQuota

    quota = ResourceQuota(metadata=ObjectMeta(name="no-pods"), spec=ResourceQuotaSpec(hard={"pods": "0"}))
    kube.create(quota, namespace=prod.namespace)

    def enforced() -> bool:  # admission enforces a quota once its controller has computed it
        return bool(kube.get(ResourceQuota, "no-pods", namespace=prod.namespace).status.hard)

    wait_until(enforced, "the quota controller computes the quota")
    config = KubernetesDeploymentConfig(autoscale_enabled=False, num_replicas=1, compute_target_name="prod")
    service = Model.deploy(ws, "quota-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

    with pytest.raises(WebserviceException, match="ReplicaCreationFailed"):
        service.wait_for_deployment(timeout_sec=120)

    assert "exceeded quota" in service.error["details"][0]["message"]
    assert "raise the namespace's ResourceQuota" in service.error["message"]
    assert any("FailedCreate" in w for w in service.observed["warnings"])  # the ReplicaSet's Event


def test_an_apply_the_cluster_refused_is_applied_again_by_the_next_observation(
    ws: Workspace, prod: KubernetesTarget, kube: Client, tmp_path: Path
) -> None:
    # The API server itself refuses the first apply: a quota of zero Deployments in the services
    # namespace (admission answers 403 "exceeded quota"), lifted once the refusal is recorded.
    from lightkube.models.core_v1 import ResourceQuotaSpec
    from lightkube.resources.core_v1 import ResourceQuota

    from modelport.compute.kubernetes.driver import APPLY_RETRYING

    hard = {"count/deployments.apps": "0"}
    quota = ResourceQuota(metadata=ObjectMeta(name="no-deployments"), spec=ResourceQuotaSpec(hard=hard))
    kube.create(quota, namespace=prod.namespace)

    def enforced() -> bool:  # admission enforces a quota once its controller has computed it
        return bool(kube.get(ResourceQuota, "no-deployments", namespace=prod.namespace).status.hard)

    wait_until(enforced, "the quota controller computes the quota")
    config = KubernetesDeploymentConfig(autoscale_enabled=False, num_replicas=1, compute_target_name="prod")

    service = Model.deploy(ws, "retry-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

    refused = Webservice(ws, "retry-svc")  # a read: shows what deploy recorded, asks the cluster nothing
    assert refused.state == states.TRANSITIONING
    assert refused.error is not None and refused.error["code"] == APPLY_RETRYING
    assert "exceeded quota" in refused.error["message"]
    assert list(kube.list(Deployment, namespace=prod.namespace, labels={m.LABEL_SERVICE: "retry-svc"})) == []

    kube.delete(ResourceQuota, "no-deployments", namespace=prod.namespace)
    service.wait_for_deployment(timeout_sec=120)  # each observation retries the apply (with back-off)

    assert service.state == states.HEALTHY and service.error is None
    assert kube.get(Deployment, "retry-svc", namespace=prod.namespace).spec.replicas == 1
    assert service.observed["replicas"][0]["generation"] == 1  # typed replicas: the pods, per generation


def test_an_apply_the_cluster_rejects_as_invalid_fails_the_deployment_for_good(
    ws: Workspace, control_plane: ControlPlane, node: SimulatedNode, tmp_path: Path
) -> None:
    # An annotation key the API server rejects (422 Invalid) on every pod template: no retry helps.
    attach(ws, "badpods", _target(control_plane, pod_annotations={"not a valid key!": "x"}))
    try:
        config = KubernetesDeploymentConfig(
            autoscale_enabled=False, num_replicas=1, compute_target_name="badpods"
        )
        service = Model.deploy(ws, "invalid-svc", [_model(ws, tmp_path)], _source(tmp_path), config)

        with pytest.raises(WebserviceException, match="ApplyRefused"):
            service.wait_for_deployment(timeout_sec=120)

        assert service.state == states.FAILED
        assert "HTTP 422" in service.error["message"]
        service.delete()
    finally:
        detach(ws, "badpods")
