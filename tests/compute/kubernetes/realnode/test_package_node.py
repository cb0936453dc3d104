"""``Model.package`` on the real node, both forms. With ``generate_dockerfile=True`` the saved build
context is built by buildah on the runtime image and pushed to the testbed registry by the test;
with ``generate_dockerfile=False`` ``Model.package`` builds and pushes it itself (buildah, the
builder this machine has, with vfs storage and chroot isolation set through buildah's own
variables) to the registry of a target attached with ``--registry``. Either image is pulled by the
kubelet and run by containerd as a bare Pod with the image's own command (no modelport manifests:
the image alone must serve), then scored at the pod's address inside the node's namespace.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from lightkube import Client
from lightkube.models.core_v1 import Container, HTTPGetAction, PodSpec, Probe
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from modelport import Model
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.config.inference import InferenceConfig
from modelport.registry.environment import Environment
from modelport.workspace import Workspace
from tests.compute.kubernetes.realnode.conftest import RealNode, attached_target, build_and_push
from tests.compute.kubernetes.test_serving_testbed import IRIS_SCORE, SAMPLE
from tests.compute.kubernetes.testbed import image
from tests.servers import S3Server, wait_until

pytestmark = [pytest.mark.k8s_node]

READY_DEADLINE_S = 300


# Reads the model's bytes: needs no package the runtime image lacks, so the image build installs
# nothing (the node's namespace reaches no package index).
SIZE_SCORE = """\
import os


def init():
    global size
    size = os.path.getsize(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
    print("model size read", flush=True)


def run(raw_data):
    return size
"""


def _ready(kube: Client, name: str, namespace: str) -> bool:
    pod = kube.get(Pod, name, namespace=namespace)
    waiting = [s.state.waiting for s in pod.status.containerStatuses or [] if s.state and s.state.waiting]
    if waiting and waiting[0].reason in ("ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"):
        raise AssertionError(f"the package's pod cannot run: {waiting[0].reason}: {waiting[0].message}")
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


@pytest.mark.timeout(1500)
def test_a_saved_package_builds_with_buildah_and_serves_as_a_pod_on_the_node(
    real_node: RealNode,
    cluster: tuple[Workspace, KubernetesTarget],
    iris_file: Path,
    node_kube: Client,
    tmp_path: Path,
) -> None:
    ws, target = cluster
    model = Model.register(ws, str(iris_file), "iris")
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text(IRIS_SCORE)
    env = Environment("iris-package-env")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    env.python.conda_dependencies.add_pip_package("joblib")  # type: ignore[union-attr]
    env.docker.base_image = image.RUNTIME_NAME  # the runtime image as buildah's storage names it
    config = InferenceConfig(entry_script="score.py", source_directory=str(source), environment=env)

    package = Model.package(
        ws, [model], config, generate_dockerfile=True, image_name="modelport/iris-package"
    )
    package.wait_for_creation(show_output=True)
    context = tmp_path / "context"
    package.save(context)

    reference = f"{real_node.registry}/modelport/iris-package:{uuid.uuid4().hex[:8]}"
    build_and_push(real_node, "iris-package", context, reference)

    assert _serve(node_kube, reference, target.namespace, "iris-package", SAMPLE) == [0, 2]


def _serve(kube: Client, reference: str, namespace: str, name: str, sample: object) -> object:
    """Run ``reference`` as a bare Pod with its own command; once Ready, score ``sample`` at it."""
    probe = Probe(httpGet=HTTPGetAction(path="/health/ready", port=5001), periodSeconds=1)
    pod = Pod(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=PodSpec(
            containers=[Container(name="package", image=reference, readinessProbe=probe)],
            automountServiceAccountToken=False,
        ),
    )
    kube.create(pod)
    try:
        wait_until(lambda: _ready(kube, name, namespace), "the package's pod to be Ready", READY_DEADLINE_S)
        address = kube.get(Pod, name, namespace=namespace).status.podIP
        reply = httpx.post(f"http://{address}:5001/score", json=sample, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()
    finally:
        kube.delete(Pod, name, namespace=namespace, grace_period=0)


@pytest.mark.timeout(1500)
def test_model_package_builds_and_pushes_to_the_targets_registry_itself(
    real_node: RealNode,
    s3: S3Server,
    iris_file: Path,
    node_kube: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = image.cache_dir() / "package-buildah"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{folder / "root"}"\nrunroot = "{folder / "run"}"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(folder / "storage.conf"))
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text(SIZE_SCORE)
    env = Environment("size-env")
    env.python.user_managed_dependencies = True  # the runtime image's Python as it is
    config = InferenceConfig(entry_script="score.py", source_directory=str(source), environment=env)
    options = {"registry": real_node.registry, "registry_insecure": True}
    with attached_target(real_node, s3, tmp_path / "ws", **options) as (ws, target):
        model = Model.register(ws, str(iris_file), "iris")

        package = Model.package(
            ws, [model], config, image_name="modelport/size", image_label=uuid.uuid4().hex[:8]
        )
        package.wait_for_creation(show_output=True)

        assert package.state == "Succeeded" and package.location is not None
        assert package.location.startswith(f"{real_node.registry}/modelport/size:")
        assert "Pushed " in package.get_logs()
        served = _serve(node_kube, package.location, target.namespace, "size-package", {"data": []})
        assert served == iris_file.stat().st_size
