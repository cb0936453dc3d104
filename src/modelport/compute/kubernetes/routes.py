"""The in-cluster front end's routing table, computed from the objects in the services namespace.

Pure functions over objects as the API returns them (plain dicts, ``.to_dict()`` of lightkube
models): a service's Deployment (settings in its ``modelport.io/frontend`` annotation, replica
count), its keys Secret (auth) and its pods (ready replicas) in, one :class:`ClusterService` per
routable service out. :mod:`modelport.compute.kubernetes.frontend` keeps the objects up to date
with watches and pushes the result to the :class:`~modelport.frontend.server.FrontEnd`.

A service whose objects cannot be routed safely (no keys Secret yet, an unreadable annotation)
is left out of the table, with the reason: its requests get 404 rather than being let through
without the auth it asked for.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelport.compute.kubernetes.manifests import ANNOTATION_FRONTEND, LABEL_SERVICE
from modelport.compute.kubernetes.objects import FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_NAME
from modelport.errors import UserErrorException
from modelport.frontend.autoscaler import AutoscaleSettings
from modelport.frontend.routes import (
    AuthMode,
    AuthPolicy,
    ReplicaTarget,
    ServiceRoute,
    auth_policy,
    parse_named_keys,
    service_route,
)
from modelport.service.replica_contract import RUNTIME_PORT

Obj = Mapping[str, Any]

# What every service object carries (manifests.service_labels); the front end lists and watches
# only these, so the artifact store's credentials Secret (managed-by only) never reaches it.
SERVICE_SELECTOR = {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_NAME: "modelport-service"}
SCORER_CONTAINER = "scorer"
SCORER_PORT_NAME = "http"
_AUTH_MODES: tuple[AuthMode, ...] = ("none", "key", "token")


class ServiceNotRoutable(ValueError):
    """A service's objects do not make a route (yet); the message says why."""


@dataclass(frozen=True)
class ClusterService:
    """One service as the front end sees it: its route, autoscaling and Deployment identity."""

    route: ServiceRoute
    autoscale: AutoscaleSettings
    replicas: int  # the Deployment's spec.replicas: what runs or starts
    uid: str  # the Deployment's uid (involvedObject of the Events the front end records)


def service_name(obj: Obj) -> str | None:
    """The service an object belongs to (its ``modelport.io/service`` label)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_SERVICE)


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def frontend_settings_of(deployment: Obj) -> dict[str, Any]:
    """The parsed ``modelport.io/frontend`` annotation (``ServiceSpec.frontend_settings``)."""
    raw = ((deployment.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_FRONTEND)
    if raw is None:
        raise ServiceNotRoutable(f"the Deployment has no {ANNOTATION_FRONTEND} annotation")
    try:
        settings = json.loads(raw)
    except ValueError as exc:
        raise ServiceNotRoutable(f"the {ANNOTATION_FRONTEND} annotation is not JSON: {exc}") from exc
    if not isinstance(settings, dict):
        raise ServiceNotRoutable(f"the {ANNOTATION_FRONTEND} annotation is not a JSON object")
    return settings


def autoscale_settings(settings: Mapping[str, Any]) -> AutoscaleSettings:
    """The autoscaler's knobs from the annotation's ``autoScaler`` and ``numReplicas``."""
    try:
        scaler = settings["autoScaler"]
        return AutoscaleSettings(
            enabled=bool(scaler["autoscaleEnabled"]),
            min_replicas=int(scaler["minReplicas"]),
            max_replicas=int(scaler["maxReplicas"]),
            target_utilization=int(scaler["targetUtilization"]),
            refresh_seconds=float(scaler["refreshPeriodInSeconds"]),
            num_replicas=int(settings["numReplicas"] or 1),  # null: Azure ML's default of 1
        )
    except (KeyError, TypeError, ValueError, UserErrorException) as exc:
        raise ServiceNotRoutable(
            f"invalid autoscaling settings in {ANNOTATION_FRONTEND}: {_why(exc)}"
        ) from exc


def _why(exc: Exception) -> str:
    return f"{exc} is missing" if isinstance(exc, KeyError) else str(exc)


def auth_of(secret: Obj) -> AuthPolicy:
    """The auth policy in a keys Secret (``manifests.keys_secret``; the API returns base64 ``data``)."""
    encoded = secret.get("data") or {}
    try:
        values = {key: base64.b64decode(value).decode("utf-8") for key, value in encoded.items()}
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ServiceNotRoutable(f"the keys Secret cannot be decoded: {exc}") from exc
    mode = values.get("authMode", "")
    if mode not in _AUTH_MODES:
        raise ServiceNotRoutable(
            f"the keys Secret has authMode {mode!r}, not one of {', '.join(_AUTH_MODES)}"
        )
    try:
        named = parse_named_keys(values.get("namedKeys", ""))
    except (KeyError, TypeError, ValueError, UserErrorException) as exc:
        raise ServiceNotRoutable(f"the keys Secret's namedKeys is not valid: {_why(exc)}") from exc
    try:
        return auth_policy(
            mode, values.get("primaryKey"), values.get("secondaryKey"), values.get("tokenSecret", ""), named
        )
    except ValueError as exc:
        raise ServiceNotRoutable(f"the keys Secret's tokenSecret is not hex: {exc}") from exc


def scorer_port(pod: Obj) -> int:
    """The port the pod's ``scorer`` container declares as ``http`` (what a named targetPort would
    resolve to); the runtime's port when it declares none."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == SCORER_CONTAINER:
            for port in container.get("ports") or []:
                if port.get("name") == SCORER_PORT_NAME and port.get("containerPort"):
                    return int(port["containerPort"])
    return RUNTIME_PORT


