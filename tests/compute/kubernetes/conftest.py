"""Fixtures of the Kubernetes tier: one control plane per session, a fresh namespace per test.

Tests marked ``k8s`` are deselected unless ``MODELPORT_K8S_BIN`` names the testbed binaries
(``make test-k8s`` builds them and sets it), so ``make test`` never needs the testbed. Once it is
set, a control plane that cannot start fails the tests; it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compute.kubernetes.testbed import ControlPlane, bin_dir_from_env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the Kubernetes tiers out of runs that have no testbed (``k8s``: no control-plane
    binaries; ``k8s_node``: not asked for with MODELPORT_K8S_NODE=1, see
    tests/compute/kubernetes/realnode)."""
    markers = []
    if bin_dir_from_env() is None:
        markers.append("k8s")
    if os.environ.get("MODELPORT_K8S_NODE") != "1":
        markers.append("k8s_node")
    deselected = [item for item in items if any(item.get_closest_marker(m) for m in markers)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = {id(item) for item in deselected}
        items[:] = [item for item in items if id(item) not in dropped]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler 1.20.2 on loopback, per session."""
    bin_dir = bin_dir_from_env()
    assert bin_dir is not None, "MODELPORT_K8S_BIN is not set; run `make test-k8s`"
    plane = ControlPlane(bin_dir, tmp_path_factory.mktemp("k8s")).start()
    print(f"\ncontrol plane ready in {plane.start_seconds:.1f} s at {plane.server}")
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane):  # type: ignore[no-untyped-def]
    """A lightkube client for the testbed, applying as field manager ``modelport``."""
    from lightkube import Client, KubeConfig

    from modelport.compute.kubernetes.objects import FIELD_MANAGER

    client = Client(config=KubeConfig.from_file(control_plane.kubeconfig), field_manager=FIELD_MANAGER)
    yield client
    client.close()


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane, kube):  # type: ignore[no-untyped-def]
    """A simulated Ready node: scheduled pods become Running and Ready (no container runs), except in
    namespaces labelled for process runs (``tests.compute.kubernetes.node.run_processes_in``), where
    they run."""
    from lightkube import Client, KubeConfig

    from tests.compute.kubernetes.node import SimulatedNode

    simulated = SimulatedNode(
        lambda: Client(config=KubeConfig.from_file(control_plane.kubeconfig)), api_server=control_plane.server
    ).start(kube)
    yield simulated
    simulated.stop()
    assert simulated.errors == []


@pytest.fixture
def namespace(kube) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace; removed (asynchronously, by the namespace controller) afterwards."""
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    kube.delete(Namespace, name)


@pytest.fixture(scope="module")
def iris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn classifier trained on the bundled iris data, pickled (simulated and real node tests)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    path = tmp_path_factory.mktemp("iris") / "model.pkl"
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), path)
    return path
