"""Reading inferenceconfig files: every key (docs/configuration.md), path resolution, environments, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from modelport.config import ConfigFileError, ConfigWarning, InferenceConfig, load_inference_config
from modelport.errors import ConfigValidationError, EnvironmentException, WebserviceException
from modelport.registry.environment import Environment
from tests.examples import ENVIRONMENT_EXAMPLE

# Azure ML's documented inferenceconfig.json example.
SPEC_EXAMPLE = {"entryScript": "score.py", "sourceDirectory": "./src", "environment": ENVIRONMENT_EXAMPLE}

LEGACY_YAML = """\
# legacy (pre-Environment) form
entryScript: score.py
runtime: python
condaFile: conda.yml
extraDockerfileSteps:
sourceDirectory: src
enableGpu: False
baseImage:
baseImageRegistry:
"""


def write(path: Path, content: str | dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def load_quietly(path: Path, **kwargs: object) -> InferenceConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        return load_inference_config(path, **kwargs)  # type: ignore[arg-type]


def test_spec_example_with_an_environment(project: Path) -> None:
    config = load_quietly(write(project / "inferenceconfig.json", SPEC_EXAMPLE))
    assert config.entry_script_path == (project / "src" / "score.py").resolve()
    assert config.environment is not None
    assert config.environment.name == "my-deploy-env"
    assert config.environment.environment_variables == {"MY_VAR": "1"}
    assert config.environment.docker.base_image == "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04"
    assert config.to_file_dict()["environment"] == config.environment.to_dict()


def test_legacy_yaml_form_with_empty_keys(project: Path) -> None:
    with pytest.warns(DeprecationWarning):
        config = load_quietly(write(project / "inferenceconfig.yml", LEGACY_YAML))
    assert (config.runtime, config.conda_file, config.enable_gpu, config.environment) == (
        "python",
        "conda.yml",
        False,
        None,
    )
    assert config.extra_docker_file_steps is None


@pytest.mark.parametrize("key", ["extraDockerfileSteps", "extraDockerFileSteps"])
def test_both_spellings_of_extra_docker_steps(project: Path, key: str) -> None:
    path = write(project / "ic.json", {"entryScript": "score.py", "sourceDirectory": "src", key: "steps.txt"})
    with pytest.warns(DeprecationWarning):
        assert load_quietly(path).extra_docker_file_steps == "steps.txt"


def test_both_spellings_differing_use_the_parser_s(project: Path) -> None:
    (project / "src" / "other.txt").write_text("RUN true\n")
    content = {
        "entryScript": "score.py",
        "sourceDirectory": "src",
        "extraDockerfileSteps": "steps.txt",
        "extraDockerFileSteps": "other.txt",
    }
    with (
        pytest.warns(ConfigWarning, match="both extraDockerfileSteps and extraDockerFileSteps are set"),
        pytest.warns(DeprecationWarning),
    ):
        assert (
            load_inference_config(write(project / "ic.json", content)).extra_docker_file_steps == "steps.txt"
        )


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("mcr.microsoft.com", {"address": "mcr.microsoft.com", "username": None, "password": None}),
        (
            {"address": "my.io", "username": "u", "password": "p"},
            {"address": "my.io", "username": "u", "password": "p"},
        ),
    ],
)
def test_base_image_registry_as_string_or_object(
    project: Path, registry: object, expected: dict[str, str | None]
) -> None:
    content = {
        "entryScript": "score.py",
        "sourceDirectory": "src",
        "baseImage": "img",
        "baseImageRegistry": registry,
    }
    with pytest.warns(DeprecationWarning):
        config = load_quietly(write(project / "ic.json", content))
    assert config.base_image_registry.to_dict() == expected


def test_cuda_version_written_as_a_yaml_number(project: Path) -> None:
    path = write(
        project / "ic.yml",
        "entryScript: score.py\nsourceDirectory: src\nenableGpu: true\ncudaVersion: 10.0\n",
    )
    with pytest.warns(DeprecationWarning):
        assert load_quietly(path).cuda_version == "10.0"


def test_paths_are_relative_to_the_cwd_not_the_file(project: Path) -> None:
    # Both the CWD and the file's folder have src/score.py; Azure ML used the CWD's.
    elsewhere = project / "configs"
    write(elsewhere / "src" / "score.py", "def run(x):\n    return x\n")
    config = load_quietly(write(elsewhere / "ic.json", {"entryScript": "score.py", "sourceDirectory": "src"}))
    assert config.source_directory == str((project / "src").resolve())


def test_fallback_to_the_file_s_folder_with_a_warning(project: Path) -> None:
    folder = project / "deploy"
    write(folder / "code" / "score.py", "def run(x):\n    return x\n")
    path = write(folder / "ic.json", {"entryScript": "score.py", "sourceDirectory": "code"})
    with pytest.warns(ConfigWarning) as record:
        config = load_inference_config(path)
    assert config.source_directory == str((folder / "code").resolve())
    assert [str(w.message) for w in record] == [
        f"{path}: sourceDirectory 'code' is not under the current directory {project}; "
        f"using {folder.resolve() / 'code'}, next to the config file."
    ]


def test_fallback_for_each_path_without_a_source_directory(project: Path) -> None:
    folder = project / "deploy"
    write(folder / "score2.py", "def run(x):\n    return x\n")
    with pytest.warns(ConfigWarning, match="entryScript 'score2.py' is not under the current directory"):
        config = load_inference_config(write(folder / "ic.json", {"entryScript": "score2.py"}))
    assert config.entry_script_path == folder.resolve() / "score2.py"


def test_missing_everywhere_reports_aml_s_error_against_the_cwd(project: Path) -> None:
    path = write(project / "deploy" / "ic.json", {"entryScript": "score.py", "sourceDirectory": "nowhere"})
    with pytest.raises(WebserviceException) as caught:
        load_inference_config(path)
    assert caught.value.message == (
        f"Error parsing --inference-config-file {path}: source directory {project.resolve() / 'nowhere'} "
        "doesn't exist."
    )


def test_environment_reference_in_the_file_is_refused_with_the_fix(project: Path) -> None:
    content = {
        "entryScript": "score.py",
        "sourceDirectory": "src",
        "environment": {"name": "env", "version": "2"},
    }
    path = write(project / "ic.json", content)
    with pytest.raises(EnvironmentException) as caught:
        load_inference_config(path)
    assert caught.value.message.startswith(
        f"{path}: environment {{name, version}} (env:2) names a registered"
    )
    assert "-e NAME --ev VERSION" in caught.value.message


def test_environment_argument_used_only_when_the_file_has_none(project: Path) -> None:
    given = Environment("from-cli")
    bare = write(project / "bare.json", {"entryScript": "score.py", "sourceDirectory": "src"})
    assert load_quietly(bare, environment=given).environment is given
    with_env = write(project / "full.json", SPEC_EXAMPLE)
    environment = load_quietly(with_env, environment=given).environment
    assert environment is not None
    assert environment.name == "my-deploy-env"


def test_wrong_types_all_reported_at_once(project: Path) -> None:
    path = write(project / "ic.json", {"entryScript": 5, "enableGpu": "yes", "environment": ["x"]})
    with pytest.raises(ConfigValidationError) as caught:
        load_inference_config(path)
    assert str(caught.value).splitlines() == [
        f"Error parsing --inference-config-file {path}:",
        "entryScript must be a string, got 5 (int).",
        "enableGpu must be true or false, got 'yes' (str).",
        "environment must be an object (a serialised Environment), got ['x'] (list).",
    ]


def test_unknown_and_unused_keys_are_named(project: Path) -> None:
    content = {
        "entryScript": "score.py",
        "sourceDirectory": "src",
        "schemaFile": "s.json",
        "entryscript": "x",
    }
    with pytest.warns(ConfigWarning) as record:
        load_inference_config(write(project / "ic.json", content))
    messages = [str(w.message) for w in record]
    assert any("schemaFile is not used" in message for message in messages)
    assert any(
        "unknown key 'entryscript' ignored. Did you mean 'entryScript'?" in message for message in messages
    )


def test_missing_entry_script_key(project: Path) -> None:
    with pytest.raises(WebserviceException, match="ic.json: Error, need to specify entry_script.$"):
        load_inference_config(write(project / "ic.json", {"sourceDirectory": "src"}))


def test_validation_failure_names_the_file(project: Path) -> None:
    path = write(project / "ic.json", {"entryScript": "conda.yml", "sourceDirectory": "src"})
    with pytest.raises(WebserviceException) as caught:
        load_inference_config(path)
    assert caught.value.message == (
        f"Error parsing --inference-config-file {path}: Invalid driver type. "
        "Currently only Python drivers are supported."
    )


def test_corrupted_file(project: Path) -> None:
    path = write(project / "ic.json", '{"entryScript": "score.py",, }')
    with pytest.raises(
        ConfigFileError, match=rf"Cannot parse {path}: line 1, column 28: Expecting property name"
    ):
        load_inference_config(path)
