"""What ``computetarget attach`` installs on a cluster, as plain JSON-ready dicts.

The in-cluster front end (the role of Azure's ``azureml-fe``: its Deployment and Service), its
identity and the only permissions it needs (a ServiceAccount, a Role and RoleBinding in the
services namespace), the target's token-signing Secret, and the namespaces, in apply order.
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
    # One replica: each front end scales services from the load it sees, so several would each
    # see a share of it and disagree (docs/kubernetes.md, "what is not built yet").
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
    """The front end's Role and RoleBinding, with only the verbs it uses.

    In the services namespace only: discover replicas (pods), read service keys (secrets), follow
    Deployments, change their replica count through the scale subresource, record Events. Nothing
    in its own namespace and no ClusterRole: it can read no Secret of any other namespace.
    """
    watch = ["get", "list", "watch"]
    labels = frontend_labels()
    subject = {"kind": "ServiceAccount", "name": FRONTEND_NAME, "namespace": cluster.system_namespace}
    services_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(FRONTEND_NAME, cluster.services_namespace, labels),
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": watch},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": watch},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch", "update"]},
            # Autoscaling decisions are recorded as Events on the Deployment (kubectl describe).
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    }

    def binding(role: Manifest) -> Manifest:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": object_meta(FRONTEND_NAME, role["metadata"]["namespace"], labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FRONTEND_NAME},
            "subjects": [subject],
        }

    return [services_role, binding(services_role)]


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
                },
            },
        },
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
        frontend_service(cluster),
    ]
