"""Tier 0: how a service's environment reaches its pods (compute/kubernetes/envplacement.py) and
what that puts into the Deployment. No cluster is needed (realnode/ runs these pods)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelport.compute.kubernetes import envcache
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.envplacement import (
    CACHE_MOUNT,
    NodeCache,
    cached_environment,
    package_index_secret,
)
from modelport.compute.kubernetes.target import target_from_options
from modelport.errors import UserErrorException
from modelport.registry.environment import Environment
from modelport.service.spec import EnvironmentRef
from tests.compute.kubernetes.specs import make_inputs, make_spec


def _spec_with(env: Environment):  # type: ignore[no-untyped-def]
    reference = EnvironmentRef(
        name=env.name, version="1", definition=env.to_dict(), content_hash=env.content_hash
    )
    return make_spec().model_copy(update={"environment": reference})


def _sklearn(user_managed: bool = False) -> Environment:
    env = Environment("sk")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    env.python.user_managed_dependencies = user_managed
    return env


def test_an_environment_with_packages_goes_through_the_node_cache() -> None:
    spec = _spec_with(_sklearn())
    cached = cached_environment(spec, image_is_the_environments=False)
    assert cached is not None and cached.content_hash == _sklearn().content_hash
    assert (
        Environment.from_dict(__import__("json").loads(cached.definition)).content_hash == cached.content_hash
    )
    # The image is the environment, a user-managed one installs nothing, no environment neither.
    assert cached_environment(spec, image_is_the_environments=True) is None
    assert (
        cached_environment(_spec_with(_sklearn(user_managed=True)), image_is_the_environments=False) is None
    )
    assert cached_environment(make_spec(), image_is_the_environments=False) is None


def test_the_pod_builds_first_then_fetches_then_runs_serve_in_the_cached_environment() -> None:
    spec = _spec_with(_sklearn())
    cached = cached_environment(spec, image_is_the_environments=False)
    inputs = replace(
        make_inputs(), environment=cached, env_cache=NodeCache(index_secret="modelport-package-index")
    )
    pod = m.deployment(spec, inputs)["spec"]["template"]["spec"]
    build, fetch = pod["initContainers"]
    assert (build["name"], fetch["name"]) == ("environment", "fetch-models")
    assert build["command"][-1] == "build" and build["image"] == inputs.image
    assert build["securityContext"] == {"runAsUser": 0}
    assert build["envFrom"] == [{"secretRef": {"name": "modelport-package-index"}}]
    variables = {e["name"]: e["value"] for e in build["env"]}
    assert variables[envcache.HASH_ENV] == cached.content_hash  # type: ignore[union-attr]
    assert variables[envcache.MAX_BYTES_ENV] == str(20 * 1024**3)
    (scorer,) = pod["containers"]
    assert scorer["command"][:5] == ["python", "-m", "modelport.compute.kubernetes.envcache", "run", "--"]
    assert scorer["command"][5:7] == ["--entry_script", "/var/azureml-app/src/score.py"]
    assert {"name": envcache.HASH_ENV, "value": cached.content_hash} in scorer["env"]  # type: ignore[union-attr]
    assert {"name": "modelport-envs", "mountPath": CACHE_MOUNT} in scorer["volumeMounts"]
    volume = next(v for v in pod["volumes"] if v["name"] == "modelport-envs")
    assert volume["hostPath"] == {"path": "/var/lib/modelport/envs", "type": "DirectoryOrCreate"}


def test_without_a_cached_environment_the_pod_is_as_before() -> None:
    pod = m.deployment(make_spec(), make_inputs())["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-models"]
    assert pod["containers"][0]["command"][:4] == ["python", "-m", "modelport", "serve"]
    assert all(v["name"] != "modelport-envs" for v in pod["volumes"])


def test_a_volume_claim_can_hold_the_cache() -> None:
    assert NodeCache("pvc:shared-envs").volume() == {
        "name": "modelport-envs",
        "persistentVolumeClaim": {"claimName": "shared-envs"},
    }


def test_index_settings_become_uv_variables_with_credentials_from_the_deploying_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INDEX_TOKEN", "s3cret")
    values = package_index_secret(
        "https://ml:${INDEX_TOKEN}@nexus.example/simple",
        ("https://extra.example/simple",),
        ("nexus.example",),
    )
    assert values == {
        "UV_INDEX_URL": "https://ml:s3cret@nexus.example/simple",
        "UV_EXTRA_INDEX_URL": "https://extra.example/simple",
        "UV_INSECURE_HOST": "nexus.example",
    }
    assert package_index_secret(None, (), ()) == {}
    monkeypatch.delenv("INDEX_TOKEN")
    with pytest.raises(
        UserErrorException, match=r"--index-url refers to \$\{INDEX_TOKEN\}, which is not set"
    ):
        package_index_secret("https://ml:${INDEX_TOKEN}@nexus.example/simple", (), ())


def test_a_proxy_reaches_the_build_in_both_spellings_with_credentials_from_the_deploying_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROXY_PW", "pw")
    values = package_index_secret(
        None, (), (), "http://me:${PROXY_PW}@proxy.corp:3128", ("nexus.corp", ".svc")
    )
    assert values == {
        "HTTP_PROXY": "http://me:pw@proxy.corp:3128",
        "HTTPS_PROXY": "http://me:pw@proxy.corp:3128",
        "NO_PROXY": "nexus.corp,.svc",
        "http_proxy": "http://me:pw@proxy.corp:3128",
        "https_proxy": "http://me:pw@proxy.corp:3128",
        "no_proxy": "nexus.corp,.svc",
    }
    with pytest.raises(UserErrorException, match="package_proxy='proxy.corp:3128'.*give the proxy's URL"):
        target_from_options(package_proxy="proxy.corp:3128")
    with pytest.raises(UserErrorException, match="--no-proxy has no effect without --package-proxy"):
        target_from_options(no_proxy=("nexus.corp",))


def test_cache_settings_are_checked_at_attach() -> None:
    with pytest.raises(UserErrorException, match="env_cache='envs'.*absolute hostPath"):
        target_from_options(env_cache="envs")
    with pytest.raises(UserErrorException, match="env_cache_max_gb=0"):
        target_from_options(env_cache_max_gb=0)
    assert target_from_options(env_cache="pvc:envs").env_cache == "pvc:envs"
