"""Environment: Azure ML's defaults and sections, the camelCase form, factories, folders, content hash."""

from __future__ import annotations

import copy
import hashlib
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import EnvironmentException, UserErrorException
from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import (
    DEFAULT_CPU_IMAGE,
    ContainerRegistry,
    Environment,
    EnvironmentDefinitionWarning,
    EnvironmentReference,
    is_environment_reference,
)
from tests.examples import ENVIRONMENT_EXAMPLE as SPEC_EXAMPLE

RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _hash_env(name: str = "hash-me") -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["azureml-defaults", "scikit-learn==1.4.2"],
        conda_packages=["numpy=1.26"],
        python_version="3.11.9",
    )
    env.docker.base_image = "python:3.11-slim"
    return env


# -- construction and sections -------------------------------------------------------------------


def test_name_must_be_a_string_and_safe() -> None:
    with pytest.raises(TypeError):
        Environment(3)  # type: ignore[arg-type]
    with pytest.raises(UserErrorException, match="Invalid environment name"):
        Environment("../escape")


def test_defaults_are_azure_mls() -> None:
    env = Environment("env")
    assert env.version is None
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path == "python"
    assert env.python.conda_dependencies == CondaDependencies()
    assert env.python.conda_dependencies.get_python_version() == RUNNING_PYTHON
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert env.docker.shm_size == "2g"
    assert env.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert env.inferencing_stack_version is None


def test_base_image_dockerfile_and_build_context_exclude_each_other() -> None:
    env = Environment("env")
    with pytest.warns(UserWarning, match=r"docker.base_dockerfile is set, so docker.base_image is reset"):
        env.docker.base_dockerfile = "FROM python:3.11-slim\n"
    assert env.docker.base_image is None
    with pytest.warns(UserWarning, match="docker.build_context is set, so docker.base_dockerfile is reset"):
        env.docker.build_context = {"location": "ctx", "locationType": "local"}
    assert env.docker.base_dockerfile is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.docker.base_dockerfile = None  # clearing resets nothing and warns about nothing
    assert env.docker.build_context == {"location": "ctx", "locationType": "local"}


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("enabled", True),
        ("gpu_support", True),
        ("shm_size", "4g"),
        ("arguments", ["--x"]),
        ("shared_volumes", False),
    ],
)
def test_deprecated_docker_flags_are_accepted_with_a_warning(flag: str, value: object) -> None:
    env = Environment("env")
    with pytest.warns(DeprecationWarning, match=f"docker.{flag} is deprecated"):
        setattr(env.docker, flag, value)
    assert getattr(env.docker, flag) == value


# -- the serialised form -------------------------------------------------------------------------


def test_to_dict_has_the_camel_case_shape_of_the_spec() -> None:
    env = Environment("env")
    env.docker.base_image_registry = ContainerRegistry("reg.example", "u", "p")
    data = env.to_dict()
    assert set(data) == {
        "name",
        "version",
        "environmentVariables",
        "python",
        "docker",
        "inferencingStackVersion",
    }
    assert set(data["python"]) == {
        "userManagedDependencies",
        "interpreterPath",
        "condaDependenciesFile",
        "baseCondaEnvironment",
        "condaDependencies",
    }
    assert data["python"]["condaDependencies"]["dependencies"][-1] == {"pip": ["azureml-defaults"]}
    assert data["docker"]["baseImage"] == DEFAULT_CPU_IMAGE
    assert data["docker"]["baseImageRegistry"] == {"address": "reg.example", "username": "u", "password": "p"}
    assert data["docker"]["shmSize"] == "2g"


def test_round_trip_keeps_everything() -> None:
    env = _hash_env()
    env.version = "3"
    env.environment_variables = {"A": "1"}
    env.inferencing_stack_version = "latest"
    env.python.base_conda_environment = "base"
    env.docker.base_image_registry = ContainerRegistry("reg.example", "u", "p")
    again = Environment.from_dict(env.to_dict())
    assert again == env
    assert again.to_dict() == env.to_dict()


def test_from_dict_reads_the_spec_example() -> None:
    env = Environment.from_dict(copy.deepcopy(SPEC_EXAMPLE))
    conda = env.python.conda_dependencies
    assert conda is not None
    assert conda.get_python_version() == "3.8"
    assert conda.conda_channels == ["conda-forge"]
    assert conda.pip_packages == [
        "azureml-defaults",
        "scikit-learn==0.24.2",
        "inference-schema[numpy-support]",
    ]
    assert env.docker.base_image == "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04"
    assert env.environment_variables == {"MY_VAR": "1"}


def test_from_dict_gives_missing_sections_no_defaults() -> None:
    env = Environment.from_dict({"name": "bare", "python": {"userManagedDependencies": True}})
    assert env.python.user_managed_dependencies is True
    assert env.python.conda_dependencies is None
    assert env.docker.base_image is None
    assert env.docker.shm_size is None
    assert env.environment_variables == {}


