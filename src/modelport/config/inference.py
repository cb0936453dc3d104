"""``InferenceConfig``: the entry script, the folder shipped with it, and the environment it runs in.

Mirrors ``azureml.core.model.InferenceConfig`` (docs/configuration.md, "InferenceConfig validation"): the same
signature (positional order included), validation at construction in Azure ML's order, raising
the first failure with Azure ML's message. The legacy image parameters (``runtime``,
``conda_file``, ``extra_docker_file_steps``, ``enable_gpu``, ``cuda_version``, ``base_image``,
``base_image_registry``) are accepted and validated so that old code and files load; they are
exclusive with ``environment``.
"""

from __future__ import annotations

import ast
import keyword
import os
import warnings
from pathlib import Path
from typing import Any

from modelport.errors import UserErrorException, WebserviceException
from modelport.registry.environment import ContainerRegistry, Environment

# 'python-slim' is accepted but, as in Azure ML, not advertised in the error message.
SUPPORTED_RUNTIMES = ("spark-py", "python", "python-slim")
DOCUMENTED_RUNTIMES = ("spark-py", "python")
SUPPORTED_CUDA_VERSIONS = ("9.0", "9.1", "10.0")
LEGACY_PARAMETERS = (
    "runtime",
    "conda_file",
    "extra_docker_file_steps",
    "enable_gpu",
    "cuda_version",
    "base_image",
)


def _joined(source_directory: str | None, path: str) -> str:
    # Azure ML's joinPath: relative to the source directory when there is one, else to the CWD.
    return os.path.join(source_directory, path) if source_directory else path


def _require_file(path: str, what: str, extra: str = "") -> None:
    if not os.path.isfile(path):
        raise WebserviceException(f"{what} {path} doesn't exist.{extra}")


class InferenceConfig:
    """How to run a model: entry script, source directory and environment (or the legacy image parameters).

    Construction validates (``validate_configuration``) and raises ``WebserviceException`` on
    the first problem, in Azure ML's order; a syntax error in the entry script raises
    ``UserErrorException``. ``source_directory`` becomes an absolute real path, as in Azure ML.
    """

    def __init__(
        self,
        entry_script: str | None,
        runtime: str | None = None,
        conda_file: str | None = None,
        extra_docker_file_steps: str | None = None,
        source_directory: str | None = None,
        enable_gpu: bool | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: ContainerRegistry | None = None,
        cuda_version: str | None = None,
        environment: Environment | None = None,
    ) -> None:
        self.entry_script = entry_script
        self.runtime = runtime
        self.conda_file = conda_file
        self.extra_docker_file_steps = extra_docker_file_steps
        self.source_directory = source_directory
        self.enable_gpu = enable_gpu
        self.description = description
        self.base_image = base_image
        self.base_image_registry = base_image_registry or ContainerRegistry()
        self.cuda_version = cuda_version
        self.environment = environment
        legacy = [name for name in LEGACY_PARAMETERS if getattr(self, name)]
        if legacy:
            warnings.warn(
                f"InferenceConfig parameters {', '.join(legacy)} are deprecated (as in Azure ML); "
                "describe dependencies with an Environment instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        self.validate_configuration()

    def __repr__(self) -> str:
        environment = self.environment.name if self.environment else None
        return (
            f"InferenceConfig(entry_script={self.entry_script!r}, source_directory="
            f"{self.source_directory!r}, environment={environment!r}, runtime={self.runtime!r})"
        )

    @property
    def entry_script_path(self) -> Path:
        """The entry script's absolute path (relative to ``source_directory`` if set, else to the CWD)."""
        return Path(os.path.abspath(_joined(self.source_directory, self.entry_script or "")))

    def validate_configuration(self) -> None:
        """Check the configuration; raise the first failure, in Azure ML's order, with its message."""
        if not self.entry_script:
            raise WebserviceException("Error, need to specify entry_script.")
        if self.environment and any(getattr(self, name) for name in LEGACY_PARAMETERS):
            raise WebserviceException(
                "Error, unable to provide runtime, conda_file, extra_docker_file_steps, enable_gpu, "
                "cuda_version, or base_image along with an environment object."
            )
        # Azure ML's base_image/base_dockerfile exclusivity check is enforced by Environment itself,
        # and its "azureml-defaults missing" warning does not apply: modelport brings its own server.
        if self.source_directory:
            self.source_directory = os.path.realpath(self.source_directory)
            if not os.path.exists(self.source_directory):
                raise WebserviceException(f"source directory {self.source_directory} doesn't exist.")
            if not os.path.isdir(self.source_directory):
                raise WebserviceException(f"source directory {self.source_directory} is not a directory.")
        relative_to = "source_directory" if self.source_directory else "current working directory"
        _require_file(
            _joined(self.source_directory, self.entry_script),
            "entry_script",
            f" entry_script should be path relative to {relative_to}",
        )
        script_name, extension = os.path.splitext(os.path.basename(self.entry_script))
        if extension != ".py":
            raise WebserviceException("Invalid driver type. Currently only Python drivers are supported.")
        if not script_name.isidentifier() or keyword.iskeyword(script_name):
            raise WebserviceException(
                f'Error, invalid name "{script_name}" for provided entry script. The script must be '
                "importable as a valid python module, and must adhere to standard module naming. This means "
                "it must be a valid python identifier and not a part of the set of python standard keywords."
            )
        if self.runtime and self.runtime.lower() not in SUPPORTED_RUNTIMES:
            raise WebserviceException(
                f"Provided runtime not supported. Possible runtimes are: {'|'.join(DOCUMENTED_RUNTIMES)}"
            )
        if self.cuda_version is not None and self.cuda_version.lower() not in SUPPORTED_CUDA_VERSIONS:
            raise WebserviceException(
                "Provided cuda_version not supported. "
                f"Possible cuda_versions are: {'|'.join(SUPPORTED_CUDA_VERSIONS)}"
            )
        if self.conda_file:
            _require_file(_joined(self.source_directory, self.conda_file), "Conda file")
        if self.extra_docker_file_steps:
            _require_file(
                _joined(self.source_directory, self.extra_docker_file_steps), "extra docker file steps"
            )
        self._check_registry()
        self._check_syntax()

    def _check_registry(self) -> None:
        # An address alone is a public registry (the docs' string form); credentials come in pairs.
        registry = self.base_image_registry
        if bool(registry.username) != bool(registry.password) or (registry.username and not registry.address):
            raise WebserviceException(
                "Error, base_image_registry needs username and password together, with an address "
                "(or an address alone for a public registry)."
            )

    def _check_syntax(self) -> None:
        path = self.entry_script_path
        try:
            ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            raise UserErrorException(f"{exc}. Please check it and try local deployment to verify.") from exc

    def to_file_dict(self) -> dict[str, Any]:
        """The ``inferenceconfig.json`` form (camelCase) of what is set; ``sourceDirectory`` is absolute."""
        values = {
            "entryScript": self.entry_script,
            "sourceDirectory": self.source_directory,
            "environment": self.environment.to_dict() if self.environment else None,
            "runtime": self.runtime,
            "condaFile": self.conda_file,
            "extraDockerfileSteps": self.extra_docker_file_steps,
            "enableGpu": self.enable_gpu,
            "baseImage": self.base_image,
            "baseImageRegistry": self.base_image_registry.to_dict()
            if self.base_image_registry.address
            else None,
            "cudaVersion": self.cuda_version,
            "description": self.description,
        }
        return {key: value for key, value in values.items() if value is not None}
