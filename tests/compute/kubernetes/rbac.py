"""Asking the testbed's real RBAC authorizer what a service account may do."""

from __future__ import annotations

from lightkube import Client
from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SubjectAccessReview


def can(kube: Client, service_account: str, verb: str, resource: str, space: str, **extra: str) -> bool:
    """Whether ``namespace:name`` service account may ``verb`` ``resource`` in ``space``."""
    review = SubjectAccessReview(
        spec=SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{service_account}",
            groups=["system:serviceaccounts"],
            resourceAttributes=ResourceAttributes(verb=verb, resource=resource, namespace=space, **extra),
        )
    )
    return bool(kube.create(review).status.allowed)
