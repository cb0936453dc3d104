"""InferenceConfig from Python: AML's signature, validation order and messages."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from modelport.config import InferenceConfig
from modelport.errors import UserErrorException, WebserviceException
from modelport.registry.environment import ContainerRegistry, Environment


def failure(**kwargs: object) -> str:
    with pytest.raises(WebserviceException) as caught:
        InferenceConfig(**kwargs)  # type: ignore[arg-type]
    return caught.value.message


def test_signature_is_aml_s() -> None:
    assert list(inspect.signature(InferenceConfig).parameters) == [
        "entry_script",
        "runtime",
        "conda_file",
        "extra_docker_file_steps",
        "source_directory",
        "enable_gpu",
        "description",
        "base_image",
        "base_image_registry",
        "cuda_version",
        "environment",
    ]


def test_source_directory_becomes_absolute_and_entry_script_is_relative_to_it(project: Path) -> None:
    config = InferenceConfig("score.py", source_directory="src", environment=Environment("env"))
    assert config.source_directory == str((project / "src").resolve())
    assert config.entry_script == "score.py"
    assert config.entry_script_path == (project / "src" / "score.py").resolve()
    os.chdir(project / "src")  # resolved at construction: moving away later changes nothing
    assert config.entry_script_path == (project / "src" / "score.py").resolve()


def test_without_source_directory_entry_script_is_relative_to_cwd(project: Path) -> None:
    assert InferenceConfig("src/score.py").entry_script_path == project / "src" / "score.py"


def test_entry_script_required() -> None:
    assert failure(entry_script=None) == "Error, need to specify entry_script."
    assert failure(entry_script="") == "Error, need to specify entry_script."


@pytest.mark.parametrize(
    "legacy",
    [
        {"runtime": "python"},
        {"conda_file": "conda.yml"},
        {"extra_docker_file_steps": "steps.txt"},
        {"enable_gpu": True},
        {"cuda_version": "10.0"},
        {"base_image": "python:3.11"},
    ],
)
def test_legacy_parameters_exclusive_with_environment(project: Path, legacy: dict[str, object]) -> None:
    with pytest.warns(DeprecationWarning):
        message = failure(
            entry_script="score.py", source_directory="src", environment=Environment("e"), **legacy
        )
    assert message == (
        "Error, unable to provide runtime, conda_file, extra_docker_file_steps, enable_gpu, cuda_version, "
        "or base_image along with an environment object."
    )


def test_missing_source_directory(project: Path) -> None:
    assert failure(entry_script="score.py", source_directory="nope") == (
        f"source directory {project.resolve() / 'nope'} doesn't exist."
    )


def test_source_directory_that_is_a_file(project: Path) -> None:
    assert failure(entry_script="score.py", source_directory="src/conda.yml").endswith("is not a directory.")


def test_missing_entry_script(project: Path) -> None:
    assert failure(entry_script="absent.py") == (
        "entry_script absent.py doesn't exist. "
        "entry_script should be path relative to current working directory"
    )
    assert failure(entry_script="absent.py", source_directory="src") == (
        f"entry_script {project.resolve() / 'src' / 'absent.py'} doesn't exist. "
        "entry_script should be path relative to source_directory"
    )


def test_only_python_entry_scripts(project: Path) -> None:
    assert failure(entry_script="conda.yml", source_directory="src") == (
        "Invalid driver type. Currently only Python drivers are supported."
    )


@pytest.mark.parametrize("name", ["my-score", "class", "2score"])
def test_entry_script_must_be_importable(project: Path, name: str) -> None:
    (project / "src" / f"{name}.py").write_text("def run(x):\n    return x\n")
    assert failure(entry_script=f"{name}.py", source_directory="src").startswith(
        f'Error, invalid name "{name}" for provided entry script. The script must be importable'
    )


def test_runtime_checked_case_insensitively(project: Path) -> None:
    with pytest.warns(DeprecationWarning, match="runtime are deprecated"):
        assert InferenceConfig("score.py", runtime="Python", source_directory="src").runtime == "Python"
        InferenceConfig("score.py", runtime="python-slim", source_directory="src")
        message = failure(entry_script="score.py", runtime="java", source_directory="src")
    assert message == "Provided runtime not supported. Possible runtimes are: spark-py|python"


def test_cuda_version(project: Path) -> None:
    with pytest.warns(DeprecationWarning):
        message = failure(entry_script="score.py", cuda_version="8.0", source_directory="src")
    assert message == "Provided cuda_version not supported. Possible cuda_versions are: 9.0|9.1|10.0"


def test_conda_file_and_docker_steps_relative_to_source_directory(project: Path) -> None:
    with pytest.warns(DeprecationWarning):
        config = InferenceConfig(
            "score.py",
            runtime="python",
            conda_file="conda.yml",
            extra_docker_file_steps="steps.txt",
            source_directory="src",
        )
        assert config.conda_file == "conda.yml"
        src = project.resolve() / "src"
        assert failure(entry_script="score.py", conda_file="missing.yml", source_directory="src") == (
            f"Conda file {src / 'missing.yml'} doesn't exist."
        )
        assert failure(entry_script="score.py", extra_docker_file_steps="x.txt", source_directory="src") == (
            f"extra docker file steps {src / 'x.txt'} doesn't exist."
        )


def test_first_failure_in_aml_order(project: Path) -> None:
    # The entry script is checked before the runtime, as in Azure ML.
    with pytest.warns(DeprecationWarning):
        assert failure(entry_script="absent.py", runtime="java").startswith(
            "entry_script absent.py doesn't exist."
        )


def test_syntax_error_in_entry_script(project: Path) -> None:
    (project / "src" / "broken.py").write_text("def run(x):\n    return (x\n")
    with pytest.raises(UserErrorException) as caught:
        InferenceConfig("broken.py", source_directory="src")
    assert "broken.py, line" in caught.value.message
    assert caught.value.message.endswith(". Please check it and try local deployment to verify.")


def test_base_image_registry(project: Path) -> None:
    with pytest.warns(DeprecationWarning):
        config = InferenceConfig(
            "score.py",
            source_directory="src",
            base_image="my.io/img",
            base_image_registry=ContainerRegistry(address="my.io"),
        )
        assert config.base_image_registry.address == "my.io"
        assert failure(
            entry_script="score.py",
            source_directory="src",
            base_image="my.io/img",
            base_image_registry=ContainerRegistry(address="my.io", username="u"),
        ).startswith("Error, base_image_registry needs username and password together")


def test_validate_configuration_after_changes(project: Path) -> None:
    config = InferenceConfig("score.py", source_directory="src")
    config.entry_script = "absent.py"
    with pytest.raises(WebserviceException, match="entry_script .*absent.py doesn't exist"):
        config.validate_configuration()


def test_to_file_dict(project: Path) -> None:
    env = Environment("env")
    config = InferenceConfig("score.py", source_directory="src", environment=env, description="d")
    assert config.to_file_dict() == {
        "entryScript": "score.py",
        "sourceDirectory": str((project / "src").resolve()),
        "environment": env.to_dict(),
        "description": "d",
    }
