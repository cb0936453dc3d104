"""Tier 0: reaching a cluster and validating attach options, without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.compute import targets
from modelport.compute.kubernetes.cluster import KubernetesTarget, connect, target_from_options
from modelport.errors import ComputeTargetException, UserErrorException

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: one, context: {cluster: c, user: u}}, {name: two, context: {cluster: c, user: u}}]
"""


def test_a_missing_kubeconfig_names_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ComputeTargetException, match=r"does not exist\. Fix: pass --kubeconfig PATH"):
        connect(KubernetesTarget(kubeconfig=str(tmp_path / "nope")))


def test_an_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    with pytest.raises(
        ComputeTargetException, match=r"context='three' is not in kubeconfig .*\(contexts: one, two\)"
    ):
        connect(KubernetesTarget(kubeconfig=str(path), context="three"))
    with pytest.raises(
        ComputeTargetException, match="has no current context. Fix: pass --context with one of: one, two"
    ):
        connect(KubernetesTarget(kubeconfig=str(path)))
    assert connect(KubernetesTarget(kubeconfig=str(path), context="two")) is not None


def test_in_cluster_credentials_outside_a_pod_are_refused_with_the_fix() -> None:
    with pytest.raises(ComputeTargetException, match="No in-cluster credentials here"):
        connect(KubernetesTarget(in_cluster=True))


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


def test_a_kubeconfig_naming_a_missing_certificate_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        KUBECONFIG.replace(
            "server: 'https://127.0.0.1:1'",
            f"server: 'https://127.0.0.1:1', certificate-authority: '{tmp_path / 'gone.crt'}'",
        )
    )
    with pytest.raises(
        ComputeTargetException, match=r"cannot load its credentials .*Fix: check the certificate"
    ):
        connect(KubernetesTarget(kubeconfig=str(path), context="one"))
