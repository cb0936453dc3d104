"""Tier 0: validating a Kubernetes target's name and attach options, without a cluster."""

from __future__ import annotations

import pytest

from modelport.compute import targets
from modelport.compute.kubernetes.target import target_from_options
from modelport.errors import UserErrorException


def test_attach_options_are_validated_with_field_and_value() -> None:
    with pytest.raises(UserErrorException, match=r"namespace='Bad_NS': .*not a valid namespace name"):
        target_from_options(namespace="Bad_NS")
    with pytest.raises(UserErrorException, match=r"cluster_purpose='Prod'"):
        target_from_options(cluster_purpose="Prod")
    with pytest.raises(UserErrorException, match=r"progress_deadline_s=5: .*at least 10 seconds"):
        target_from_options(progress_deadline_s=5)
    assert target_from_options(namespace=None).namespace == "modelport-services"


@pytest.mark.parametrize("name", ["ab", "1prod", "prod-", "a" * 25, "local", "amlcompute"])
def test_compute_target_names_follow_azure_mls_rule(name: str) -> None:
    with pytest.raises(UserErrorException):
        targets.check_target_name(name)
    assert targets.check_target_name("prod-aks1") == "prod-aks1"
