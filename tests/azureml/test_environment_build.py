"""``Environment.build(workspace, image_build_compute=...)`` as Azure ML had it, in image mode.

The tiny registry (tests/registry_server.py) stands in for the target's registry; the target is
recorded in the workspace as attach records it (a build never talks to the cluster). Builds that
run a real builder are on the real node (realnode/test_image_mode_node.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.azureml.core import Environment
from modelport.compute import targets
from modelport.compute.imagebuild import ImageBuildError, environment_image_reference
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import UserErrorException
from modelport.workspace import Workspace
from tests.registry_server import tiny_registry


def _attach_record(ws: Workspace, registry: str) -> None:
    target = KubernetesTarget(env_mode="image", registry=registry, registry_insecure=True)
    targets.add_target(ws, "aks", "kubernetes", target.model_dump(mode="json"))
    targets.set_state(ws, "aks", targets.SUCCEEDED, definition=target.model_dump(mode="json"))


def test_build_reports_an_image_the_registry_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace.create("ws", path=tmp_path / "ws")
    env = Environment("sk")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    with pytest.raises(UserErrorException, match=r"not registered\. Fix: env = env.register"):
        env.build(ws, image_build_compute="aks")
    env = env.register(ws)
    fetched = Environment.get(ws, "sk")
    assert isinstance(fetched, Environment) and isinstance(Environment.list(ws)["sk"], Environment)
    with tiny_registry() as registry:
        _attach_record(ws, registry.address)
        reference = environment_image_reference(registry.address, env, KubernetesTarget().image)
        registry.tags.add((reference.split("/", 1)[1].split(":")[0], reference.rsplit(":", 1)[1]))
        build = fetched.build(ws, image_build_compute="aks")
        build.wait_for_completion(show_output=True)
    assert build.status == "Succeeded" and build.image == reference
    assert "not building it again" in capsys.readouterr().out
    assert "not building it again" in build.get_log()


def test_a_failed_build_raises_from_wait_for_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH holds no builder (an empty folder): a simulation of a machine without one."""
    ws = Workspace.create("ws", path=tmp_path / "ws")
    env = Environment("sk2").register(ws)
    monkeypatch.setenv("PATH", str(tmp_path))
    with tiny_registry() as registry:
        _attach_record(ws, registry.address)
        build = env.build(ws, image_build_compute="aks")
        with pytest.raises(ImageBuildError, match="No container image builder works"):
            build.wait_for_completion()
    assert build.status == "Failed" and build.image is None
