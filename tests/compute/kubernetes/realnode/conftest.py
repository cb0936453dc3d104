"""Fixtures of the real-node tier: one real-node testbed per session, this process inside its
network namespace.

``scripts/k8s-testbed start --real-node`` starts the control plane, containerd, kubelet,
kube-proxy and the registry inside a network namespace of their own (k8s/testbed/node.py). The
session then moves its main thread into that namespace (``netns.entered``): every client socket,
server (moto) and subprocess the tests make afterwards is there too, so the node, pod and Service
addresses the tests use exist only there. Teardown leaves the namespace and stops the testbed,
which checks that nothing is left behind.

Tests here are marked ``k8s_node`` and deselected unless ``MODELPORT_K8S_NODE=1`` (``make
test-k8s-node`` sets it); once selected, a node that cannot start fails them with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelport import Model
from modelport.compute.kubernetes.cluster import attach, detach
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.registry.environment import Environment
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace
from tests.compute.kubernetes.testbed import image, netns
from tests.servers import S3Server, s3_server

ROOT = Path(__file__).resolve().parents[4]
TESTBED = ROOT / "scripts" / "k8s-testbed"
# The first start may build the images (minutes, cold); `make test-k8s-node` builds them first.
START_DEADLINE_S = 1800


def run_testbed(*args: str | Path, timeout: float = START_DEADLINE_S) -> subprocess.CompletedProcess[str]:
    """Run scripts/k8s-testbed in the host's network namespace (it makes and removes its own)."""
    return subprocess.run(
        [sys.executable, str(TESTBED), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class RealNode:
    """A running real-node testbed, as its state file (DIR/node.json) describes it."""

    folder: Path
    state: dict[str, Any]
    outside: tuple[str, ...]  # runs a command back in the host's network namespace (image builds)

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (server on 127.0.0.1 of the namespace)."""
        return Path(self.state["kubeconfig"])

    @property
    def node_ip(self) -> str:
        """The node's address (on a dummy interface of the namespace)."""
        return str(self.state["nodeIP"])

    @property
    def registry(self) -> str:
        """The testbed registry, ``host:port``, plain HTTP."""
        return str(self.state["registry"])

    @property
    def runtime_image(self) -> str:
        """The runtime image (k8s/Dockerfile) as pushed to the testbed registry by ``start``."""
        return f"{self.registry}/modelport/runtime:0.1.0"


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    """The real-node testbed; the session's main thread runs inside its network namespace."""
    folder = tmp_path_factory.mktemp("real-node")
    started = run_testbed("start", "--real-node", "--dir", folder)
    assert started.returncode == 0, f"the real node did not start:\n{started.stderr[-8000:]}"
    state = json.loads((folder / "node.json").read_text())
    try:
        with netns.entered(state["netns"]) as outside:
            yield RealNode(folder, state, tuple(outside))
    finally:
        stopped = run_testbed("stop", "--dir", folder, timeout=300)
        assert stopped.returncode == 0, f"stop failed:\n{stopped.stderr}"


@pytest.fixture(scope="session")
def s3(real_node: RealNode) -> Iterator[S3Server]:
    """The S3-protocol server (moto), listening on every address of the node's namespace, so that
    pods reach it at the node's address; this process uses it on 127.0.0.1."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with s3_server(host="0.0.0.0") as server:
        yield server


@pytest.fixture(scope="session")
def node_kube(real_node: RealNode):  # type: ignore[no-untyped-def]
    """A lightkube client for the real-node testbed."""
    from lightkube import Client, KubeConfig

    client = Client(config=KubeConfig.from_file(real_node.kubeconfig))
    yield client
    client.close()


@pytest.fixture(scope="module")
def ws_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's workspace folder (the CLI finds the workspace there with --path)."""
    return tmp_path_factory.mktemp("ws")


@contextmanager
def attached_target(
    real_node: RealNode, s3: S3Server, ws_folder: Path, **options: Any
) -> Iterator[tuple[Workspace, KubernetesTarget]]:
    """A workspace on the S3 store with target ``prod`` attached to the real node (NodePort front
    end, the testbed's runtime image, ``options`` on top); its services are deleted and the target
    detached afterwards."""
    suffix = uuid.uuid4().hex[:8]
    ws = Workspace.create(
        "ws",
        path=ws_folder,
        artifact_url=f"s3://bucket-{suffix}/artifacts",
        storage_options=s3.storage_options(),
    )
    port = s3.endpoint_url.rsplit(":", 1)[1]
    target = KubernetesTarget(
        kubeconfig=str(real_node.kubeconfig),
        namespace=f"svc-{suffix}",
        system_namespace=f"sys-{suffix}",
        cluster_purpose="DevTest",
        image=real_node.runtime_image,
        frontend_service_type="NodePort",
        store_endpoint_url=f"http://{real_node.node_ip}:{port}",
        **options,
    )
    attach(ws, "prod", target)
    try:
        yield ws, target
    finally:
        for service in Webservice.list(ws):
            service.delete()
        detach(ws, "prod")


@pytest.fixture(scope="module")
def cluster(
    real_node: RealNode, s3: S3Server, ws_folder: Path
) -> Iterator[tuple[Workspace, KubernetesTarget]]:
    """A workspace on the S3 store, target ``prod`` attached to the real node with a NodePort front end."""
    with attached_target(real_node, s3, ws_folder) as attached:
        yield attached


def deploy(
    ws: Workspace,
    name: str,
    models: list[Model],
    script: str,
    tmp_path: Path,
    environment: Environment | None = None,
    **knobs: object,
) -> Webservice:
    """Deploy ``script`` with ``models`` to target ``prod`` (0.1 core, 256 MiB, one fixed replica
    unless ``knobs`` say otherwise); returns at once (follow with ``wait_for_deployment``)."""
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "score.py").write_text(script)
    config = KubernetesDeploymentConfig(
        **{
            "cpu_cores": 0.1,
            "memory_gb": 0.25,
            "autoscale_enabled": False,
            "num_replicas": 1,
            "compute_target_name": "prod",
            **knobs,
        }
    )
    inference = InferenceConfig(
        entry_script="score.py", source_directory=str(source), environment=environment
    )
    return Model.deploy(ws, name, models, inference, config)


def build_and_push(real_node: RealNode, kind: str, context: Path, reference: str) -> None:
    """Build the build context ``context`` (its Dockerfile ``FROM`` the runtime image) with buildah,
    cached by its files, where the package index is reachable; push it to ``reference``."""
    files = sorted(p for p in context.rglob("*") if p.is_file())
    local_name = f"localhost/modelport/{kind}:testbed"
    archive = image.build_from_dockerfile(
        kind,
        context,
        context / "Dockerfile",
        local_name,
        (image.runtime_image(), image.RUNTIME_NAME),
        [str(p.relative_to(context)).encode() + b"\0" + p.read_bytes() for p in files],
        prefix=real_node.outside,
    )
    image.push(archive, local_name, reference, ())
