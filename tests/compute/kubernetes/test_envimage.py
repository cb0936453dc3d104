"""Tier 0: image mode (compute/kubernetes/envimage.py): the target's settings, which services need
an image, the pods that run it, and `environment build-image` when the registry has the image or
no builder exists. Building and pushing for real runs on the real node (realnode/test_image_mode_node.py).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from modelport.compute import targets
from modelport.compute.imagebuild import ImageBuildError, environment_image_reference
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.build_context import PIP_INDEX_ARGS, render_build_context
from modelport.compute.kubernetes.envimage import (
    ensure_environment_image,
    image_environment,
    index_build_args,
    prebuilt_environment_image,
    pull_secret_config,
)
from modelport.compute.kubernetes.target import KubernetesTarget, target_from_options
from modelport.errors import UserErrorException
from modelport.registry.environment import Environment
from modelport.service.spec import EnvironmentRef, ServiceSpec
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.compute.kubernetes.specs import make_inputs, make_spec
from tests.registry_server import tiny_registry
from tests.servers import S3Server


def _sklearn() -> Environment:
    env = Environment("sk")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    return env


def _spec_with(env: Environment) -> ServiceSpec:
    reference = EnvironmentRef(
        name=env.name, version="1", definition=env.to_dict(), content_hash=env.content_hash
    )
    return make_spec().model_copy(update={"environment": reference})


def test_image_mode_settings_are_checked_at_attach() -> None:
    with pytest.raises(UserErrorException, match=r"env_mode='image' needs a registry .*--registry HOST"):
        target_from_options(env_mode="image")
    with pytest.raises(UserErrorException, match=r"registry_username needs a registry"):
        target_from_options(registry_username="robot")
    with pytest.raises(UserErrorException, match=r"registry_password='hunter2': .*\$\{VAR\} reference"):
        target_from_options(registry="r.example", registry_username="robot", registry_password="hunter2")
    with pytest.raises(UserErrorException, match=r"both --registry-username and --registry-password"):
        target_from_options(registry="r.example", registry_password="${PW}")
    with pytest.raises(UserErrorException, match=r"registry='https://r.example': .*without a scheme"):
        target_from_options(registry="https://r.example")
    with pytest.raises(UserErrorException, match=r"env_cache='/data/envs' set, but in env_mode='image'"):
        target_from_options(env_mode="image", registry="r.example", env_cache="/data/envs")
    target = target_from_options(
        env_mode="image", registry="r.example/team", registry_username="robot", registry_password="${PW}"
    )
    assert (target.env_mode, target.registry, target.registry_password) == (
        "image",
        "r.example/team",
        "${PW}",
    )
    assert KubernetesTarget.model_validate(target.model_dump(mode="json")) == target


def test_only_an_environment_with_packages_needs_an_image_in_image_mode_or_with_a_registry() -> None:
    image_mode = KubernetesTarget(env_mode="image", registry="r.example", image="rt:1")
    spec = _spec_with(_sklearn())
    found = image_environment(spec, image_mode, "rt:1")
    assert found is not None and found.content_hash == _sklearn().content_hash
    assert image_environment(spec, KubernetesTarget(image="rt:1"), "rt:1") is None  # node cache, no registry
    with_registry = KubernetesTarget(
        image="rt:1", registry="r.example"
    )  # node cache: a prebuilt image is used
    assert image_environment(spec, with_registry, "rt:1") is not None
    assert image_environment(spec, image_mode, "registry.example/own:1") is None  # it names its own image
    assert image_environment(make_spec(), image_mode, "rt:1") is None  # no environment
    managed = _sklearn()
    managed.python.user_managed_dependencies = True
    assert image_environment(_spec_with(managed), image_mode, "rt:1") is None


def test_pods_of_image_mode_run_the_image_with_the_pull_secret_and_no_environment_init() -> None:
    inputs = replace(
        make_inputs(), image="r.example/modelport-env-sk:abc", image_pull_secrets=("modelport-registry",)
    )
    pod = m.deployment(_spec_with(_sklearn()), inputs)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "modelport-registry"}]
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-models"]
    assert {c["image"] for c in [*pod["initContainers"], *pod["containers"]]} == {
        "r.example/modelport-env-sk:abc"
    }
    assert pod["containers"][0]["command"][:4] == ["python", "-m", "modelport", "serve"]
    assert "imagePullSecrets" not in m.deployment(make_spec(), make_inputs())["spec"]["template"]["spec"]


def test_the_pull_secret_holds_the_deploying_users_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    target = KubernetesTarget(
        registry="r.example:5000/team", registry_username="robot", registry_password="${PW}"
    )
    monkeypatch.setenv("PW", "s3cret")
    config = json.loads(pull_secret_config(target) or "")
    assert config["auths"]["r.example:5000"]["password"] == "s3cret"
    assert pull_secret_config(KubernetesTarget(registry="r.example")) is None
    monkeypatch.delenv("PW")
    with pytest.raises(
        UserErrorException, match=r"--registry-password refers to \$\{PW\}.*modelport-registry"
    ):
        pull_secret_config(target)


def test_the_index_settings_reach_the_build_and_a_password_in_them_is_warned_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKEN", "t0k")
    lines: list[str] = []
    target = KubernetesTarget(
        package_index_url="https://ml:${TOKEN}@nexus.example/simple",
        extra_index_urls=("https://a.example/simple", "https://b.example/simple"),
        trusted_hosts=("nexus.example",),
    )
    assert index_build_args(target, lines.append) == {
        "PIP_INDEX_URL": "https://ml:t0k@nexus.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
        "PIP_TRUSTED_HOST": "nexus.example",
    }
    assert len(lines) == 1 and "PIP_INDEX_URL carries a password" in lines[0]
    assert index_build_args(KubernetesTarget(), lines.append) == {}
    proxied = KubernetesTarget(package_proxy="http://proxy.corp:3128")
    assert index_build_args(proxied, lines.append)["HTTPS_PROXY"] == "http://proxy.corp:3128"


def test_empty_index_build_arguments_leave_pips_defaults(tmp_path: Path) -> None:
    """The Dockerfile's own shell lines, run by sh: an empty build argument is unset, a given one kept."""
    dockerfile = render_build_context(_sklearn()).files["Dockerfile"]
    for name in PIP_INDEX_ARGS:
        assert f'ARG {name}=""' in dockerfile
    unsets = [
        line.strip().removeprefix("&& ").removesuffix(" \\")
        for line in dockerfile.splitlines()
        if "|| unset" in line
    ]
    assert len(unsets) == len(PIP_INDEX_ARGS)
    script = " && ".join([*unsets, "env"])
    env = {"PATH": "/usr/bin:/bin", "PIP_INDEX_URL": "", "PIP_EXTRA_INDEX_URL": "", "PIP_TRUSTED_HOST": "h"}
    shown = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert "PIP_INDEX_URL" not in shown and "PIP_EXTRA_INDEX_URL" not in shown
    assert "PIP_TRUSTED_HOST=h" in shown


