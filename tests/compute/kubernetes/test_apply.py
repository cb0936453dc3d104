"""Tier 1: modelport's manifests on a real Kubernetes 1.20 control plane (``make test-k8s``).

Server-side apply with field manager ``modelport``, idempotent re-apply, rolling-update
generations, owner references and garbage collection, and the front end's RBAC as the real
authorizer evaluates it. No kubelet runs, so no pod ever starts: these tests cover what the API
server and the controllers do with the objects, not containers.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import kubernetes_validate
import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret, Service
from lightkube.types import CascadeType

from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply, apply_all, apply_service, disruption_budget_resource
from modelport.compute.kubernetes.objects import FIELD_MANAGER
from tests.compute.kubernetes.rbac import can
from tests.compute.kubernetes.specs import TESTBED_PDB_API, make_inputs, make_spec

pytestmark = pytest.mark.k8s

GC_DEADLINE_S = 60.0
POLL_S = 0.2


def stable_view(obj: Any) -> dict[str, Any]:
    """An applied object without what the server and controllers change on their own.

    Controllers write Deployment status and revision and (on 1.20) a ServiceAccount's token ``secrets``, so
    resourceVersion alone cannot tell whether an apply changed anything; modelport's own managed
    fields entry, the generation and the content it applied can.
    """
    data = obj.to_dict()
    data = {k: v for k, v in data.items() if k not in ("status", "secrets")}
    metadata = dict(data["metadata"])
    metadata.pop("resourceVersion", None)
    annotations = {
        k: v
        for k, v in (metadata.pop("annotations", None) or {}).items()
        if not k.startswith("deployment.kubernetes.io/")
    }
    if annotations:  # the deployment controller's revision annotation is its own, not an apply's
        metadata["annotations"] = annotations
    managed = metadata.pop("managedFields", [])
    # The entry's time is left out: 1.20 refreshes it on an apply that changes nothing.
    metadata["modelportFields"] = [
        {k: v for k, v in e.items() if k != "time"} for e in managed if e["manager"] == FIELD_MANAGER
    ]
    return {**data, "metadata": metadata}


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (for readable assertion messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for key in sorted(set(a) | set(b)) for d in differences(a.get(key), b.get(key), f"{path}.{key}")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_service_objects_apply_with_the_modelport_field_manager(kube: Client, namespace: str) -> None:
    spec = make_spec()
    applied = apply_service(
        kube, m.service_manifests(spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace))
    )

    deployment = kube.get(Deployment, spec.name, namespace=namespace)
    managers = {entry.manager for entry in deployment.metadata.managedFields}
    assert FIELD_MANAGER in managers
    # Server defaults were filled in; the container is what modelport asked for.
    assert deployment.spec.strategy.type == "RollingUpdate"
    scorer = deployment.spec.template.spec.containers[0]
    assert scorer.livenessProbe.httpGet.path == "/"
    assert scorer.resources.requests == {"cpu": "100m", "memory": "512Mi"}
    secret = kube.get(Secret, m.keys_secret_name(spec), namespace=namespace)
    assert set(secret.data) == {
        "authMode",
        "namedKeys",
        "primaryKey",
        "secondaryKey",
        "tokenSecret",
    }  # stringData → data
    service = kube.get(Service, spec.name, namespace=namespace)
    assert service.spec.ports[0].protocol == "TCP"
    assert len(applied) == 5  # with the PodDisruptionBudget


def test_reapplying_the_same_generation_changes_nothing(kube: Client, namespace: str) -> None:
    spec = make_spec()
    manifests = m.service_manifests(spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace))
    first = apply_service(kube, manifests)
    second = apply_service(kube, manifests)
    for key, obj in first.items():
        assert differences(stable_view(obj), stable_view(second[key])) == [], key
    assert second[f"Deployment/{spec.name}"].metadata.generation == 1


def test_a_new_generation_changes_the_pod_template_and_keeps_the_autoscaled_replicas(
    kube: Client, namespace: str
) -> None:
    spec = make_spec()
    apply_service(
        kube,
        m.service_manifests(
            spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace, generation=1)
        ),
    )
    # The front end scales through the scale subresource, as another field manager.
    kube.patch(
        Deployment.Scale,
        spec.name,
        {"spec": {"replicas": 3}},
        namespace=namespace,
        field_manager="modelport-frontend",
    )
    updated = make_spec(cpu_cores=0.25)
    applied = apply_service(
        kube,
        m.service_manifests(
            updated, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace, generation=2)
        ),
    )

    deployment = applied[f"Deployment/{spec.name}"]
    assert deployment.metadata.generation >= 2
    assert deployment.spec.template.metadata.annotations[m.ANNOTATION_GENERATION] == "2"
    assert deployment.spec.template.spec.containers[0].resources.requests["cpu"] == "250m"
    assert deployment.spec.replicas == 3  # apply leaves the autoscaler's count alone


def test_deleting_the_deployment_removes_everything_it_owns(kube: Client, namespace: str) -> None:
    spec = make_spec()
    manifests = m.service_manifests(
        spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace, inline={"src/score.py": b"x"})
    )
    applied = apply_service(kube, manifests)
    kinds = {"Deployment", "Service", "Secret", "ConfigMap", "PodDisruptionBudget"}
    assert {key.split("/")[0] for key in applied} == kinds

    kube.delete(Deployment, spec.name, namespace=namespace, cascade=CascadeType.FOREGROUND)

    # The garbage collector (kube-controller-manager) removes the owned objects.
    deadline = time.monotonic() + GC_DEADLINE_S
    left = _service_objects(kube, namespace, spec.name)
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = _service_objects(kube, namespace, spec.name)
    assert left == []


def _service_objects(kube: Client, namespace: str, service: str) -> list[str]:
    selector = {m.LABEL_SERVICE: service}
    found = []
    for kind in (Deployment, Service, Secret, ConfigMap, disruption_budget_resource(TESTBED_PDB_API)):
        found += [
            f"{kind.__name__}/{o.metadata.name}"
            for o in kube.list(kind, namespace=namespace, labels=selector)
        ]
    return found


def test_two_namespaces_hold_services_of_the_same_name_apart(kube: Client) -> None:
    spec = make_spec()
    spaces = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for space in spaces:
        kube.create(Namespace(metadata={"name": space}))
    try:
        for space in spaces:
            apply_service(
                kube, m.service_manifests(spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=space))
            )
        kube.delete(Deployment, spec.name, namespace=spaces[0])
        assert kube.get(Deployment, spec.name, namespace=spaces[1]).metadata.name == spec.name
    finally:
        for space in spaces:
            kube.delete(Namespace, space)


def test_the_server_refuses_what_schema_validation_cannot_see(kube: Client, namespace: str) -> None:
    # Tier 0's schemas accept a selector that matches none of the pod template's labels; the real
    # apiserver refuses it, which is why this tier exists.
    bad = m.deployment(make_spec(), make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace))
    bad["spec"]["selector"]["matchLabels"] = {m.LABEL_SERVICE: "someone-else"}
    kubernetes_validate.validate(bad, "1.37", strict=True)
    with pytest.raises(ApiError) as refused:
        apply(kube, bad)
    assert refused.value.status.code == 422
    assert "selector" in refused.value.status.message


# -- attach ---------------------------------------------------------------------------------------


def _on_the_testbed(manifests: list[Any]) -> list[Any]:
    """Attach's objects but the front end's policy/v1 PodDisruptionBudget, which the 1.20 control
    plane does not serve (attach skips it there with a note: test_target_testbed.py; its schema is
    checked against 1.25–1.37 in test_frontend_manifests.py)."""
    return [o for o in manifests if o["kind"] != "PodDisruptionBudget"]


def test_attach_objects_apply_and_the_front_end_gets_only_what_it_needs(kube: Client) -> None:
    suffix = uuid.uuid4().hex[:8]
    cluster = fm.ClusterInputs(
        services_namespace=f"svc-{suffix}", system_namespace=f"sys-{suffix}", service_type="NodePort"
    )
    other = f"other-{suffix}"
    try:
        apply_all(kube, _on_the_testbed(fm.attach_manifests(cluster, "s" * 48)))
        kube.create(Namespace(metadata={"name": other}))
        account = f"{cluster.system_namespace}:{fm.FRONTEND_NAME}"
        svc, sys_ns = cluster.services_namespace, cluster.system_namespace

        assert can(kube, account, "list", "pods", svc)
        assert can(kube, account, "watch", "pods", svc)
        assert not can(kube, account, "watch", "endpoints", svc)  # discovery is from pods
        assert can(kube, account, "get", "secrets", svc)
        assert can(kube, account, "patch", "deployments", svc, group="apps", subresource="scale")
        assert not can(kube, account, "get", "secrets", sys_ns, name=fm.TOKEN_SECRET_NAME)

        assert not can(kube, account, "get", "secrets", other)
        assert not can(kube, account, "list", "secrets", sys_ns)
        assert not can(kube, account, "get", "secrets", sys_ns, name="someone-elses")
        assert not can(kube, account, "delete", "deployments", svc, group="apps")
        assert not can(kube, account, "patch", "deployments", svc, group="apps")
        assert not can(kube, account, "create", "pods", svc)

        front = kube.get(Service, fm.FRONTEND_NAME, namespace=sys_ns)
        assert front.spec.type == "NodePort" and front.spec.ports[0].nodePort  # allocated by the server
    finally:
        for space in (cluster.services_namespace, cluster.system_namespace, other):
            with contextlib.suppress(ApiError):
                kube.delete(Namespace, space)


def test_attach_reapplied_is_a_no_op(kube: Client) -> None:
    suffix = uuid.uuid4().hex[:8]
    cluster = fm.ClusterInputs(services_namespace=f"svc-{suffix}", system_namespace=f"sys-{suffix}")
    try:
        first = apply_all(kube, _on_the_testbed(fm.attach_manifests(cluster, "s" * 48)))
        second = apply_all(kube, _on_the_testbed(fm.attach_manifests(cluster, "s" * 48)))
        for before, after in zip(first, second, strict=True):
            assert differences(stable_view(before), stable_view(after)) == [], before.kind
    finally:
        for space in (cluster.services_namespace, cluster.system_namespace):
            kube.delete(Namespace, space)
