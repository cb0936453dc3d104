"""End to end on the real node: the product's Kubernetes target against kubelet, containerd and runc.

The target is attached with the real-node testbed's kubeconfig, the runtime image from the testbed
registry (front end and init container) and the front end's Service as a NodePort; the iris
service runs an image with scikit-learn built from ``modelport environment build-context`` on the
runtime image (buildah), pushed to the testbed registry. The workspace's artifact store is the
moto server listening inside the node's namespace, which the init container reaches at the node's
address. Every address used here exists only inside that namespace (conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret
from lightkube.resources.core_v1 import Service as KubeService

from modelport import Model
from modelport.compute.kubernetes import diagnose
from modelport.compute.kubernetes.build_context import write_build_context
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import WebserviceException
from modelport.registry.environment import Environment
from modelport.service import states
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.compute.kubernetes.realnode.conftest import RealNode, build_and_push, deploy
from tests.compute.kubernetes.test_serving_testbed import FAILING_INIT, IRIS_SCORE, SAMPLE
from tests.compute.kubernetes.testbed import image
from tests.servers import wait_until

pytestmark = [pytest.mark.k8s_node]

DEPLOY_TIMEOUT_S = 300
# Allocates about 1 GiB in init(): above the 256 MiB limit the OOM tests set.
GREEDY = """\
def init():
    global hog
    hog = bytearray(1024 * 1024 * 1024)


def run(raw_data):
    return len(hog)
"""
# Starts fine; each request allocates about 1 GiB in run(), in the scoring worker.
GREEDY_RUN = """\
def init():
    print("greedy run() ready", flush=True)


def run(raw_data):
    hog = bytearray(1024 * 1024 * 1024)
    return len(hog)
"""


def _iris_environment(reference: str) -> Environment:
    env = Environment("iris-env")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    env.python.conda_dependencies.add_pip_package("joblib")  # type: ignore[union-attr]
    env.docker.base_image = reference  # the image replicas of this environment run
    return env


@pytest.fixture(scope="module")
def iris_image(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The iris environment's image: its build context built on the runtime image, pushed to the
    testbed registry; returns the reference pods pull."""
    reference = f"{real_node.registry}/modelport/iris-env:1"
    context = tmp_path_factory.mktemp("iris-context")
    write_build_context(_iris_environment(reference), context, base_image=image.RUNTIME_NAME, force=True)
    build_and_push(real_node, "iris-env", context, reference)
    return reference


