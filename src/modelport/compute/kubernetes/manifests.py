"""A service's Kubernetes objects, as plain JSON-ready dicts.

Its Deployment (the scoring runtime as the replica contract describes it, the init container that
fetches the models, probes, resources, graceful termination), its Service, keys Secret,
PodDisruptionBudget and the ConfigMaps with the fetch plan (:mod:`~modelport.compute.kubernetes.fetch_plan`)
and a small source folder.

Pure functions: a :class:`~modelport.service.spec.ServiceSpec` plus what the driver resolved from
the workspace (namespace, image, artifact store, the files to fetch) in, manifests out. Nothing
here talks to a cluster; the driver applies what these return with server-side apply. Every
manifest is written so that it validates strictly for Kubernetes 1.25 … 1.37 and applies on the
1.20 testbed (``tests/compute/kubernetes``). What attach installs is in
:mod:`~modelport.compute.kubernetes.frontend_manifests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.compute.kubernetes.envplacement import (
    CachedEnvironment,
    NodeCache,
    environment_init,
    replica_command,
    replica_env,
    replica_mount,
)
from modelport.compute.kubernetes.fetch_plan import (
    APP_ROOT,
    INLINE_SOURCE_LIMIT,
    SOURCE_MOUNT,
    ArtifactAccess,
    FetchFile,
    fetch_plan,
    inline_source_fits,
)
from modelport.compute.kubernetes.objects import (
    DEFAULT_IMAGE,
    FIELD_MANAGER,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    Manifest,
    object_meta,
)
from modelport.compute.kubernetes.termination import PRESTOP_HOOK, termination_grace
from modelport.errors import ComputeTargetException
from modelport.frontend.routes import named_keys_wire
from modelport.service.replica_contract import (
    LIVENESS_PATH,
    READINESS_PATH,
    RUNTIME_PORT,
    graceful_timeout,
    replica_environment,
    serve_arguments,
)
from modelport.service.spec import ServiceSpec

LABEL_SERVICE = "modelport.io/service"
ANNOTATION_GENERATION = "modelport.io/generation"
# On a service's Deployment (not its pod template, so changing it starts no rollout): the routing,
# admission and autoscaling settings the in-cluster front end applies (ServiceSpec.frontend_settings).
ANNOTATION_FRONTEND = "modelport.io/frontend"

_FETCH_MOUNT = "/var/modelport/fetch"


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
    # The environment pods build in (or find in) the node cache; None: the image is the environment.
    environment: CachedEnvironment | None = None
    env_cache: NodeCache = field(default_factory=NodeCache)
    # Secrets the kubelet pulls the pods' images with (the target's registry credentials).
    image_pull_secrets: tuple[str, ...] = ()


def quantity_cpu(cores: float) -> str:
    """CPU cores as a Kubernetes quantity in millicores (0.1 → ``100m``); at least ``1m``."""
    return f"{max(1, round(cores * 1000))}m"


def quantity_memory(gb: float) -> str:
    """Memory in GB (Azure ML's unit, binary) as a quantity in MiB (0.5 → ``512Mi``); at least ``1Mi``."""
    return f"{max(1, round(gb * 1024))}Mi"


def service_labels(spec: ServiceSpec) -> dict[str, str]:
    """The labels every object of a service carries; ``modelport.io/service`` selects its pods."""
    return {
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_NAME: "modelport-service",
        LABEL_SERVICE: spec.name,
    }


def keys_secret_name(spec: ServiceSpec) -> str:
    """The Secret holding a service's keys and token-signing secret."""
    return f"{spec.name}-keys"


def _content_suffix(payload: Any) -> str:
    # ConfigMap names carry a hash of their content, so a changed plan or source is a new object
    # referenced by a new pod template (a rollout), and pods of the old generation keep theirs.
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def fetch_config_map(spec: ServiceSpec, inputs: ServiceInputs) -> Manifest:
    """The ConfigMap with the init container's fetch plan (``plan.json``)."""
    plan = fetch_plan(spec, inputs.artifacts, inputs.files, inputs.inline_source)
    name = f"{spec.name}-fetch-{_content_suffix(plan)}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(name, inputs.namespace, service_labels(spec)),
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
        "metadata": object_meta(f"{spec.name}-source-{digest}", inputs.namespace, service_labels(spec)),
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    return manifest


def keys_secret(spec: ServiceSpec, namespace: str) -> Manifest:
    """The Secret with the service's keys and its token-signing secret (read by the front end)."""
    config = spec.deployment
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(keys_secret_name(spec), namespace, service_labels(spec)),
        "type": "Opaque",
        "stringData": {
            "authMode": spec.auth_mode,
            "primaryKey": config.primary_key or "",
            "secondaryKey": config.secondary_key or "",
            "tokenSecret": spec.token_secret,
            "namedKeys": named_keys_wire(spec.named_keys),  # hashes and limits, never key values
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


def _scorer_env(spec: ServiceSpec, inputs: ServiceInputs) -> list[dict[str, str]]:
    """The replica contract's variables in the pod's list form."""
    env = replica_environment(spec, APP_ROOT, inputs.workspace_name)
    return [{"name": name, "value": value} for name, value in env.items()]


def _scorer_command(inputs: ServiceInputs, *serve_args: str) -> list[str]:
    """``modelport serve`` with ``serve_args``, in the cached environment when the pod has one."""
    if inputs.environment is not None:
        return replica_command(inputs.environment, list(serve_args))
    return ["python", "-m", "modelport", "serve", *serve_args]


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
        init_mounts.append({"name": "source", "mountPath": SOURCE_MOUNT, "readOnly": True})
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
        "command": _scorer_command(inputs, *serve_arguments(spec.models, spec.source, APP_ROOT)),
        "workingDir": APP_ROOT,
        "env": _scorer_env(spec, inputs) + (replica_env(inputs.environment) if inputs.environment else []),
        "ports": [{"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "resources": _resources(spec),
        "volumeMounts": [app, *([replica_mount()] if inputs.environment else [])],
        **_probes(spec),
        "lifecycle": {"preStop": PRESTOP_HOOK},
    }
    init_containers = [init_container]
    if inputs.environment is not None:
        # First: a pod whose environment cannot be built never fetches its models.
        init_containers.insert(0, environment_init(inputs.environment, inputs.env_cache, inputs.image))
        volumes.append(inputs.env_cache.volume())
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
                "initContainers": init_containers,
                "containers": [scorer],
                "volumes": volumes,
                "automountServiceAccountToken": False,  # replicas never call the API
                **(
                    {"imagePullSecrets": [{"name": name} for name in inputs.image_pull_secrets]}
                    if inputs.image_pull_secrets
                    else {}
                ),
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
            **object_meta(spec.name, inputs.namespace, labels),
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
        "metadata": object_meta(spec.name, namespace, service_labels(spec)),
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
        "metadata": object_meta(spec.name, inputs.namespace, service_labels(spec)),
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
