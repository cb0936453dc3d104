"""Tier 0: finding an image builder, asking a registry for a tag, naming an environment's image.

Building and pushing with a real builder runs on the real node (realnode/test_image_mode_node.py,
buildah); this machine has no working builder of its own (docker's client without a daemon).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from modelport.compute.imagebuild import (
    ImageBuildError,
    RegistryCredentials,
    detect_builder,
    docker_config_json,
    environment_image_reference,
    parse_reference,
    registry_has_tag,
    registry_host,
)
from modelport.registry.environment import Environment
from tests.registry_server import distribution_registry, put_image, registry_binary, tiny_registry


def _fake(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_no_builder_on_path_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds no builder at all (an empty folder): a simulation of a machine without any."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageBuildError) as raised:
        detect_builder()
    message = raised.value.message
    assert "install docker (with its daemon running), podman or buildah" in message
    for name in ("docker", "podman", "buildah"):
        assert f"{name}: not found on PATH" in message


def test_a_docker_client_without_a_daemon_is_passed_over_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake ``docker`` that fails ``docker info`` as the client does without a daemon: a
    simulation of the daemon being unreachable (the real client is tested below when present)."""
    _fake(
        tmp_path,
        "docker",
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1',
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ImageBuildError, match=r"docker daemon is not reachable .*Cannot connect to the Docker daemon"
    ):
        detect_builder()


@pytest.mark.skipif(not Path("/usr/local/bin/docker").exists(), reason="no docker client on this machine")
def test_the_real_docker_client_here_has_no_daemon_and_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/local/bin")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ImageBuildError) as raised:
        detect_builder()
    assert "docker (/usr/local/bin/docker): the docker daemon is not reachable" in raised.value.message


def test_a_preferred_builder_is_the_only_one_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageBuildError) as raised:
        detect_builder("podman")
    assert "(podman: not found on PATH). Fix: install podman" in raised.value.message
    with pytest.raises(ImageBuildError, match=r"'kaniko' is not one modelport runs.*docker, podman, buildah"):
        detect_builder("kaniko")


@pytest.mark.parametrize(
    ("reference", "host", "repository", "tag"),
    [
        ("10.77.0.1:5000/modelport-env-sk:abc", "10.77.0.1:5000", "modelport-env-sk", "abc"),
        ("registry.example/team/env", "registry.example", "team/env", "latest"),
        ("python:3.11", "registry-1.docker.io", "library/python", "3.11"),
        ("user/app:1", "registry-1.docker.io", "user/app", "1"),
        ("localhost/x@sha256:00ff", "localhost", "x", "sha256:00ff"),
    ],
)
def test_references_split_as_the_registry_api_needs(
    reference: str, host: str, repository: str, tag: str
) -> None:
    parsed = parse_reference(reference)
    assert (parsed.host, parsed.repository, parsed.tag) == (host, repository, tag)


def test_the_environment_image_is_tagged_with_the_content_hash() -> None:
    env = Environment("Iris_Env 2")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    reference = environment_image_reference("registry.example:5000/team/", env, "runtime:1")
    assert reference.startswith(f"registry.example:5000/team/modelport-env-iris_env-2:{env.content_hash}-")
    changed = Environment("Iris_Env 2")
    tag = environment_image_reference("r.example", changed, "runtime:1").rsplit(":", 1)[1]
    assert tag.startswith(changed.content_hash) and changed.content_hash != env.content_hash
    on_new_runtime = environment_image_reference("registry.example:5000/team/", env, "runtime:2")
    assert on_new_runtime != reference and len(on_new_runtime.rsplit(":", 1)[1]) <= 128
    assert registry_host("registry.example:5000/team") == "registry.example:5000"


def test_the_pull_config_holds_the_credentials_for_the_registry_host() -> None:
    config = json.loads(docker_config_json("registry.example/team", RegistryCredentials("robot", "pw")))
    entry = config["auths"]["registry.example"]
    assert entry["username"] == "robot" and entry["password"] == "pw"
    assert entry["auth"] == "cm9ib3Q6cHc="  # base64 of robot:pw


def test_a_real_registry_says_which_tags_it_has(tmp_path: Path) -> None:
    binary = registry_binary()
    if binary is None:
        pytest.skip("no registry binary in the testbed cache (k8s/testbed/build-node.sh builds it)")
    with distribution_registry(binary, tmp_path) as address:
        put_image(address, "modelport-env-sk", "abc123")
        assert registry_has_tag(f"{address}/modelport-env-sk:abc123", credentials=None, insecure=True)
        assert not registry_has_tag(f"{address}/modelport-env-sk:other", credentials=None, insecure=True)
        assert not registry_has_tag(f"{address}/never-pushed:abc123", credentials=None, insecure=True)


def _check_basic_authentication(repository: str, good: RegistryCredentials) -> None:
    """``repository`` holds tag h1 and not h2, behind basic authentication that accepts ``good``."""
    assert registry_has_tag(f"{repository}:h1", credentials=good, insecure=True)
    assert not registry_has_tag(f"{repository}:h2", credentials=good, insecure=True)
    with pytest.raises(ImageBuildError, match=r"refused .*HTTP 401.*--registry-username"):
        registry_has_tag(f"{repository}:h1", credentials=None, insecure=True)
    wrong = RegistryCredentials(good.username, "wrong")
    with pytest.raises(ImageBuildError, match=r"HTTP 401"):
        registry_has_tag(f"{repository}:h1", credentials=wrong, insecure=True)


def test_a_real_registry_with_basic_authentication(tmp_path: Path) -> None:
    binary = registry_binary()
    crypt = pytest.importorskip("crypt", reason="no crypt module to make the registry's bcrypt password file")
    if binary is None or crypt.METHOD_BLOWFISH not in crypt.methods:
        pytest.skip("no registry binary in the testbed cache, or no bcrypt here")
    hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))
    with distribution_registry(binary, tmp_path, htpasswd=f"robot:{hashed}\n") as address:
        put_image(address, "team/env", "h1", auth=("robot", "s3cret"))
        _check_basic_authentication(f"{address}/team/env", RegistryCredentials("robot", "s3cret"))


def test_tags_behind_basic_authentication() -> None:
    """The tiny registry (tests/registry_server.py) stands in for a registry with basic authentication."""
    with tiny_registry("basic", {("env", "h1")}) as registry:
        good = RegistryCredentials(registry.username, registry.password)
        _check_basic_authentication(f"{registry.address}/env", good)
        assert "manifest.v2+json" in registry.requests[0]


def test_tags_behind_a_token_service() -> None:
    """The tiny registry stands in for a registry with a token service (Docker Hub, GitLab, Harbor)."""
    with tiny_registry("bearer", {("team/env", "h1")}) as registry:
        good = RegistryCredentials(registry.username, registry.password)
        assert registry_has_tag(f"{registry.address}/team/env:h1", credentials=good, insecure=True)
        token_request = next(r for r in registry.requests if r.startswith("GET /token"))
        assert "scope=repository%3Ateam%2Fenv%3Apull" in token_request and "service=tiny" in token_request
        with pytest.raises(ImageBuildError, match=r"token service .* refused the credentials"):
            registry_has_tag(f"{registry.address}/team/env:h1", credentials=None, insecure=True)


def test_an_unreachable_registry_names_the_fix() -> None:
    with tiny_registry() as registry:
        address = registry.address
    with pytest.raises(ImageBuildError, match=r"Could not ask registry .*--registry-insecure"):
        registry_has_tag(f"{address}/env:h1", credentials=None, insecure=False)