def test_an_image_the_registry_has_is_not_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tiny registry (tests/registry_server.py) holds the tag; PATH has no builder, so a build
    attempt would fail: none is made."""
    monkeypatch.setenv("PATH", str(tmp_path))
    env = _sklearn()
    with tiny_registry() as registry:
        target = KubernetesTarget(
            env_mode="image", registry=f"{registry.address}/team", registry_insecure=True
        )
        reference = environment_image_reference(target.registry or "", env, target.image)
        registry.tags.add(("team/" + reference.split("/", 2)[2].split(":")[0], reference.rsplit(":", 1)[1]))
        lines: list[str] = []
        found = ensure_environment_image(env, target, "prod", on_line=lines.append)
        assert (found.reference, found.built) == (reference, False)
        assert lines == [
            f"Registry {registry.address}/team already has {reference} (environment 'sk' version None); "
            "not building it again."
        ]
        with pytest.raises(ImageBuildError, match=r"No container image builder works"):
            ensure_environment_image(env, target, "prod", on_line=lines.append, force=True)
        registry.tags.clear()
        with pytest.raises(
            ImageBuildError, match=r"install docker \(with its daemon running\), podman or buildah"
        ):
            ensure_environment_image(env, target, "prod", on_line=lines.append)
    with pytest.raises(UserErrorException, match=r"'prod' has no registry .*--registry HOST"):
        ensure_environment_image(env, KubernetesTarget(), "prod", on_line=lines.append)


def test_a_node_cache_target_runs_the_image_build_image_pushed_else_builds_in_the_cache() -> None:
    """Image mode per environment: the tiny registry (tests/registry_server.py) has the image of
    one environment; a registry that cannot be reached is said and the node cache used."""
    env = _sklearn()
    with tiny_registry() as registry:
        target = KubernetesTarget(registry=registry.address, registry_insecure=True)
        lines: list[str] = []
        assert prebuilt_environment_image(env, target, on_line=lines.append) is None and lines == []
        reference = environment_image_reference(registry.address, env, target.image)
        registry.tags.add((reference.split("/", 1)[1].split(":")[0], reference.rsplit(":", 1)[1]))
        assert prebuilt_environment_image(env, target, on_line=lines.append) == reference
        assert "from environment build-image" in lines[-1] and "builds nothing" in lines[-1]
        address = registry.address
    gone = KubernetesTarget(registry=address, registry_insecure=True)  # the registry has stopped
    assert prebuilt_environment_image(env, gone, on_line=lines.append) is None
    assert lines[-1].startswith(f"Warning: could not ask {address}") and "node cache builds it" in lines[-1]
    assert prebuilt_environment_image(env, KubernetesTarget(), on_line=lines.append) is None


def test_build_image_on_the_command_line_skips_what_the_registry_has(tmp_path: Path) -> None:
    """The tiny registry stands in for the target's registry; the target is recorded in the
    workspace as attach records it (build-image never talks to the cluster)."""
    ws = Workspace.create("ws", path=tmp_path / "ws")
    env = _sklearn().register(ws)
    with tiny_registry() as registry:
        target = KubernetesTarget(env_mode="image", registry=registry.address, registry_insecure=True)
        targets.add_target(ws, "prod", "kubernetes", target.model_dump(mode="json"))
        targets.set_state(ws, "prod", targets.SUCCEEDED, definition=target.model_dump(mode="json"))
        reference = environment_image_reference(registry.address, env, target.image)
        registry.tags.add((reference.split("/", 1)[1].split(":")[0], reference.rsplit(":", 1)[1]))
        done = modelport(
            "environment",
            "build-image",
            "sk",
            "--target",
            "prod",
            "--path",
            str(tmp_path / "ws"),
            "-o",
            "json",
        )
    assert json.loads(done.stdout) == {
        "name": "sk",
        "version": env.version,
        "image": reference,
        "built": False,
        "seconds": 0.0,
    }
    assert "already has" in done.stderr and "not building it again" in done.stderr
    refused = modelport(
        "environment", "build-image", "sk", "--target", "nope", "--path", str(tmp_path / "ws"), rc=1
    )
    assert "nope" in refused.stderr


@pytest.mark.s3
def test_a_deploy_whose_image_cannot_be_built_fails_once_with_image_build_failed(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cluster is reached: the image is made before anything is applied. The tiny registry lacks
    the tag and PATH holds no builder (an empty folder: a simulation of a machine without one)."""
    from modelport import Model
    from modelport.config.deployment import KubernetesDeploymentConfig
    from modelport.config.inference import InferenceConfig

    ws = Workspace.create(
        "ws", path=tmp_path / "ws", artifact_url="s3://image-mode/a", storage_options=s3.storage_options()
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    empty = tmp_path / "no-builders"
    empty.mkdir()
    with tiny_registry() as registry:
        target = KubernetesTarget(
            kubeconfig=str(tmp_path / "never-read"),
            env_mode="image",
            registry=registry.address,
            registry_insecure=True,
        )
        targets.add_target(ws, "prod", "kubernetes", target.model_dump(mode="json"))
        targets.set_state(ws, "prod", targets.SUCCEEDED, definition=target.model_dump(mode="json"))
        monkeypatch.setenv("PATH", str(empty))
        inference = InferenceConfig(
            entry_script="score.py", source_directory=str(source), environment=_sklearn()
        )
        config = KubernetesDeploymentConfig(
            compute_target_name="prod", autoscale_enabled=False, num_replicas=1
        )
        service = Model.deploy(ws, "img-svc", [], inference, config)
        assert service.state == "Failed"
        assert service.error["code"] == "ImageBuildFailed"
        assert "install docker (with its daemon running), podman or buildah" in service.error["message"]
        asked = len(registry.requests)
        service.update_deployment_state()  # an observer does not build again
        assert len(registry.requests) == asked and service.state == "Failed"


def test_the_facades_attach_configuration_takes_the_image_mode_options() -> None:
    from modelport.azureml.core.compute.kubernetes import KubernetesCompute

    config = KubernetesCompute.attach_configuration(
        env_mode="image", registry="r.example/ml", registry_username="robot", registry_password="${PW}"
    )
    assert config.kubernetes_options["env_mode"] == "image"
    assert config.kubernetes_options["registry"] == "r.example/ml"
    with pytest.raises(UserErrorException, match=r"registry_password='pw': .*\$\{VAR\}"):
        KubernetesCompute.attach_configuration(
            registry="r.example", registry_username="u", registry_password="pw"
        )
