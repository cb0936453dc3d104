"""What ``computetarget attach`` installs on a cluster, as plain JSON-ready dicts.

The in-cluster front end (the role of Azure's ``azureml-fe``: its Deployment, spread over the
nodes, its PodDisruptionBudget and Service), its identity and the only permissions it needs (a
ServiceAccount, a Role and RoleBinding in each namespace), the target's token-signing Secret, and
the namespaces, in apply order.
Pure functions: a :class:`ClusterInputs` in, manifests out; :mod:`~modelport.compute.kubernetes.cluster`
applies them and, on detach, deletes them by the same names. Every manifest validates strictly
for Kubernetes 1.25 … 1.37 and applies on the 1.20 testbed (``tests/compute/kubernetes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelport.compute.kubernetes.objects import (
    DEFAULT_IMAGE,
    FIELD_MANAGER,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    Manifest,
    object_meta,
)
from modelport.compute.kubernetes.termination import PRESTOP_HOOK, termination_grace
from modelport.errors import ComputeTargetException
from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S, GRACEFUL_TIMEOUT_ENV

DEFAULT_SYSTEM_NAMESPACE = "modelport-system"
FRONTEND_PORT = 8080
FRONTEND_NAME = "modelport-frontend"
# The Lease whose holder makes the autoscaling decisions, in the system namespace.
LEADER_LEASE_NAME = "modelport-frontend-leader"
TOKEN_SECRET_NAME = "modelport-frontend-token-signing"
# On the front end's Deployment: which workspace and target attached it ("<workspace>/<target>").
ANNOTATION_OWNER = "modelport.io/attached-by"

FrontendServiceType = Literal["LoadBalancer", "NodePort", "ClusterIP"]


@dataclass(frozen=True)
class ClusterInputs:
    """What ``computetarget attach`` installs: where, which image, how the front end is exposed."""

    services_namespace: str
    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE
    image: str = DEFAULT_IMAGE
    service_type: FrontendServiceType = "LoadBalancer"
    # Several replicas serve traffic; one of them, the Lease holder, makes the autoscaling
    # decisions (frontend_leader.py). FastProd attaches 3, DevTest 1 (target.frontend_replica_count).
    replicas: int = 1
    owner: str = ""  # "<workspace>/<target>", recorded on the front end's Deployment
    # Seconds the front end's requests in flight get after SIGTERM (MODELPORT_GRACEFUL_TIMEOUT).
    graceful_timeout_s: int = DEFAULT_GRACEFUL_TIMEOUT_S


def frontend_labels() -> dict[str, str]:
    """The labels of the front end's objects (attach applies them, detach deletes by them)."""
    return {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_NAME: FRONTEND_NAME, LABEL_COMPONENT: "frontend"}


def namespace(name: str) -> Manifest:
    """A Namespace that modelport created (labelled, so that detach knows it may remove it)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": frontend_labels()}}


def frontend_service_account(cluster: ClusterInputs) -> Manifest:
    """The front end's ServiceAccount."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(FRONTEND_NAME, cluster.system_namespace, frontend_labels()),
    }


def frontend_roles(cluster: ClusterInputs) -> list[Manifest]:
    """The front end's Roles and RoleBindings, with only the verbs it uses.

    In the services namespace: discover replicas (pods), read service keys (secrets), follow
    Deployments, change their replica count through the scale subresource, record Events. In its
    own namespace: Leases only (the leader election, ``frontend_leader.py``, and the replicas'
    load reports, ``frontend_load.py``). No ClusterRole: it can read no Secret of any other
    namespace. When both namespaces are one, one Role holds both sets of rules (two Roles would
    share a name).
    """
    watch = ["get", "list", "watch"]
    labels = frontend_labels()
    subject = {"kind": "ServiceAccount", "name": FRONTEND_NAME, "namespace": cluster.system_namespace}
    services_rules: list[dict[str, list[str]]] = [
        {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": watch},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": watch},
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch", "update"]},
        # Autoscaling decisions are recorded as Events on the Deployment (kubectl describe).
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    # The leader Lease (create, update) and each replica's load report (apply, delete).
    lease_verbs = [*watch, "create", "update", "patch", "delete"]
    lease_rules = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": lease_verbs}]
    rules = {cluster.services_namespace: services_rules}
    rules[cluster.system_namespace] = rules.get(cluster.system_namespace, []) + lease_rules

    def role(namespace: str) -> Manifest:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": object_meta(FRONTEND_NAME, namespace, labels),
            "rules": rules[namespace],
        }

    def binding(namespace: str) -> Manifest:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": object_meta(FRONTEND_NAME, namespace, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FRONTEND_NAME},
            "subjects": [subject],
        }

    return [*(role(n) for n in rules), *(binding(n) for n in rules)]


