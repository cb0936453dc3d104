"""Kubernetes objects for a service and for an attached cluster, as plain JSON-ready dicts.

Pure functions: a :class:`~modelport.service.spec.ServiceSpec` plus what the driver resolved from
the workspace (namespace, image, artifact store, the files to fetch) in, manifests out. Nothing
here talks to a cluster; the driver applies what these return with server-side apply. Every
manifest is written so that it validates strictly for Kubernetes 1.25 … 1.37 and applies on the
1.20 testbed (``tests/compute/kubernetes``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from modelport.errors import ComputeTargetException, UserErrorException
from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S, GRACEFUL_TIMEOUT_ENV
from modelport.service.replica_contract import (
    LIVENESS_PATH,
    READINESS_PATH,
    RUNTIME_PORT,
    graceful_timeout,
    model_dir,
    replica_environment,
)
from modelport.service.spec import ServiceSpec

Manifest = dict[str, Any]

FIELD_MANAGER = "modelport"
DEFAULT_IMAGE = "modelport/runtime:0.1.0"
DEFAULT_SYSTEM_NAMESPACE = "modelport-system"
APP_ROOT = "/var/azureml-app"
FRONTEND_PORT = 8080
FRONTEND_NAME = "modelport-frontend"
TOKEN_SECRET_NAME = "modelport-frontend-token-signing"
# A ConfigMap holds at most 1 MiB; half of it leaves room for keys and metadata. Larger source
# folders are fetched from the artifact store by the init container, like the models.
INLINE_SOURCE_LIMIT = 512 * 1024

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_SERVICE = "modelport.io/service"
ANNOTATION_GENERATION = "modelport.io/generation"
# On a service's Deployment (not its pod template, so changing it starts no rollout): the routing,
# admission and autoscaling settings the in-cluster front end applies (ServiceSpec.frontend_settings).
ANNOTATION_FRONTEND = "modelport.io/frontend"
# On the front end's Deployment: which workspace and target attached it ("<workspace>/<target>").
ANNOTATION_OWNER = "modelport.io/attached-by"
ARTIFACT_CREDENTIALS_SECRET = "modelport-artifact-credentials"

# Graceful termination (docs/kubernetes.md). The preStop hook holds SIGTERM back while the
# deletion propagates (the front end's pod watch, kube-proxy's Endpoints), so that no new
# connection arrives once the process stops accepting; it runs `python`, which every image that
# runs modelport has (the Debian-built base image may lack coreutils' sleep). After the hook,
# requests in flight get the graceful timeout; the pod's grace period covers both and a margin.
PRESTOP_DELAY_S = 5
TERMINATION_MARGIN_S = 5
PRESTOP_HOOK = {"exec": {"command": ["python", "-c", f"import time; time.sleep({PRESTOP_DELAY_S})"]}}

_FETCH_MOUNT = "/var/modelport/fetch"
_SOURCE_MOUNT = "/var/modelport/source"
_REMOTE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https"})


@dataclass(frozen=True)
class FetchFile:
    """One file the init container writes under the app root: its relative path, blob digest and mode."""

    path: str
    digest: str
    mode: int = 0o644


@dataclass(frozen=True)
class ArtifactAccess:
    """The workspace's artifact store as pods reach it: its URL and the Secret with its credentials.

    ``credentials_secret`` names a Secret in the service namespace whose keys become environment
    variables of the init container (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL`` …); ``None`` when the cluster reaches the store without credentials.
    """

    url: str
    credentials_secret: str | None = None
    # Non-secret fsspec options; values such as "${AWS_SECRET_ACCESS_KEY}" are read from the
    # credentials Secret's environment variables inside the pod (workspace/artifacts.py).
    storage_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceInputs:
    """What the driver resolved from the workspace for one generation of one service."""

    namespace: str
    generation: int
    artifacts: ArtifactAccess
    files: tuple[FetchFile, ...]  # models (azureml-models/…) and, unless inlined, the source files
    image: str = DEFAULT_IMAGE
    inline_source: Mapping[str, bytes] = field(default_factory=dict)  # path under the app root → bytes
    # PodDisruptionBudget's API version: policy/v1 from Kubernetes 1.21, policy/v1beta1 before
    # (removed in 1.25); the driver picks what the server offers.
    pdb_api_version: str = "policy/v1"
    # The target's extra pod annotations (a service mesh's sidecar switch, scrape hints, ...);
    # modelport's own annotations win over them.
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    workspace_name: str = ""  # WORKSPACE_NAME in the replica, as Azure ML set it
    # After this long without progress the controller marks the rollout ProgressDeadlineExceeded,
    # which modelport reports as DeploymentTimedOut. Kubernetes' default; it must exceed the time
    # a replica needs to become ready (model fetch plus init()).
    progress_deadline_s: int = 600


def check_artifact_url(url: str) -> str:
    """Return ``url`` when pods can read it; refuse a local folder with the fix."""
    scheme = urlparse(url).scheme.lower()
    if scheme in _REMOTE_SCHEMES:
        return url
    raise UserErrorException(
        f"The workspace's artifact store is {url!r}, a folder on this machine, which pods on a cluster "
        "cannot read. Fix: use an artifact store the cluster can reach (artifact_url s3://bucket/prefix "
        "with storage_options endpoint_url/key/secret in the workspace configuration), then register "
        "the models again or copy the store to it."
    )


def quantity_cpu(cores: float) -> str:
    """CPU cores as a Kubernetes quantity in millicores (0.1 → ``100m``); at least ``1m``."""
    return f"{max(1, round(cores * 1000))}m"


def quantity_memory(gb: float) -> str:
    """Memory in GB (Azure ML's unit, binary) as a quantity in MiB (0.5 → ``512Mi``); at least ``1Mi``."""
    return f"{max(1, round(gb * 1024))}Mi"


def inline_source_fits(files: Mapping[str, bytes]) -> bool:
    """True when these source files are small enough to ship in a ConfigMap."""
    return sum(len(content) for content in files.values()) <= INLINE_SOURCE_LIMIT


def service_labels(spec: ServiceSpec) -> dict[str, str]:
    """The labels every object of a service carries; ``modelport.io/service`` selects its pods."""
    return {
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_NAME: "modelport-service",
        LABEL_SERVICE: spec.name,
    }


def owner_reference(owner: Manifest, uid: str) -> dict[str, Any]:
    """An owner reference to ``owner`` (as applied, with the ``uid`` the server gave it).

    With it, deleting the owner (the Deployment) lets the garbage collector remove the
    Service, Secret and ConfigMaps too; ``blockOwnerDeletion`` makes a foreground delete wait
    for them.
    """
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": True,
    }