def ready_replica(pod: Obj) -> ReplicaTarget | None:
    """The pod as a replica to send requests to, or ``None`` while it must get none.

    Ready means the kubelet reports the Ready condition True (the readiness probe on
    ``/health/ready`` passed), the pod has an IP, and it is not being deleted: a terminating pod
    gets no new request, while those in flight on it finish (the FrontEnd drains them).
    """
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip or _deleting(pod):
        return None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not ready:
        return None
    host = f"[{ip}]" if ":" in ip else ip  # IPv6 pod addresses go in brackets in a URL
    return ReplicaTarget(replica_id=pod["metadata"]["uid"], base_url=f"http://{host}:{scorer_port(pod)}")


def cluster_service(deployment: Obj, secret: Obj | None, pods: Iterable[Obj]) -> ClusterService:
    """One service from its Deployment, its keys Secret and its pods; raises :class:`ServiceNotRoutable`."""
    name = deployment["metadata"]["name"]
    settings = frontend_settings_of(deployment)
    if secret is None:
        # apply_service creates the Secret just after the Deployment; until then the auth the
        # service asked for is unknown, so it is not served at all.
        raise ServiceNotRoutable("its keys Secret does not exist (yet)")
    autoscale = autoscale_settings(settings)
    auth = auth_of(secret)
    replicas = tuple(
        sorted(
            (target for target in map(ready_replica, pods) if target is not None),
            key=lambda target: target.replica_id,
        )
    )
    try:
        route = service_route(name, auth, settings, replicas)
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceNotRoutable(f"invalid settings in {ANNOTATION_FRONTEND}: {_why(exc)}") from exc
    spec_replicas = (deployment.get("spec") or {}).get("replicas")
    return ClusterService(
        route=route,
        autoscale=autoscale,
        replicas=1 if spec_replicas is None else int(spec_replicas),  # the API's default
        uid=deployment["metadata"].get("uid", ""),
    )


def build_table(
    deployments: Iterable[Obj], secrets: Iterable[Obj], pods: Iterable[Obj]
) -> tuple[dict[str, ClusterService], dict[str, str]]:
    """(routable services by name, the reason each other service is left out).

    Objects are matched by their ``modelport.io/service`` label. A Deployment being deleted is
    no longer a service: its route goes at once, not when the garbage collector is done.
    """
    secret_of = {name: s for s in secrets if (name := service_name(s)) and not _deleting(s)}
    pods_of: dict[str, list[Obj]] = {}
    for pod in pods:
        name = service_name(pod)
        if name:
            pods_of.setdefault(name, []).append(pod)
    table: dict[str, ClusterService] = {}
    problems: dict[str, str] = {}
    for deployment in deployments:
        if _deleting(deployment):
            continue
        name = deployment["metadata"]["name"]
        try:
            table[name] = cluster_service(deployment, secret_of.get(name), pods_of.get(name, ()))
        except ServiceNotRoutable as exc:
            problems[name] = str(exc)
    return table, problems
