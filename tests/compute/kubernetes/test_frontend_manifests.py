"""Tier 0: what attach installs (the front end, its permissions, the namespaces) carries what the
target's options ask for and no more. No cluster is needed; ``test_manifests.py`` validates these
manifests strictly with the service's."""

from __future__ import annotations

import pytest

from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes.termination import PRESTOP_DELAY_S, PRESTOP_HOOK
from modelport.errors import ComputeTargetException

SIGNING_KEY = "k" * 48


@pytest.mark.parametrize("kind", ["LoadBalancer", "NodePort", "ClusterIP"])
def test_front_end_service_type_is_configurable(kind: fm.FrontendServiceType) -> None:
    cluster = fm.ClusterInputs(services_namespace="ml", service_type=kind)
    assert fm.frontend_service(cluster)["spec"]["type"] == kind


def test_front_end_roles_are_namespaced_and_minimal() -> None:
    cluster = fm.ClusterInputs(services_namespace="ml")
    objects = fm.attach_manifests(cluster, SIGNING_KEY)
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    roles = [o for o in objects if o["kind"] == "Role"]
    verbs = {
        verb
        for role in roles
        for rule in role["rules"]
        if rule["resources"] != ["leases"]
        for verb in rule["verbs"]
    }
    assert verbs <= {"get", "list", "watch", "patch", "update", "create"}
    deletes = [rule["resources"] for role in roles for rule in role["rules"] if "delete" in rule["verbs"]]
    assert deletes == [["leases"]]  # its own load report, and those of replicas long gone
    creates = [rule for role in roles for rule in role["rules"] if "create" in rule["verbs"]]
    assert [rule["resources"] for rule in creates] == [["events"], ["leases"]]
    assert [r["metadata"]["namespace"] for r in roles] == ["ml", fm.DEFAULT_SYSTEM_NAMESPACE]
    services = next(r for r in roles if r["metadata"]["namespace"] == "ml")
    scale = next(rule for rule in services["rules"] if rule["resources"] == ["deployments/scale"])
    assert "delete" not in scale["verbs"] and "create" not in scale["verbs"]
    # In its own namespace: Leases only (the leader election), no Secret.
    system = next(r for r in roles if r["metadata"]["namespace"] == fm.DEFAULT_SYSTEM_NAMESPACE)
    assert [(rule["apiGroups"], rule["resources"]) for rule in system["rules"]] == [
        (["coordination.k8s.io"], ["leases"])
    ]
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert [b["metadata"]["namespace"] for b in bindings] == ["ml", fm.DEFAULT_SYSTEM_NAMESPACE]
    assert all(b["subjects"][0]["namespace"] == fm.DEFAULT_SYSTEM_NAMESPACE for b in bindings)


def test_one_namespace_gets_one_role_with_both_sets_of_rules() -> None:
    cluster = fm.ClusterInputs(services_namespace="shared", system_namespace="shared")
    roles = [o for o in fm.attach_manifests(cluster, SIGNING_KEY) if o["kind"] in ("Role", "RoleBinding")]
    assert [(o["kind"], o["metadata"]["name"]) for o in roles] == [
        ("Role", fm.FRONTEND_NAME),
        ("RoleBinding", fm.FRONTEND_NAME),
    ]
    assert ["leases"] in [rule["resources"] for rule in roles[0]["rules"]]
    assert ["deployments/scale"] in [rule["resources"] for rule in roles[0]["rules"]]


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_front_end_replicas_spread_over_nodes_under_a_disruption_budget(replicas: int) -> None:
    cluster = fm.ClusterInputs(services_namespace="ml", replicas=replicas)
    objects = fm.attach_manifests(cluster, SIGNING_KEY)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    pod = deployment["spec"]["template"]
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    # Preferred, not required: a one-node cluster still runs every replica.
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (budget,) = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["namespace"] == cluster.system_namespace
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    # The election needs its namespace and each replica's own name.
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["MODELPORT_FRONTEND_NAMESPACE"]["value"] == cluster.system_namespace
    assert env["MODELPORT_FRONTEND_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_token_signing_key_must_be_long() -> None:
    with pytest.raises(ComputeTargetException):
        fm.token_signing_secret(fm.ClusterInputs(services_namespace="ml"), "short")


def test_attach_creates_each_namespace_once() -> None:
    same = fm.attach_manifests(fm.ClusterInputs(services_namespace="modelport-system"), SIGNING_KEY)
    assert [o["metadata"]["name"] for o in same if o["kind"] == "Namespace"] == ["modelport-system"]


def test_the_front_end_drains_within_its_grace_period() -> None:
    cluster = fm.ClusterInputs(services_namespace="ml", graceful_timeout_s=45)
    deployment = fm.frontend_deployment(cluster)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["MODELPORT_GRACEFUL_TIMEOUT"] == "45"
    assert container["lifecycle"]["preStop"] == PRESTOP_HOOK
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > PRESTOP_DELAY_S + 45