def token_signing_secret(cluster: ClusterInputs, signing_key: str) -> Manifest:
    """The target's token-signing Secret (a random key generated at attach).

    Services' access tokens are signed and verified with each service's own secret (its keys
    Secret), so that rotating one service's secret touches no other and a leaked key forges
    tokens for one service only; this cluster-wide key is what an operator rotates to invalidate
    nothing but itself, and no component reads it (docs/decisions.md).
    """
    if len(signing_key) < 32:
        raise ComputeTargetException("The front end's token-signing key must be at least 32 characters.")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(TOKEN_SECRET_NAME, cluster.system_namespace, frontend_labels()),
        "type": "Opaque",
        "stringData": {"signingKey": signing_key},
    }


def frontend_deployment(cluster: ClusterInputs) -> Manifest:
    """The front end's Deployment (the role of Azure's ``azureml-fe``)."""
    labels = frontend_labels()
    container = {
        "name": "frontend",
        "image": cluster.image,
        # The in-cluster entry point of the shared front-end code (issue 5, point 3).
        "command": ["python", "-m", "modelport.compute.kubernetes.frontend"],
        "env": [
            {"name": "MODELPORT_SERVICES_NAMESPACE", "value": cluster.services_namespace},
            {"name": "MODELPORT_FRONTEND_PORT", "value": str(FRONTEND_PORT)},
            {"name": GRACEFUL_TIMEOUT_ENV, "value": str(cluster.graceful_timeout_s)},
            # The election: the Lease lives in the front end's namespace; the pod's name is its
            # identity (unique, and what `kubectl get lease` shows as the holder).
            {"name": "MODELPORT_FRONTEND_NAMESPACE", "value": cluster.system_namespace},
            {
                "name": "MODELPORT_FRONTEND_IDENTITY",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
            },
        ],
        "ports": [{"name": "http", "containerPort": FRONTEND_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": FRONTEND_PORT}, "periodSeconds": 2},
        "livenessProbe": {
            "httpGet": {"path": "/", "port": FRONTEND_PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "lifecycle": {"preStop": PRESTOP_HOOK},
    }
    metadata = object_meta(FRONTEND_NAME, cluster.system_namespace, labels)
    if cluster.owner:
        metadata["annotations"] = {ANNOTATION_OWNER: cluster.owner}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": cluster.replicas,
            "selector": {"matchLabels": {LABEL_NAME: FRONTEND_NAME}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": FRONTEND_NAME,
                    "containers": [container],
                    "terminationGracePeriodSeconds": termination_grace(cluster.graceful_timeout_s),
                    # One replica per node where the nodes allow, so that losing a node loses one
                    # replica; ScheduleAnyway so that a one-node cluster still runs them all.
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {LABEL_NAME: FRONTEND_NAME}},
                        }
                    ],
                },
            },
        },
    }


def frontend_disruption_budget(cluster: ClusterInputs) -> Manifest:
    """The front end's PodDisruptionBudget: a drain evicts one replica at a time.

    ``maxUnavailable: 1`` rather than ``minAvailable: N-1``: the same rule for every replica
    count, and with one replica (DevTest) a drain can still evict it instead of blocking forever.
    ``policy/v1`` is served from Kubernetes 1.21; attach skips the budget, with a note, on older
    clusters (``cluster.attach``).
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(FRONTEND_NAME, cluster.system_namespace, frontend_labels()),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {LABEL_NAME: FRONTEND_NAME}}},
    }


def frontend_service(cluster: ClusterInputs) -> Manifest:
    """The front end's Service, exposed as the user chose (LoadBalancer, NodePort or ClusterIP)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(FRONTEND_NAME, cluster.system_namespace, frontend_labels()),
        "spec": {
            "type": cluster.service_type,
            "selector": {LABEL_NAME: FRONTEND_NAME},
            "ports": [{"name": "http", "port": 80, "targetPort": FRONTEND_PORT, "protocol": "TCP"}],
        },
    }


def attach_manifests(cluster: ClusterInputs, signing_key: str) -> list[Manifest]:
    """Everything attach installs, in apply order (namespaces, identity, permissions, workload)."""
    namespaces = dict.fromkeys((cluster.system_namespace, cluster.services_namespace))
    return [
        *(namespace(name) for name in namespaces),
        frontend_service_account(cluster),
        *frontend_roles(cluster),
        token_signing_secret(cluster, signing_key),
        frontend_deployment(cluster),
        frontend_disruption_budget(cluster),
        frontend_service(cluster),
    ]
