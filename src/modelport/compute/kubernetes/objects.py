"""What every Kubernetes object modelport writes has in common, as plain JSON-ready dicts.

The field manager that owns them, the labels that mark them as modelport's, their metadata, the
owner references that let one object's deletion remove the others, and how a list of them is
searched. :mod:`~modelport.compute.kubernetes.manifests` (a service's objects) and
:mod:`~modelport.compute.kubernetes.frontend_manifests` (what attach installs) build on these;
nothing here talks to a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Manifest = dict[str, Any]

FIELD_MANAGER = "modelport"
DEFAULT_IMAGE = "modelport/runtime:0.1.0"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
# The reason of the Events the in-cluster front end writes on a Deployment it scales.
AUTOSCALE_EVENT_REASON = "Autoscale"
# The characters of a ReplicaSet's pod-template hash and of a pod's random suffix (Kubernetes'
# SafeEncodeString alphabet): no vowels, no 0, 1 or 3.
_GENERATED = "[bcdfghjklmnpqrstvwxz2456789]"


def object_meta(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ``metadata`` of a namespaced object: its name, namespace and labels."""
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def shared_secret(name: str, namespace: str, values: Mapping[str, str]) -> Manifest:
    """A Secret every service of the namespace shares (artifact credentials, package index), its
    values handed to containers as environment variables (``envFrom``)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(name, namespace, {LABEL_MANAGED_BY: FIELD_MANAGER}),
        "type": "Opaque",
        "stringData": dict(values),
    }


def pull_secret(name: str, namespace: str, docker_config_json: str) -> Manifest:
    """A ``kubernetes.io/dockerconfigjson`` Secret every service of the namespace pulls images with."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(name, namespace, {LABEL_MANAGED_BY: FIELD_MANAGER}),
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": docker_config_json},
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


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one manifest of ``kind`` (and ``name``) in ``manifests``."""
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def service_object_name(service: str) -> re.Pattern[str]:
    """The names of a service's Deployment (``NAME``), ReplicaSets (``NAME-HASH``) and pods
    (``NAME-HASH-SUFFIX``), which is how Events name what they are about (they carry no labels)."""
    return re.compile(rf"{re.escape(service)}(-{_GENERATED}{{6,10}}(-{_GENERATED}{{5}})?)?")
