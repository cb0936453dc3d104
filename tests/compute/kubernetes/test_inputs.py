"""Tier 0: what a service generation takes from the workspace to become Kubernetes objects.

Against a real workspace with an S3-protocol store (moto): the model and source files with their
digests, credentials moved out of the plan into the Secret's values, the image choice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.compute.kubernetes import fetch_plan as fp
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.inputs import artifact_access, image_for, service_inputs
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.registry.environment import Environment
from modelport.workspace import Workspace
from tests.compute.kubernetes.specs import make_spec
from tests.servers import S3Server

pytestmark = pytest.mark.s3


@pytest.fixture
def ws(tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("STORE_SECRET", "from-the-environment")
    options = {**s3.storage_options(), "secret": "${STORE_SECRET}", "region": "eu-west-1"}
    return Workspace.create(
        "ws", path=tmp_path / "ws", artifact_url="s3://inputs-tests/a", storage_options=options
    )


def test_credentials_go_to_the_secret_and_the_plan_only_names_them(ws: Workspace, s3: S3Server) -> None:
    access, secret = artifact_access(ws, KubernetesTarget())

    assert secret == {"MODELPORT_STORE_KEY": "testing", "MODELPORT_STORE_SECRET": "from-the-environment"}
    assert access.credentials_secret == fp.ARTIFACT_CREDENTIALS_SECRET
    assert dict(access.storage_options) == {
        "endpoint_url": s3.endpoint_url,
        "key": "${MODELPORT_STORE_KEY}",
        "secret": "${MODELPORT_STORE_SECRET}",
        "region": "eu-west-1",
    }
    plan = json.dumps(fp.fetch_plan(make_spec(), access, (), ()))
    assert "testing" not in plan and "from-the-environment" not in plan


def test_the_pods_view_of_the_store_endpoint_can_differ(ws: Workspace) -> None:
    access, _ = artifact_access(ws, KubernetesTarget(store_endpoint_url="http://minio.storage:9000"))
    assert access.storage_options["endpoint_url"] == "http://minio.storage:9000"


def test_files_of_a_generation_with_small_source_inline(ws: Workspace, tmp_path: Path) -> None:
    from modelport.config.inference import InferenceConfig
    from modelport.registry.model import Model
    from modelport.service.deploy import resolve_models, snapshot_source
    from modelport.service.store import write_service

    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"weights")
    model = Model.register(ws, str(weights), "tiny")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text("def init(): pass\n")
    source, files, _ = snapshot_source(
        ws, InferenceConfig(entry_script="score.py", source_directory=str(src))
    )

    spec = make_spec(name="tiny-svc").model_copy(
        update={"models": resolve_models(ws, [model]), "source": source}
    )
    generation = write_service(ws, spec, files, create=True, overwrite=False, message="test")

    inputs, _ = service_inputs(ws, spec, generation, KubernetesTarget(image="registry.example/rt:1"))

    assert [(f.path, f.digest) for f in inputs.files] == [
        ("azureml-models/tiny/1/model.pkl", model.stored_files()[0].digest)
    ]
    assert dict(inputs.inline_source) == {"src/score.py": b"def init(): pass\n"}
    assert inputs.image == "registry.example/rt:1"


def test_an_environment_with_its_own_image_runs_on_it() -> None:
    from modelport.service.spec import EnvironmentRef

    env = Environment("sk")
    plain = make_spec().model_copy(
        update={
            "environment": EnvironmentRef(name="sk", version="1", definition=env.to_dict(), content_hash="h")
        }
    )
    assert image_for(plain, KubernetesTarget(image="rt:1")) == "rt:1"  # Azure ML's default base image: ours
    env.docker.base_image = "registry.example/sk-env:3"
    own = plain.model_copy(
        update={
            "environment": EnvironmentRef(name="sk", version="1", definition=env.to_dict(), content_hash="h")
        }
    )
    assert image_for(own, KubernetesTarget(image="rt:1")) == "registry.example/sk-env:3"


def test_a_large_source_folder_is_fetched_like_the_models(ws: Workspace, tmp_path: Path) -> None:
    from modelport.config.inference import InferenceConfig
    from modelport.service.deploy import snapshot_source
    from modelport.service.store import write_service

    src = tmp_path / "big"
    src.mkdir()
    (src / "score.py").write_text("def init(): pass\n")
    (src / "vocabulary.bin").write_bytes(b"\x01" * (fp.INLINE_SOURCE_LIMIT + 1))
    source, files, _ = snapshot_source(
        ws, InferenceConfig(entry_script="score.py", source_directory=str(src))
    )
    spec = make_spec(name="big-svc").model_copy(update={"models": (), "source": source})
    generation = write_service(ws, spec, files, create=True, overwrite=False, message="test")

    inputs, _ = service_inputs(ws, spec, generation, KubernetesTarget())

    assert dict(inputs.inline_source) == {}
    assert sorted(f.path for f in inputs.files) == ["big/score.py", "big/vocabulary.bin"]
    assert m.source_config_map(spec, inputs) is None


def test_image_mode_runs_the_environment_image_and_pulls_with_the_registry_secret(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.compute.kubernetes.envimage import pull_secret_config
    from modelport.service.spec import EnvironmentRef

    env = Environment("sk")
    env.python.conda_dependencies.add_pip_package("scikit-learn")  # type: ignore[union-attr]
    reference = EnvironmentRef(
        name="sk", version="1", definition=env.to_dict(), content_hash=env.content_hash
    )
    spec = make_spec().model_copy(update={"models": (), "environment": reference})
    monkeypatch.setenv("PW", "s3cret")
    target = KubernetesTarget(
        env_mode="image",
        registry="r.example",
        registry_username="robot",
        registry_password="${PW}",
        package_index_url="https://nexus.example/simple",
    )
    inputs, secrets = service_inputs(
        ws,
        spec,
        1,
        target,
        environment_image="r.example/env:h",
        pull_secret_config=pull_secret_config(target),
    )
    assert (inputs.image, inputs.environment, inputs.image_pull_secrets) == (
        "r.example/env:h",
        None,
        ("modelport-registry",),
    )
    kinds = {s["metadata"]["name"]: s["type"] for s in secrets}
    # The index settings went into the image's build: pods install nothing, so no index Secret.
    assert kinds == {
        "modelport-artifact-credentials": "Opaque",
        "modelport-registry": "kubernetes.io/dockerconfigjson",
    }
    pull = next(s for s in secrets if s["metadata"]["name"] == "modelport-registry")
    assert json.loads(pull["stringData"][".dockerconfigjson"])["auths"]["r.example"]["username"] == "robot"