def test_from_dict_names_unknown_and_snake_case_keys() -> None:
    payload = copy.deepcopy(SPEC_EXAMPLE)
    payload["python"]["user_managed_dependencies"] = True
    payload["docker"]["baseImageTypo"] = "x"
    payload["environment_variables"] = {"B": "2"}
    with pytest.warns(EnvironmentDefinitionWarning) as record:
        env = Environment.from_dict(payload)
    messages = [str(w.message) for w in record]
    assert any(
        "environment.python: unknown key 'user_managed_dependencies'" in m
        and "'userManagedDependencies'" in m
        for m in messages
    )
    assert any("environment.docker: unknown key 'baseImageTypo'" in m for m in messages)
    assert any("did you mean 'environmentVariables'" in m for m in messages)
    # Ignored, as in Azure ML: the snake_case keys change nothing.
    assert env.python.user_managed_dependencies is False
    assert env.environment_variables == {"MY_VAR": "1"}


def test_from_dict_accepts_azure_ml_output_without_warnings() -> None:
    payload = Environment("env").to_dict()
    payload.update({"spark": {"repositories": []}, "databricks": {}, "r": None, "assetId": "azureml://x"})
    payload["docker"]["baseImageRegistry"]["registryIdentity"] = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Environment.from_dict(payload) == Environment("env")


def test_name_and_version_only_is_a_reference_not_a_definition() -> None:
    payload = {"name": "sklearn-env", "version": "2"}
    assert is_environment_reference(payload)
    with pytest.raises(
        EnvironmentException, match=r"registered environment.*-e NAME --ev VERSION.*Environment.get"
    ):
        Environment.from_dict(payload)
    assert EnvironmentReference.from_dict(payload) == EnvironmentReference("sklearn-env", "2")
    assert EnvironmentReference.from_dict({"name": "x"}) == EnvironmentReference("x", None)
    assert not is_environment_reference({})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"python": {}}, "environment.name is required"),
        ({"name": "e", "python": {"userManagedDependencies": "yes"}}, "userManagedDependencies must be bool"),
        ({"name": "e", "docker": []}, "environment.docker must be an object"),
        ({"name": "e", "docker": {"baseImage": "a", "baseDockerfile": "FROM a"}}, "mutually exclusive"),
        ({"name": "e", "inferencingStackVersion": "1.0"}, 'must be null or "latest"'),
        ({"name": "e", "python": {"condaDependencies": {"deps": []}}}, "unknown deps key"),
    ],
)
def test_from_dict_refuses_bad_values_naming_the_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvironmentException, match=message):
        Environment.from_dict(payload)


# -- factories -----------------------------------------------------------------------------------


def test_from_conda_specification_pins_a_default_python_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "conda.yml"
    path.write_text("name: x\ndependencies:\n  - numpy\n  - pip:\n    - azureml-defaults\n")
    with pytest.warns(UserWarning, match=f"No Python version provided.*python={RUNNING_PYTHON}"):
        env = Environment.from_conda_specification("from-conda", path)
    conda = env.python.conda_dependencies
    assert conda is not None
    assert conda.get_python_version() == RUNNING_PYTHON
    assert conda.conda_packages == [f"python={RUNNING_PYTHON}", "numpy"]


