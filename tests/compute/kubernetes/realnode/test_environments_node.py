"""Environments on the real node: a service's packages reach its pods from the node cache.

The package index the pods install from is served inside the testbed's network namespace
(wheel_index.py): nothing outside the namespace is reached by a pod.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelport import Model
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.compute.local.driver import LocalDriver
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import WebserviceException
from modelport.registry.environment import Environment
from modelport.workspace import Workspace
from tests.compute.kubernetes.realnode.conftest import RealNode, attached_target, deploy
from tests.compute.kubernetes.test_serving_testbed import IRIS_SCORE, SAMPLE
from tests.compute.kubernetes.wheel_index import Gate, probe_wheel, served, wheelhouse
from tests.servers import S3Server

pytestmark = pytest.mark.k8s_node


PROBE = "modelport-gate-probe"


@pytest.fixture(scope="module")
def probe_gate() -> Gate:
    """Holds the downloads of the probe package (served by the package index) until released."""
    return Gate(PROBE)


@pytest.fixture(scope="module")
def package_index(
    real_node: RealNode, probe_gate: Gate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The simple index URL pods install from (``http://<node>:<port>/simple/``): scikit-learn and
    modelport's runtime with their dependencies, and the probe package behind ``probe_gate``."""
    probe = probe_wheel(tmp_path_factory.mktemp("probe"), PROBE)
    house = wheelhouse(["scikit-learn"], real_node.outside)
    with served(house, real_node.node_ip, extra=[probe], gate=probe_gate) as url:
        yield url


@pytest.fixture(scope="module")
def cached_cluster(
    real_node: RealNode, s3: S3Server, package_index: str, ws_folder: Path
) -> Iterator[tuple[Workspace, KubernetesTarget]]:
    """Target ``prod`` whose pods install environments from the namespace's package index."""
    # The node is this machine: the cache stays in the testbed's folder.
    options = {"env_cache": str(real_node.folder / "envs"), "package_index_url": package_index}
    with attached_target(real_node, s3, ws_folder, **options) as attached:
        yield attached


def _sklearn_environment(name: str, *pip: str) -> Environment:
    env = Environment(name)
    for package in pip or ("scikit-learn",):
        env.python.conda_dependencies.add_pip_package(package)  # type: ignore[union-attr]
    return env


def _init_seconds(node_kube: Any, namespace: str, service: str) -> float:
    """How long the newest pod's environment init container ran."""
    from lightkube.resources.core_v1 import Pod

    (pod,) = node_kube.list(Pod, namespace=namespace, labels={"modelport.io/service": service})
    (status,) = [s for s in pod.status.initContainerStatuses if s.name == "environment"]
    done = status.state.terminated
    return (done.finishedAt - done.startedAt).total_seconds() if isinstance(done.startedAt, datetime) else 0.0


@pytest.mark.timeout(1800)
def test_an_environment_is_built_once_per_node_and_reused(
    cached_cluster: tuple[Workspace, KubernetesTarget], iris_file: Path, node_kube: Any, tmp_path: Path
) -> None:
    ws, target = cached_cluster
    model = Model.register(ws, str(iris_file), "iris")
    env = _sklearn_environment("iris-cached")
    started = time.monotonic()
    first = deploy(ws, "cached-a", [model], IRIS_SCORE, tmp_path, environment=env)
    first.wait_for_deployment(timeout_sec=1200)
    cold = time.monotonic() - started
    assert first.run(SAMPLE) == [0, 2]
    first_log = first.get_logs(init=True)
    assert "(environment) ---" in first_log and "Building environment 'iris-cached'" in first_log
    assert "Installing" in first_log and "scikit-learn" in first_log
    started = time.monotonic()
    second = deploy(ws, "cached-b", [model], IRIS_SCORE, tmp_path, environment=env)
    second.wait_for_deployment(timeout_sec=600)
    warm = time.monotonic() - started
    assert second.run(SAMPLE) == [0, 2]
    assert "is already built" in second.get_logs(init=True)
    cold_init = _init_seconds(node_kube, target.namespace, "cached-a")
    warm_init = _init_seconds(node_kube, target.namespace, "cached-b")
    print(
        f"deploy -> Healthy: cold cache {cold:.1f} s, warm {warm:.1f} s; init {cold_init} s / {warm_init} s"
    )
    assert warm_init <= cold_init