def with_owner(manifest: Manifest, reference: Mapping[str, Any]) -> Manifest:
    """A copy of ``manifest`` owned by ``reference``."""
    metadata = {**manifest["metadata"], "ownerReferences": [dict(reference)]}
    return {**manifest, "metadata": metadata}


def keys_secret_name(spec: ServiceSpec) -> str:
    """The Secret holding a service's keys and token-signing secret."""
    return f"{spec.name}-keys"


def _meta(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def _content_suffix(payload: Any) -> str:
    # ConfigMap names carry a hash of their content, so a changed plan or source is a new object
    # referenced by a new pod template (a rollout), and pods of the old generation keep theirs.
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def fetch_plan(spec: ServiceSpec, inputs: ServiceInputs) -> dict[str, Any]:
    """What the init container does: the files to fetch from the store, and where inline source lies."""
    check_artifact_url(inputs.artifacts.url)
    return {
        "artifactUrl": inputs.artifacts.url,
        "storageOptions": dict(inputs.artifacts.storage_options),
        "appRoot": APP_ROOT,
        "modelDir": model_dir(spec.models),
        "files": [{"path": f.path, "digest": f.digest, "mode": f.mode} for f in inputs.files],
        "inlineSource": _SOURCE_MOUNT if inputs.inline_source else None,
        "inlinePaths": sorted(inputs.inline_source),
    }


def fetch_config_map(spec: ServiceSpec, inputs: ServiceInputs) -> Manifest:
    """The ConfigMap with the init container's fetch plan (``plan.json``)."""
    plan = fetch_plan(spec, inputs)
    name = f"{spec.name}-fetch-{_content_suffix(plan)}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, inputs.namespace, service_labels(spec)),
        "data": {"plan.json": json.dumps(plan, sort_keys=True)},
    }


def source_config_map(spec: ServiceSpec, inputs: ServiceInputs) -> Manifest | None:
    """The ConfigMap with a small source folder (``None`` when the source is fetched from the store).

    ConfigMap keys cannot hold ``/``, so files get numbered keys and the volume's ``items`` map
    them back to their paths (see :func:`deployment`).
    """
    if not inputs.inline_source:
        return None
    if not inline_source_fits(inputs.inline_source):
        raise ComputeTargetException(
            f"The source of service {spec.name!r} is larger than {INLINE_SOURCE_LIMIT} bytes and cannot "
            "be shipped in a ConfigMap; the driver must pass it as files to fetch instead."
        )
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for index, (_path, content) in enumerate(sorted(inputs.inline_source.items())):
        key = f"f{index}"
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
    digest = _content_suffix({p: hashlib.sha256(c).hexdigest() for p, c in inputs.inline_source.items()})
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{spec.name}-source-{digest}", inputs.namespace, service_labels(spec)),
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    return manifest


