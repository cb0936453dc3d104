"""Reading ``inferenceconfig.json``/YAML into an ``InferenceConfig`` (docs/configuration.md).

Paths are resolved as Azure ML's CLI did: ``sourceDirectory`` against the current working
directory of the command, and ``entryScript``/``condaFile``/``extraDockerfileSteps`` against
``sourceDirectory`` (or the CWD when there is none). modelport adds one fallback: a relative path
that does not exist under the CWD but does exist next to the config file is taken from there,
with a ``ConfigWarning`` saying so, so that ``-ic some/folder/inferenceconfig.json`` works from
anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelport.config.files import read_config_file, type_error_message, warn, warn_unknown_key
from modelport.config.inference import InferenceConfig
from modelport.errors import (
    ConfigValidationError,
    EnvironmentException,
    UserErrorException,
    WebserviceException,
)
from modelport.registry.environment import ContainerRegistry, Environment

FLAG = "--inference-config-file"
# The parser read this spelling; Microsoft's docs tables spell it extraDockerFileSteps.
STEPS_KEY, STEPS_DOCS_KEY = "extraDockerfileSteps", "extraDockerFileSteps"
_REGISTRY_FIELDS = ("address", "username", "password")


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else None


def _flag(value: Any) -> Any:
    return value if isinstance(value, bool) else None


def _version(value: Any) -> Any:
    # YAML reads `cudaVersion: 10.0` as a float; Azure ML then crashed on .lower().
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _registry(value: Any) -> Any:
    # The docs' examples give a registry address as a string; the SDK takes an object.
    if isinstance(value, str):
        return ContainerRegistry(address=value)
    if isinstance(value, Mapping):
        fields = [value.get(name) for name in _REGISTRY_FIELDS]
        if all(field is None or isinstance(field, str) for field in fields):
            return ContainerRegistry(*fields)
    return None


def _mapping(value: Any) -> Any:
    return value if isinstance(value, Mapping) else None


# file key -> (InferenceConfig parameter, reader returning the value or None if of the wrong type, expected)
_READERS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "entryScript": ("entry_script", _text, "a string"),
    "sourceDirectory": ("source_directory", _text, "a string"),
    "environment": ("environment", _mapping, "an object (a serialised Environment)"),
    "runtime": ("runtime", _text, "a string"),
    "condaFile": ("conda_file", _text, "a string"),
    STEPS_KEY: ("extra_docker_file_steps", _text, "a string"),
    "enableGpu": ("enable_gpu", _flag, "true or false"),
    "baseImage": ("base_image", _text, "a string"),
    "baseImageRegistry": (
        "base_image_registry",
        _registry,
        "a registry address or an object with string address/username/password",
    ),
    "cudaVersion": ("cuda_version", _version, 'a version such as "10.0"'),
    "description": ("description", _text, "a string"),
}
_FILE_KEY = {parameter: key for key, (parameter, _, _) in _READERS.items()}
_IGNORED = {
    "schemaFile": "is not used: input and output schemas come from the entry script's inference-schema "
    "decorators"
}


def _merge_spellings(content: dict[str, Any], source: str) -> None:
    docs_value = content.pop(STEPS_DOCS_KEY, None)
    if docs_value is None:
        return
    if content.get(STEPS_KEY) is None:
        content[STEPS_KEY] = docs_value
    elif content[STEPS_KEY] != docs_value:
        warn(f"{source}: both {STEPS_KEY} and {STEPS_DOCS_KEY} are set; using {STEPS_KEY}.")


def _read_parameters(content: Mapping[str, Any], source: str) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    errors = []
    for key, value in content.items():
        if key in _IGNORED:
            warn(f"{source}: {key} {_IGNORED[key]}.")
        elif key not in _READERS:
            warn_unknown_key(source, str(key), [*_READERS, STEPS_DOCS_KEY])
        elif value is not None:  # null means "not given", as Azure ML's dict.get() saw it
            parameter, read, expected = _READERS[key]
            converted = read(value)
            if converted is None:
                errors.append(type_error_message(key, value, expected))
            else:
                parameters[parameter] = converted
    if errors:
        raise ConfigValidationError(errors, header=f"Error parsing {FLAG} {source}:")
    return parameters


def _fall_back_to_file_folder(parameters: dict[str, Any], file_dir: Path, source: str) -> None:
    # Only the paths Azure ML resolved against the CWD: the source directory, or, without one,
    # each file path.
    if parameters.get("source_directory"):
        names: tuple[str, ...] = ("source_directory",)
    else:
        names = ("entry_script", "conda_file", "extra_docker_file_steps")
    for name in names:
        value = parameters.get(name)
        if not value or os.path.isabs(value) or os.path.exists(value):
            continue
        candidate = file_dir / value
        if candidate.exists():
            parameters[name] = str(candidate)
            warn(
                f"{source}: {_FILE_KEY[name]} {value!r} is not under the current directory {os.getcwd()}; "
                f"using {candidate}, next to the config file."
            )


def inference_config_from_dict(
    content: Mapping[str, Any],
    *,
    source: str = FLAG,
    file_dir: Path | None = None,
    environment: Environment | None = None,
) -> InferenceConfig:
    """Build an ``InferenceConfig`` from the parsed content of an ``inferenceconfig`` file.

    ``file_dir`` (the file's folder) enables the path fallback described in the module docstring.
    ``environment`` is used when the file has none (an ``environment`` in the file wins, as in
    Azure ML's CLI). Raises ``ConfigValidationError`` for values of the wrong type (all at once),
    and otherwise the first ``InferenceConfig`` validation failure, naming the file.
    """
    content = dict(content)
    _merge_spellings(content, source)
    parameters = _read_parameters(content, source)
    if file_dir is not None:
        _fall_back_to_file_folder(parameters, file_dir, source)
    if "environment" in parameters:
        try:
            parameters["environment"] = Environment.from_dict(dict(parameters["environment"]))
        except EnvironmentException as exc:
            raise EnvironmentException(f"{source}: {exc.message}") from exc
    elif environment is not None:
        parameters["environment"] = environment
    parameters.setdefault("entry_script", None)
    try:
        return InferenceConfig(**parameters)
    except (WebserviceException, UserErrorException) as exc:
        raise type(exc)(f"Error parsing {FLAG} {source}: {exc.message}") from exc


def load_inference_config(
    path: str | os.PathLike[str], *, environment: Environment | None = None
) -> InferenceConfig:
    """Read an ``inferenceconfig.json`` or YAML file into a validated ``InferenceConfig``.

    ``environment`` (e.g. from ``-e/--ev``) is used when the file defines none. An environment
    given in the file only as ``{name, version}`` is refused with a message that says to pass it
    with ``-e/--ev`` instead.
    """
    file = Path(path)
    content = read_config_file(file, what=FLAG)
    return inference_config_from_dict(
        content, source=str(file), file_dir=file.parent.resolve(), environment=environment
    )