@pytest.mark.timeout(1200)
def test_two_pods_building_one_environment_at_once_build_it_once(
    cached_cluster: tuple[Workspace, KubernetesTarget], probe_gate: Gate, node_kube: Any, tmp_path: Path
) -> None:
    """Two services with one new environment start together; the index holds the probe package's
    download while the first pod builds, until the second pod is seen waiting on the lock. Then
    one pod has built and the other reused the build (the lock + rename of envbuild.py)."""
    ws, target = cached_cluster
    env = _sklearn_environment("race-env", PROBE)
    script = "import modelport_gate_probe\n\n\ndef init():\n    pass\n\n\ndef run(raw):\n    return raw\n"
    services = [deploy(ws, name, [], script, tmp_path, environment=env) for name in ("race-a", "race-b")]

    deadline = time.monotonic() + 600
    while not (probe_gate.requested.is_set() and _both_locking(node_kube, target.namespace)):
        assert time.monotonic() < deadline, "the two pods never built the environment at once"
        time.sleep(1)
    probe_gate.release()

    logs = []
    for service in services:
        service.wait_for_deployment(timeout_sec=600)
        assert service.run("{}") == "{}"
        logs.append(service.get_logs(init=True))
    built = [log for log in logs if "Building environment 'race-env'" in log]
    reused = [log for log in logs if "was built meanwhile by another process" in log]
    assert len(built) == 1 and len(reused) == 1, logs
    for service in services:
        service.delete()


def _both_locking(node_kube: Any, namespace: str) -> bool:
    """Both race pods' environment init containers have reached the build lock."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Pod

    found = 0
    for name in ("race-a", "race-b"):
        for pod in node_kube.list(Pod, namespace=namespace, labels={"modelport.io/service": name}):
            try:
                text = "".join(node_kube.log(pod.metadata.name, namespace=namespace, container="environment"))
            except ApiError:  # not started yet
                continue
            found += "Locking" in text
    return found == 2


@pytest.mark.timeout(1200)
def test_a_broken_requirement_is_environment_build_failed_with_the_installer_message(
    cached_cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cached_cluster
    env = _sklearn_environment("broken-env", "modelport-no-such-package-anywhere==1.0")
    service = deploy(
        ws,
        "broken-env",
        [],
        "def init():\n    pass\n\ndef run(raw):\n    return raw\n",
        tmp_path,
        environment=env,
    )
    with pytest.raises(WebserviceException, match="EnvironmentBuildFailed"):
        service.wait_for_deployment(timeout_sec=900)
    assert service.error["code"] == "EnvironmentBuildFailed"
    assert "modelport-no-such-package-anywhere" in service.error["message"]
    assert "Fix:" in service.error["message"]
    assert "modelport-no-such-package-anywhere" in service.get_logs(init=True)
    service.delete()


FREEZE_SCORE = """\
import importlib.metadata


def init():
    pass


def run(raw_data):
    return sorted(f"{d.metadata['Name'].lower()}=={d.version}" for d in importlib.metadata.distributions())
"""


@pytest.mark.timeout(1800)
def test_the_same_environment_installs_the_same_packages_locally_and_on_the_node(
    cached_cluster: tuple[Workspace, KubernetesTarget],
    package_index: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, _ = cached_cluster
    # The local agent (started by the local deploy, inside the namespace) installs from the same index.
    monkeypatch.setenv("UV_INDEX_URL", package_index)
    env = _sklearn_environment("freeze-env")
    on_node = deploy(ws, "freeze-node", [], FREEZE_SCORE, tmp_path, environment=env)
    on_node.wait_for_deployment(timeout_sec=900)
    source = tmp_path / "local-src"
    source.mkdir()
    (source / "score.py").write_text(FREEZE_SCORE)
    inference = InferenceConfig(entry_script="score.py", source_directory=str(source), environment=env)
    local = Model.deploy(ws, "freeze-local", [], inference, local_deploy_configuration())
    try:
        local.wait_for_deployment(timeout_sec=900)
        frozen = on_node.run("{}")
        assert any(line.startswith("scikit-learn==") for line in frozen)
        assert local.run("{}") == frozen
    finally:
        local.delete()
        LocalDriver().stop_agent(ws)
