"""The real node itself: Ready, pulls the runtime image from the testbed registry, runs it in a
container with a pod address, serves logs through the API server, and leaves nothing behind when
stopped (a second testbed, started and stopped by the test)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Pod

from tests.k8s.realnode.conftest import RealNode, run_testbed
from tests.k8s.testbed import netns, node
from tests.servers import wait_until

pytestmark = [pytest.mark.k8s_node]


def _run_pod(kube: Client, namespace: str, image: str, command: list[str]) -> Pod:
    kube.create(Namespace(metadata=ObjectMeta(name=namespace)))
    pod = Pod(
        metadata=ObjectMeta(name="probe", namespace=namespace),
        spec=PodSpec(
            restartPolicy="Never",
            automountServiceAccountToken=False,
            containers=[Container(name="probe", image=image, imagePullPolicy="Always", command=command)],
        ),
    )
    kube.create(pod)

    def finished() -> bool:
        phase = kube.get(Pod, "probe", namespace=namespace).status.phase
        assert phase != "Failed", kube.get(Pod, "probe", namespace=namespace).status
        return phase == "Succeeded"

    wait_until(finished, "the pod from the runtime image ran", deadline_s=240)
    return kube.get(Pod, "probe", namespace=namespace)


@pytest.mark.timeout(900)
def test_the_node_is_ready_and_runs_the_runtime_image_pulled_from_the_registry(
    real_node: RealNode, node_kube: Client
) -> None:
    (found,) = node_kube.list(Node)
    assert found.metadata.name == node.NODE_NAME
    assert found.status.nodeInfo.kubeletVersion == "v1.20.2"
    assert found.status.nodeInfo.containerRuntimeVersion.startswith("containerd://1.6")
    assert {a.type: a.address for a in found.status.addresses}["InternalIP"] == real_node.node_ip
    assert not found.spec.taints

    namespace = f"n-{uuid.uuid4().hex[:8]}"
    script = (
        "import modelport, lightkube, socket; print('runtime', modelport.__version__, socket.gethostname())"
    )
    pod = _run_pod(node_kube, namespace, real_node.runtime_image, ["python", "-c", script])

    (status,) = pod.status.containerStatuses
    # Pulled from the testbed registry (imagePullPolicy Always), so the image ID is its digest there.
    assert status.imageID.startswith(f"{real_node.registry}/modelport/runtime@sha256:")
    assert pod.status.podIP.startswith("10.88.0.")
    log = "".join(node_kube.log("probe", namespace=namespace))
    assert log.strip() == "runtime 0.1.0 probe"
    node_kube.delete(Namespace, namespace)


@pytest.mark.timeout(900)
def test_stop_leaves_no_namespace_process_cgroup_mount_or_container(
    real_node: RealNode, tmp_path: Path
) -> None:
    folder = tmp_path / "second"
    started = run_testbed("start", "--real-node", "--dir", folder)
    assert started.returncode == 0, started.stderr[-6000:]
    state = json.loads((folder / "node.json").read_text())
    name = state["netns"]
    with netns.entered(name):
        client = Client(config=KubeConfig.from_file(state["kubeconfig"]))
        pod = _run_pod(client, "leftovers", f"{state['registry']}/modelport/runtime:0.1.0", ["true"])
        assert pod.status.phase == "Succeeded"
        client.close()
    assert netns.pids_inside(name)  # the node runs until stop

    stopped = run_testbed("stop", "--dir", folder, timeout=300)

    assert stopped.returncode == 0, stopped.stderr
    assert not netns.exists(name) and netns.pids_inside(name) == []
    assert list(Path("/sys/fs/cgroup").glob(f"*/{node.cgroup_root_name(name)}")) == []
    assert str(folder) not in Path("/proc/self/mountinfo").read_text()
    assert not (folder / "node.json").exists()
    # Nothing of the stopped testbed runs: no process has the folder on its command line.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(folder).encode() not in cmdline.read_bytes(), cmdline
        except OSError:
            continue