def artifact_credentials_secret(namespace: str, values: Mapping[str, str]) -> Manifest:
    """The Secret with the artifact store's credentials, as environment variables of the init container.

    Shared by the services of a namespace (the workspace's store is one); the fetch plan refers to
    its variables as ``${NAME}`` in ``storageOptions``.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(ARTIFACT_CREDENTIALS_SECRET, namespace, {LABEL_MANAGED_BY: FIELD_MANAGER}),
        "type": "Opaque",
        "stringData": dict(values),
    }


def keys_secret(spec: ServiceSpec, namespace: str) -> Manifest:
    """The Secret with the service's keys and its token-signing secret (read by the front end)."""
    config = spec.deployment
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(keys_secret_name(spec), namespace, service_labels(spec)),
        "type": "Opaque",
        "stringData": {
            "authMode": spec.auth_mode,
            "primaryKey": config.primary_key or "",
            "secondaryKey": config.secondary_key or "",
            "tokenSecret": spec.token_secret,
        },
    }


def _resources(spec: ServiceSpec) -> dict[str, dict[str, str]]:
    config = spec.deployment
    requests = {"cpu": quantity_cpu(config.cpu_cores), "memory": quantity_memory(config.memory_gb)}
    limits = {
        "cpu": quantity_cpu(config.cpu_cores_limit or config.cpu_cores),
        "memory": quantity_memory(config.memory_gb_limit or config.memory_gb),
    }
    if config.gpu_cores:
        # Extended resources must have request == limit; the device plugin's name on NVIDIA nodes.
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(config.gpu_cores)
    return {"requests": requests, "limits": limits}


def termination_grace(graceful_timeout_s: int) -> int:
    """A pod's ``terminationGracePeriodSeconds``: the preStop delay, the drain, and a margin."""
    return PRESTOP_DELAY_S + graceful_timeout_s + TERMINATION_MARGIN_S


def _scorer_env(spec: ServiceSpec, inputs: ServiceInputs) -> list[dict[str, str]]:
    """The replica contract's variables in the pod's list form."""
    env = replica_environment(spec, APP_ROOT, inputs.workspace_name)
    return [{"name": name, "value": value} for name, value in env.items()]


def _probes(spec: ServiceSpec) -> dict[str, Any]:
    config = spec.deployment
    return {
        # Azure ML's liveness probe: GET / with the livenessProbeRequirements knobs. Kubernetes
        # requires successThreshold 1 on liveness probes, so that knob governs readiness instead.
        "livenessProbe": {
            "httpGet": {"path": LIVENESS_PATH, "port": RUNTIME_PORT, "scheme": "HTTP"},
            "initialDelaySeconds": config.initial_delay_seconds,
            "periodSeconds": config.period_seconds,
            "timeoutSeconds": config.timeout_seconds,
            "successThreshold": 1,
            "failureThreshold": config.failure_threshold,
        },
        # Ready once every worker's init() has returned; polled often so that a replica takes
        # traffic soon after it can, which is what the local target does too.
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH, "port": RUNTIME_PORT, "scheme": "HTTP"},
            "periodSeconds": 1,
            "timeoutSeconds": config.timeout_seconds,
            "successThreshold": config.success_threshold,
            "failureThreshold": 1,
        },
    }