def test_from_pip_requirements_makes_the_pip_section(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# model deps\nscikit-learn==1.4.2  # pinned\n\n--extra-index-url https://x\njoblib\n")
    env = Environment.from_pip_requirements("from-pip", path, pip_version="24.0")
    conda = env.python.conda_dependencies
    assert conda is not None
    assert conda.pip_packages == ["scikit-learn==1.4.2", "joblib"]
    assert conda.pip_options == ["--extra-index-url https://x"]
    assert "pip=24.0" in conda.conda_packages
    nested = tmp_path / "nested.txt"
    nested.write_text("-r requirements.txt\n")
    with pytest.raises(EnvironmentException, match="includes another file"):
        Environment.from_pip_requirements("nested", nested)


def test_from_docker_image_without_dependencies_uses_the_images_python(tmp_path: Path) -> None:
    registry = ContainerRegistry("reg.example", "u", "p")
    env = Environment.from_docker_image("img", "reg.example/base:1", container_registry=registry)
    assert env.docker.base_image == "reg.example/base:1"
    assert env.docker.base_image_registry == registry
    assert env.python.user_managed_dependencies is True
    req = tmp_path / "requirements.txt"
    req.write_text("numpy\n")
    with_pip = Environment.from_docker_image("img", "base:1", pip_requirements=req)
    assert with_pip.python.user_managed_dependencies is False
    with pytest.raises(EnvironmentException, match="not both"):
        Environment.from_docker_image("img", "base:1", conda_specification=req, pip_requirements=req)


def test_from_dockerfile_takes_content_or_a_path(tmp_path: Path) -> None:
    content = "FROM python:3.11-slim\nRUN pip install numpy\n"
    path = tmp_path / "Dockerfile"
    path.write_text(content)
    assert Environment.from_dockerfile("df", path).docker.base_dockerfile == content
    from_text = Environment.from_dockerfile("df", content)
    assert from_text.docker.base_dockerfile == content
    assert from_text.docker.base_image is None


# -- folders and clones --------------------------------------------------------------------------


def test_save_and_load_directory_round_trip(tmp_path: Path) -> None:
    env = Environment.from_dockerfile("saved", "FROM python:3.11-slim\n")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["joblib"], python_version="3.11")
    folder = tmp_path / "env"
    env.save_to_directory(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "BaseDockerfile",
        "azureml_environment.json",
        "conda_dependencies.yml",
    ]
    assert Environment.load_from_directory(folder) == env
    with pytest.raises(EnvironmentException, match="already exists"):
        env.save_to_directory(folder)
    with pytest.warns(UserWarning, match="base_dockerfile is reset"):
        env.docker.base_image = "python:3.12-slim"  # so the saved BaseDockerfile must go
    env.save_to_directory(folder, overwrite=True)
    assert not (folder / "BaseDockerfile").exists()
    assert Environment.load_from_directory(folder) == env


def test_load_from_a_folder_without_definition_says_so(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentException, match=r"azureml_environment\.json is missing"):
        Environment.load_from_directory(tmp_path)


def test_clone_is_deep_and_unregistered() -> None:
    env = _hash_env()
    env.version = "4"
    copy_ = env.clone("other")
    assert (copy_.name, copy_.version) == ("other", None)
    assert copy_.python.conda_dependencies is not None
    copy_.python.conda_dependencies.add_pip_package("joblib")
    assert "joblib" not in env.python.conda_dependencies.pip_packages  # type: ignore[union-attr]


# -- content hash --------------------------------------------------------------------------------

EXPECTED_CANONICAL = (
    '{"docker":{"baseDockerfile":null,"baseImage":"python:3.11-slim","buildContext":null,"registry":null},'
    '"inferencingStackVersion":null,"python":{"baseCondaEnvironment":null,"channels":["anaconda","conda-forge"],'
    '"condaDependenciesFile":null,"condaPackages":["numpy=1.26"],"pipOptions":[],'
    '"pipPackages":["azureml-defaults","scikit-learn==1.4.2"],"pythonVersion":"3.11.9","userManaged":false},'
    '"schema":1}'
)
EXPECTED_HASH = "d6584d583fb6beb57f578a8c68fc84e2bd7352a98151051c2b16619d57821a84"


def test_content_hash_is_a_fixed_function_of_the_build_spec() -> None:
    # Literal values: any change to the canonical form must be deliberate (and bump the schema).
    assert hashlib.sha256(EXPECTED_CANONICAL.encode()).hexdigest() == EXPECTED_HASH
    assert _hash_env().content_hash == EXPECTED_HASH


def test_content_hash_ignores_identity_variables_credentials_and_package_order() -> None:
    env = _hash_env("another-name")
    env.version = "7"
    env.environment_variables = {"LOG_LEVEL": "debug"}
    env.docker.base_image_registry.username = "someone"
    conda = env.python.conda_dependencies
    assert conda is not None
    conda.set_pip_requirements(["scikit-learn==1.4.2", "azureml-defaults"])
    assert env.content_hash == EXPECTED_HASH


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.python.conda_dependencies.add_pip_package("joblib"),
        lambda e: e.python.conda_dependencies.set_python_version("3.12"),
        lambda e: e.python.conda_dependencies.add_channel("pytorch"),
        lambda e: e.python.conda_dependencies.set_pip_option("--pre"),
        lambda e: setattr(e.docker, "base_image", "python:3.12-slim"),
        lambda e: setattr(e, "inferencing_stack_version", "latest"),
        lambda e: setattr(e.python, "user_managed_dependencies", True),
    ],
)
def test_content_hash_changes_with_what_is_built(change: Any) -> None:
    env = _hash_env()
    change(env)
    assert env.content_hash != EXPECTED_HASH


def test_user_managed_environments_hash_only_the_interpreter() -> None:
    a = Environment.from_docker_image("a", "img:1")
    b = Environment.from_docker_image("b", "img:1")
    assert b.python.conda_dependencies is not None
    b.python.conda_dependencies.add_pip_package("ignored-when-user-managed")
    assert a.content_hash == b.content_hash
    b.python.interpreter_path = "/opt/conda/bin/python"
    assert a.content_hash != b.content_hash