@pytest.mark.timeout(1500)
def test_iris_from_its_environment_image_is_served_through_the_node_port_front_end(
    cluster: tuple[Workspace, KubernetesTarget],
    iris_image: str,
    iris_file: Path,
    node_kube: Client,
    tmp_path: Path,
) -> None:
    ws, target = cluster
    model = Model.register(ws, str(iris_file), "iris")

    service = deploy(ws, "iris-svc", [model], IRIS_SCORE, tmp_path, environment=_iris_environment(iris_image))
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.state == states.HEALTHY
    front = node_kube.get(KubeService, "modelport-frontend", namespace=target.system_namespace)
    node_port = front.spec.ports[0].nodePort
    assert service.scoring_uri == f"http://10.77.0.1:{node_port}/api/v1/service/iris-svc/score"
    assert service.run(SAMPLE) == [0, 2]
    assert httpx.post(service.scoring_uri, json=SAMPLE).status_code == 401
    wrong = httpx.post(service.scoring_uri, json=SAMPLE, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    primary, _ = service.get_keys()
    scored = httpx.post(service.scoring_uri, json=SAMPLE, headers={"Authorization": f"Bearer {primary}"})
    assert scored.status_code == 200 and scored.json() == [0, 2]
    (pod,) = node_kube.list(Pod, namespace=target.namespace, labels={"modelport.io/service": "iris-svc"})
    assert pod.spec.containers[0].image == iris_image
    assert pod.status.containerStatuses[0].imageID.startswith(f"{iris_image.rsplit(':', 1)[0]}@sha256:")
    init_log = service.get_logs(init=True)
    assert "fetching 1 file(s)" in init_log and "azureml-models/iris/1/model.pkl" in init_log
    assert "iris model loaded" in service.get_logs()

    service.delete()

    for kind in (Deployment, KubeService, Secret, ConfigMap, Pod):
        left = [o.metadata.name for o in node_kube.list(kind, namespace=target.namespace)]
        assert not [n for n in left if n.startswith("iris-svc")], (kind, left)


@pytest.mark.timeout(900)
def test_a_replica_over_its_memory_limit_is_oom_killed_by_the_kernel(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cluster
    service = deploy(ws, "greedy", [], GREEDY, tmp_path, memory_gb=0.25, memory_gb_limit=0.25)

    with pytest.raises(WebserviceException):
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.error["code"] == states.OOM_KILLED
    service.delete()


@pytest.mark.timeout(900)
def test_a_run_past_the_memory_limit_is_answered_and_the_replica_restarts_oom_killed(
    cluster: tuple[Workspace, KubernetesTarget], node_kube: Client, tmp_path: Path
) -> None:
    ws, target = cluster
    service = deploy(ws, "greedy-run", [], GREEDY_RUN, tmp_path, memory_gb=0.25, memory_gb_limit=0.25)
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)
    primary, _ = service.get_keys()

    # The kernel kills the scoring worker (the process that allocates); the server answers for it.
    answer = httpx.post(
        service.scoring_uri, json=SAMPLE, headers={"Authorization": f"Bearer {primary}"}, timeout=120
    )

    assert answer.status_code == 502, answer.text
    assert "ran out of memory (limit 256 MiB)" in answer.json()["message"]

    def restarted_oom_killed() -> bool:
        pods = node_kube.list(Pod, namespace=target.namespace, labels={"modelport.io/service": "greedy-run"})
        statuses = [s for p in pods for s in (p.status.containerStatuses or [])]
        last = [s.lastState.terminated for s in statuses if s.lastState and s.lastState.terminated]
        return any(t.reason == "OOMKilled" and t.exitCode == 137 for t in last)

    wait_until(restarted_oom_killed, "the scorer restarted, recorded OOMKilled", DEPLOY_TIMEOUT_S, 0.5)
    service.update_deployment_state()
    assert service.error["code"] == states.OOM_KILLED
    service.delete()


@pytest.mark.timeout(900)
def test_an_init_that_raises_is_entry_script_init_failed_with_the_traceback_from_the_container(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cluster
    service = deploy(ws, "bad-init", [], FAILING_INIT, tmp_path)

    with pytest.raises(WebserviceException) as caught:
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.error["code"] == states.ENTRY_SCRIPT_INIT_FAILED
    evidence = next(d["message"] for d in service.error["details"] if d["code"] == "LogTail")
    assert "the model file is corrupt (raised on purpose by the test)" in evidence
    assert "EntryScriptInitFailed" in str(caught.value)
    service.delete()


@pytest.mark.timeout(900)
def test_an_image_that_does_not_exist_is_image_pull_back_off(
    real_node: RealNode, cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cluster
    env = Environment("missing-image")
    env.docker.base_image = f"{real_node.registry}/modelport/does-not-exist:1"

    service = deploy(ws, "no-image", [], FAILING_INIT, tmp_path, environment=env)
    with pytest.raises(WebserviceException):
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.error["code"] == diagnose.IMAGE_PULL_BACK_OFF
    service.delete()


@pytest.mark.timeout(900)
def test_doctor_passes_on_the_real_node(cluster: tuple[Workspace, KubernetesTarget], ws_folder: Path) -> None:
    result = modelport("doctor", "kubernetes", "-ct", "prod", "--path", str(ws_folder), "--timeout", "300")

    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["ok"] * 7, result.stdout
