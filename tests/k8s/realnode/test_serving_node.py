"""End to end on the real node: the product's Kubernetes target against kubelet, containerd and runc.

The target is attached with the real-node testbed's kubeconfig, the runtime image from the testbed
registry (front end and init container) and the front end's Service as a NodePort; the iris
service runs an image with scikit-learn built from ``modelport environment build-context`` on the
runtime image (buildah), pushed to the testbed registry. The workspace's artifact store is the
moto server listening inside the node's namespace, which the init container reaches at the node's
address. Every address used here exists only inside that namespace (conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret
from lightkube.resources.core_v1 import Service as KubeService

from modelport.compute.kubernetes import diagnose
from modelport.compute.kubernetes.build_context import write_build_context
from modelport.compute.kubernetes.cluster import KubernetesTarget, attach, detach
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.errors import WebserviceException
from modelport.registry.environment import Environment
from modelport.registry.model import Model
from modelport.service import states
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.k8s.realnode.conftest import RealNode
from tests.k8s.test_serving_testbed import FAILING_INIT, IRIS_SCORE, SAMPLE
from tests.k8s.testbed import image
from tests.servers import S3Server

pytestmark = [pytest.mark.k8s_node]

DEPLOY_TIMEOUT_S = 300
# Allocates about 1 GiB in init(): above the 256 MiB limit the OOM test sets. (In run() the kernel
# kills the scoring worker, not the container's main process: see the OOM test.)
GREEDY = """\
def init():
    global hog
    hog = bytearray(1024 * 1024 * 1024)


def run(raw_data):
    return len(hog)
"""


@pytest.fixture(scope="module")
def iris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn classifier trained on the bundled iris data, pickled."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    path = tmp_path_factory.mktemp("iris") / "model.pkl"
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), path)
    return path


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
    files = sorted(p for p in context.iterdir() if p.is_file())
    archive = image.build_from_dockerfile(
        "iris-env",
        context,
        context / "Dockerfile",
        "localhost/modelport/iris-env:testbed",
        (image.runtime_image(), image.RUNTIME_NAME),
        [p.name.encode() + b"\0" + p.read_bytes() for p in files],
        prefix=real_node.outside,
    )
    image.push(archive, "localhost/modelport/iris-env:testbed", reference, ())
    return reference


@pytest.fixture(scope="module")
def ws_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's workspace folder (the CLI finds the workspace there with --path)."""
    return tmp_path_factory.mktemp("ws")


@pytest.fixture(scope="module")
def cluster(
    real_node: RealNode, s3: S3Server, ws_folder: Path
) -> Iterator[tuple[Workspace, KubernetesTarget]]:
    """A workspace on the S3 store, target ``prod`` attached to the real node with a NodePort front end."""
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
    )
    attach(ws, "prod", target)
    try:
        yield ws, target
    finally:
        for service in Webservice.list(ws):
            service.delete()
        detach(ws, "prod")


def _deploy(
    ws: Workspace,
    name: str,
    models: list[Model],
    script: str,
    tmp_path: Path,
    environment: Environment | None = None,
    **knobs: object,
) -> Webservice:
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

    service = _deploy(
        ws, "iris-svc", [model], IRIS_SCORE, tmp_path, environment=_iris_environment(iris_image)
    )
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
    service = _deploy(ws, "greedy", [], GREEDY, tmp_path, memory_gb=0.25, memory_gb_limit=0.25)

    with pytest.raises(WebserviceException):
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.error["code"] == states.OOM_KILLED
    service.delete()


@pytest.mark.timeout(900)
def test_an_init_that_raises_is_entry_script_init_failed_with_the_traceback_from_the_container(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cluster
    service = _deploy(ws, "bad-init", [], FAILING_INIT, tmp_path)

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

    service = _deploy(ws, "no-image", [], FAILING_INIT, tmp_path, environment=env)
    with pytest.raises(WebserviceException):
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)

    assert service.error["code"] == diagnose.IMAGE_PULL_BACK_OFF
    service.delete()


@pytest.mark.timeout(900)
def test_doctor_passes_on_the_real_node(cluster: tuple[Workspace, KubernetesTarget], ws_folder: Path) -> None:
    result = modelport("doctor", "kubernetes", "-ct", "prod", "--path", str(ws_folder), "--timeout", "300")

    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["ok"] * 7, result.stdout
