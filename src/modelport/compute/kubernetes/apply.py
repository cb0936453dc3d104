"""Server-side apply of modelport's manifests, in the order that makes owner references work.

Requires the ``kubernetes`` extra (lightkube). Every object is applied with field manager
``modelport`` and ``force=True``: modelport owns the fields it writes, and a conflict with a
person's ``kubectl edit`` resolves in favour of the deployed configuration, as a redeploy should.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelport.compute.kubernetes.objects import FIELD_MANAGER, Manifest, owner_reference, with_owner
from modelport.errors import ComputeTargetException


def _lightkube() -> Any:
    try:
        from lightkube import codecs
    except ImportError as exc:  # the extra is not installed
        raise ComputeTargetException(
            "The Kubernetes target needs the lightkube client. Fix: pip install 'modelport[kubernetes]'."
        ) from exc
    # Loading a policy/v1beta1 manifest needs its resource class registered first (see below).
    disruption_budget_resource("policy/v1beta1")
    return codecs


def disruption_budget_resource(api_version: str) -> Any:
    """The lightkube resource class of PodDisruptionBudget at ``api_version``."""
    if api_version == "policy/v1":
        from lightkube.resources.policy_v1 import PodDisruptionBudget

        return PodDisruptionBudget
    from lightkube.generic_resource import create_namespaced_resource

    # lightkube's models start at policy/v1; older servers (< 1.21) only offer v1beta1.
    return create_namespaced_resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")


def apply(client: Any, manifest: Manifest) -> Any:
    """Server-side apply of one manifest; returns the object as the server stored it."""
    codecs = _lightkube()
    return client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)


def apply_service(client: Any, manifests: Sequence[Manifest]) -> dict[str, Any]:
    """Apply a service's objects: the Deployment first, then the rest owned by it.

    The owner reference needs the Deployment's uid, which exists only once it is applied; pods
    started in between wait for their ConfigMaps and Secret, which the kubelet retries.
    Returns the applied objects by ``Kind/name``.
    """
    if not manifests or manifests[0]["kind"] != "Deployment":
        raise ValueError("a service's manifests start with its Deployment")
    deployment = apply(client, manifests[0])
    owner = owner_reference(manifests[0], deployment.metadata.uid)
    applied = {f"Deployment/{deployment.metadata.name}": deployment}
    for manifest in manifests[1:]:
        obj = apply(client, with_owner(manifest, owner))
        applied[f"{manifest['kind']}/{obj.metadata.name}"] = obj
    return applied


def apply_all(client: Any, manifests: Sequence[Manifest]) -> list[Any]:
    """Apply objects in the given order (attach: namespaces first); returns what the server stored."""
    return [apply(client, manifest) for manifest in manifests]
