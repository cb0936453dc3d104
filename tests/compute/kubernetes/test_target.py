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


def test_front_end_replicas_follow_the_cluster_purpose_unless_set() -> None:
    assert target_from_options().frontend_replica_count() == 3  # FastProd, the default purpose
    assert target_from_options(cluster_purpose="DevTest").frontend_replica_count() == 1
    assert target_from_options(cluster_purpose="DevTest", frontend_replicas=2).frontend_replica_count() == 2
    assert target_from_options(frontend_replicas=1).frontend_replica_count() == 1
    for bad in (0, 11):
        with pytest.raises(UserErrorException, match=rf"frontend_replicas={bad}: .*must be in 1..10"):
            target_from_options(frontend_replicas=bad)


@pytest.mark.parametrize("name", ["ab", "1prod", "prod-", "a" * 25, "local", "amlcompute"])
def test_compute_target_names_follow_azure_mls_rule(name: str) -> None:
    with pytest.raises(UserErrorException):
        targets.check_target_name(name)
    assert targets.check_target_name("prod-aks1") == "prod-aks1"