def deployment(spec: ServiceSpec, inputs: ServiceInputs) -> Manifest:
    """The service's Deployment: scoring runtime, model-fetching init container, probes and resources.

    ``replicas`` is left out while autoscaling: the front end owns it through the scale
    subresource, and server-side apply must not reset it on every update.
    """
    config = spec.deployment
    labels = service_labels(spec)
    fetch = fetch_config_map(spec, inputs)
    source = source_config_map(spec, inputs)
    app = {"name": "app", "mountPath": APP_ROOT}
    init_mounts = [app, {"name": "fetch", "mountPath": _FETCH_MOUNT, "readOnly": True}]
    volumes: list[dict[str, Any]] = [
        {"name": "app", "emptyDir": {}},
        {"name": "fetch", "configMap": {"name": fetch["metadata"]["name"]}},
    ]
    if source is not None:
        paths = [path for path, _ in sorted(inputs.inline_source.items())]
        items = [{"key": f"f{index}", "path": path} for index, path in enumerate(paths)]
        volumes.append({"name": "source", "configMap": {"name": source["metadata"]["name"], "items": items}})
        init_mounts.append({"name": "source", "mountPath": _SOURCE_MOUNT, "readOnly": True})
    init_env: list[dict[str, Any]] = []
    init_env_from: list[dict[str, Any]] = []
    if inputs.artifacts.credentials_secret:
        init_env_from.append({"secretRef": {"name": inputs.artifacts.credentials_secret}})
    init_container: dict[str, Any] = {
        "name": "fetch-models",
        "image": inputs.image,
        "command": ["python", "-m", "modelport.compute.kubernetes.fetch", f"{_FETCH_MOUNT}/plan.json"],
        "volumeMounts": init_mounts,
        "env": init_env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }
    if init_env_from:
        init_container["envFrom"] = init_env_from
    scorer = {
        "name": "scorer",
        "image": inputs.image,
        "command": [
            "python",
            "-m",
            "modelport",
            "serve",
            "--entry_script",
            f"{APP_ROOT}/{spec.source.entry_script}",
            "--model_dir",
            f"{APP_ROOT}/{model_dir(spec.models)}",
            "--port",
            str(RUNTIME_PORT),
            "--host",
            "0.0.0.0",
        ],
        "workingDir": APP_ROOT,
        "env": _scorer_env(spec, inputs),
        "ports": [{"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "resources": _resources(spec),
        "volumeMounts": [app],
        **_probes(spec),
        "lifecycle": {"preStop": PRESTOP_HOOK},
    }
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": {LABEL_SERVICE: spec.name}},
        "progressDeadlineSeconds": inputs.progress_deadline_s,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {**inputs.pod_annotations, ANNOTATION_GENERATION: str(inputs.generation)},
            },
            "spec": {
                "initContainers": [init_container],
                "containers": [scorer],
                "volumes": volumes,
                "automountServiceAccountToken": False,  # replicas never call the API
                "terminationGracePeriodSeconds": termination_grace(graceful_timeout(spec)),
            },
        },
    }
    if not config.autoscale_enabled:
        deployment_spec["replicas"] = config.num_replicas or 1
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_meta(spec.name, inputs.namespace, labels),
            "annotations": {
                ANNOTATION_GENERATION: str(inputs.generation),
                ANNOTATION_FRONTEND: json.dumps(spec.frontend_settings, sort_keys=True),
            },
        },
        "spec": deployment_spec,
    }


def service(spec: ServiceSpec, namespace: str) -> Manifest:
    """The ClusterIP Service in front of the replicas; the front end discovers them through it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec.name, namespace, service_labels(spec)),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_SERVICE: spec.name},
            # protocol is always explicit: server-side apply on 1.20-era servers fails with a 500
            # on a port list entry that omits it (a key field of the list).
            "ports": [{"name": "http", "port": 80, "targetPort": RUNTIME_PORT, "protocol": "TCP"}],
        },
    }


def disruption_budget(spec: ServiceSpec, inputs: ServiceInputs) -> Manifest:
    """At most one replica evicted at a time (node drains, cluster upgrades) while others serve."""
    return {
        "apiVersion": inputs.pdb_api_version,
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec.name, inputs.namespace, service_labels(spec)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {LABEL_SERVICE: spec.name}}},
    }


def service_manifests(spec: ServiceSpec, inputs: ServiceInputs) -> list[Manifest]:
    """Every object of one service generation, Deployment first (the others are owned by it)."""
    source = source_config_map(spec, inputs)
    objects = [
        deployment(spec, inputs),
        service(spec, inputs.namespace),
        keys_secret(spec, inputs.namespace),
        fetch_config_map(spec, inputs),
        disruption_budget(spec, inputs),
    ]
    if source is not None:
        objects.append(source)
    return objects


# -- attach: the front end and its permissions --------------------------------------------------

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
        "metadata": _meta(FRONTEND_NAME, cluster.system_namespace, frontend_labels()),
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
        "metadata": _meta(FRONTEND_NAME, cluster.services_namespace, labels),
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
            "metadata": _meta(FRONTEND_NAME, role["metadata"]["namespace"], labels),
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
        "metadata": _meta(TOKEN_SECRET_NAME, cluster.system_namespace, frontend_labels()),
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
    metadata = _meta(FRONTEND_NAME, cluster.system_namespace, labels)
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
        "metadata": _meta(FRONTEND_NAME, cluster.system_namespace, frontend_labels()),
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


def manifest_key(manifest: Manifest) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): how objects are told apart."""
    metadata = manifest["metadata"]
    return (manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"])


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one manifest of ``kind`` (and ``name``) in ``manifests``."""
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]
