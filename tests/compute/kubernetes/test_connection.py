"""Tier 0: reaching a cluster (kubeconfig, context, credentials), without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.compute.kubernetes.connection import connect
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import ComputeTargetException

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
