"""Image mode on the real node: an environment's image built with buildah, pushed to the testbed
registry, pulled by the kubelet.

The deploy finds the registry without the environment's tag, builds the image on the runtime
image (buildah, the builder this machine has: vfs storage and chroot isolation, set through
buildah's own variables), installs scikit-learn from the package index served inside the
testbed's namespace (the target's --index-url, passed to the build), pushes it over plain HTTP
and runs it; a second `environment build-image` finds the tag and builds nothing. The registry
accepts any credentials: the pull Secret is checked as the API server validates it and as the
pods reference it, not as a registry would refuse it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport import Model
from modelport.compute.imagebuild import environment_image_reference
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.registry.environment import Environment
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.compute.kubernetes.realnode.conftest import RealNode, attached_target, deploy
from tests.compute.kubernetes.test_serving_testbed import IRIS_SCORE, SAMPLE
from tests.compute.kubernetes.testbed import image
from tests.compute.kubernetes.wheel_index import served, wheelhouse
from tests.servers import S3Server

pytestmark = pytest.mark.k8s_node

PASSWORD_VARIABLE = "MODELPORT_TEST_REGISTRY_PASSWORD"


@pytest.fixture(scope="module")
def buildah_settings(real_node: RealNode) -> Iterator[None]:
    """buildah as the testbed runs it (vfs storage in the testbed's cache, chroot isolation), set
    through the variables buildah reads, so that modelport runs plain `buildah`."""
    folder = image.cache_dir() / "image-mode-buildah"
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{folder / "root"}"\nrunroot = "{folder / "run"}"\n'
    )
    settings = {
        "CONTAINERS_STORAGE_CONF": str(conf),
        "BUILDAH_ISOLATION": "chroot",
        PASSWORD_VARIABLE: "s3cret",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def image_cluster(
    real_node: RealNode, s3: S3Server, ws_folder: Path, buildah_settings: None
) -> Iterator[tuple[Workspace, KubernetesTarget]]:
    """Target ``prod`` in image mode, pushing to the testbed registry; the build installs from the
    namespace's package index."""
    with served(wheelhouse(["scikit-learn"], real_node.outside), real_node.node_ip) as index:
        options: dict[str, Any] = {
            "env_mode": "image",
            "registry": f"{real_node.registry}/imagemode",
            "registry_insecure": True,
            "registry_username": "robot",
            "registry_password": f"${{{PASSWORD_VARIABLE}}}",
            "package_index_url": index,
            "trusted_hosts": (real_node.node_ip,),
        }
        with attached_target(real_node, s3, ws_folder, **options) as attached:
            yield attached


@pytest.mark.timeout(2400)
def test_image_mode_builds_pushes_and_the_kubelet_pulls_the_environment_image(
    image_cluster: tuple[Workspace, KubernetesTarget],
    ws_folder: Path,
    iris_file: Path,
    node_kube: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lightkube.resources.core_v1 import Pod, Secret

    ws, target = image_cluster
    env = Environment("iris-image")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    env = env.register(ws)
    reference = environment_image_reference(target.registry or "", env, target.image)
    model = Model.register(ws, str(iris_file), "iris")

    service = deploy(ws, "image-svc", [model], IRIS_SCORE, tmp_path, environment=env)
    built = capsys.readouterr().err
    assert f"Building {reference}" in built and "with buildah" in built
    assert "STEP" in built and "scikit-learn" in built and f"Pushed {reference}." in built
    service.wait_for_deployment(timeout_sec=600)
    assert service.run(SAMPLE) == [0, 2]

    (pod,) = node_kube.list(Pod, namespace=target.namespace, labels={"modelport.io/service": "image-svc"})
    assert pod.spec.containers[0].image == reference
    assert [c.name for c in pod.spec.initContainers] == ["fetch-models"]  # no node-cache init container
    assert [s.name for s in pod.spec.imagePullSecrets] == ["modelport-registry"]
    assert pod.status.containerStatuses[0].imageID.startswith(f"{reference.rsplit(':', 1)[0]}@sha256:")
    secret = node_kube.get(Secret, "modelport-registry", namespace=target.namespace)
    assert secret.type == "kubernetes.io/dockerconfigjson"

    again = modelport(
        "environment", "build-image", "iris-image", "--target", "prod", "--path", str(ws_folder), "-o", "json"
    )
    assert "already has" in again.stderr and "not building it again" in again.stderr
    summary = json.loads(again.stdout)
    assert (summary["image"], summary["built"]) == (reference, False)
