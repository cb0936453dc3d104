"""``Environment``: what a model's scoring process needs (Python, packages, base image, variables).

Mirrors ``azureml.core.Environment`` (docs/environments.md): the ``python`` and ``docker`` sections with
Azure ML's defaults, the factories, the camelCase serialised form used by ``inferenceconfig.json``
(:meth:`Environment.to_dict` / :meth:`Environment.from_dict`), folders written by
``save_to_directory``, and the registry calls (``register``/``get``/``list``), which store
definitions in the workspace through :mod:`modelport.registry.environment_store`.

:attr:`Environment.content_hash` is the key under which a target builds and caches the
environment; docs/environments.md lists which fields it covers and why.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import EnvironmentException
from modelport.names import check_environment_name
from modelport.registry.conda import PYTHON_DEFAULT_VERSION, CondaDependencies, package_name

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Azure ML's default CPU inference base image. The local target builds a virtualenv on the host
# and ignores it; the Kubernetes target builds on top of it.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
DEFAULT_SHM_SIZE = "2g"
DEFAULT_ENVIRONMENT_VARIABLES = {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
DEFAULT_INTERPRETER = "python"
INFERENCING_STACK_VERSIONS = (None, "latest")
# Bump when the content-hash canonical form changes, so old and new keys never collide.
CONTENT_HASH_SCHEMA = 1

ENVIRONMENT_FILE = "azureml_environment.json"
CONDA_FILE = "conda_dependencies.yml"
DOCKERFILE_FILE = "BaseDockerfile"


class EnvironmentDefinitionWarning(UserWarning):
    """A serialised environment has keys modelport (like Azure ML) does not read."""


# -- key checking for from_dict ----------------------------------------------------------------

# Keys Azure ML writes that carry nothing for inference; accepted without a warning, not kept.
_IGNORED_TOP = {"spark", "databricks", "r", "assetId"}
_TOP_KEYS = {"name", "version", "environmentVariables", "python", "docker", "inferencingStackVersion"}
_PYTHON_KEYS = {
    "userManagedDependencies",
    "interpreterPath",
    "condaDependenciesFile",
    "baseCondaEnvironment",
    "condaDependencies",
}
_DOCKER_KEYS = {
    "enabled",
    "baseImage",
    "baseDockerfile",
    "buildContext",
    "sharedVolumes",
    "shmSize",
    "arguments",
    "baseImageRegistry",
    "gpuSupport",
}
_IGNORED_DOCKER = {"platform"}
_REGISTRY_KEYS = {"address", "username", "password"}
_IGNORED_REGISTRY = {"registryIdentity"}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _warn_unknown_keys(section: dict[str, Any], known: set[str], ignored: set[str], where: str) -> None:
    """Warn, by name, about every key Azure ML would have dropped silently."""
    for key in section:
        if key in known or key in ignored:
            continue
        camel = _camel(key) if isinstance(key, str) else key
        hint = (
            f" Keys are camelCase: did you mean {camel!r}?"
            if camel != key and camel in known
            else f" Known keys: {', '.join(sorted(known))}."
        )
        warnings.warn(
            f"{where}: unknown key {key!r} is ignored.{hint}", EnvironmentDefinitionWarning, stacklevel=4
        )


def _typed(section: dict[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    """``section[key]`` checked to be a ``kind``; ``default`` when absent or null."""
    value = section.get(key)
    if value is None:
        return copy.deepcopy(default)
    if not isinstance(value, kind):
        raise EnvironmentException(
            f"{where}.{key} must be {kind.__name__}, got {type(value).__name__} {value!r}. "
            "Fix the value in the file."
        )
    return copy.deepcopy(value)


def _section(payload: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EnvironmentException(f"{where}.{key} must be an object, got {type(value).__name__}.")
    return value


# -- sections ----------------------------------------------------------------------------------


class ContainerRegistry:
    """Address and credentials of a private registry holding the base image."""

    def __init__(self, address: str | None = None, username: str | None = None, password: str | None = None):
        self.address = address
        self.username = username
        self.password = password

    def to_dict(self) -> dict[str, str | None]:
        """The camelCase form (``address``, ``username``, ``password``)."""
        return {"address": self.address, "username": self.username, "password": self.password}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContainerRegistry) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ContainerRegistry(address={self.address!r}, username={self.username!r}, password=***)"


class PythonSection:
    """How the environment's Python is provided: a built conda/pip spec, or the image's own Python."""

    def __init__(
        self,
        user_managed_dependencies: bool = False,
        interpreter_path: str = DEFAULT_INTERPRETER,
        conda_dependencies: CondaDependencies | None = None,
        conda_dependencies_file: str | None = None,
        base_conda_environment: str | None = None,
    ) -> None:
        self.user_managed_dependencies = user_managed_dependencies
        self.interpreter_path = interpreter_path
        self.conda_dependencies = conda_dependencies
        self.conda_dependencies_file = conda_dependencies_file
        self.base_conda_environment = base_conda_environment

    def to_dict(self) -> dict[str, Any]:
        """The camelCase ``python`` section."""
        return {
            "userManagedDependencies": self.user_managed_dependencies,
            "interpreterPath": self.interpreter_path,
            "condaDependenciesFile": self.conda_dependencies_file,
            "baseCondaEnvironment": self.base_conda_environment,
            "condaDependencies": self.conda_dependencies.as_dict() if self.conda_dependencies else None,
        }

    @classmethod
    def from_dict(cls, section: dict[str, Any], where: str) -> PythonSection:
        """Read a camelCase ``python`` section; absent keys get no defaults (no conda spec)."""
        _warn_unknown_keys(section, _PYTHON_KEYS, set(), where)
        conda = section.get("condaDependencies")
        return cls(
            user_managed_dependencies=_typed(section, "userManagedDependencies", bool, where, False),
            interpreter_path=_typed(section, "interpreterPath", str, where, DEFAULT_INTERPRETER),
            conda_dependencies=(
                None
                if conda is None
                else CondaDependencies.from_dict(conda, source=f"{where}.condaDependencies")
            ),
            conda_dependencies_file=_typed(section, "condaDependenciesFile", str, where, None),
            base_conda_environment=_typed(section, "baseCondaEnvironment", str, where, None),
        )


def _deprecated_flag(field: str) -> property:
    """A docker flag Azure ML deprecated: readable, settable with a DeprecationWarning, ignored."""

    def getter(self: DockerSection) -> Any:
        return getattr(self, f"_{field}")

    def setter(self: DockerSection, value: Any) -> None:
        warnings.warn(
            f"docker.{field} is deprecated and ignored for inference.", DeprecationWarning, stacklevel=2
        )
        setattr(self, f"_{field}", value)

    return property(getter, setter, doc=f"Deprecated ``{field}`` flag (ignored for inference).")


class DockerSection:
    """The image the environment is built on: ``base_image``, ``base_dockerfile`` or ``build_context``.

    The three are mutually exclusive as in Azure ML: setting one resets the others, with a warning.
    ``enabled``, ``gpu_support``, ``shm_size``, ``arguments`` and ``shared_volumes`` are deprecated
    and ignored for inference; they are kept so that files round-trip.
    """

    def __init__(
        self,
        base_image: str | None = None,
        base_dockerfile: str | None = None,
        build_context: dict[str, Any] | None = None,
        base_image_registry: ContainerRegistry | None = None,
        *,
        enabled: bool = False,
        gpu_support: bool = False,
        shm_size: str | None = None,
        arguments: list[str] | None = None,
        shared_volumes: bool = True,
    ) -> None:
        self._base_image = base_image
        self._base_dockerfile = base_dockerfile
        self._build_context = build_context
        self.base_image_registry = base_image_registry or ContainerRegistry()
        self._enabled = enabled
        self._gpu_support = gpu_support
        self._shm_size = shm_size
        self._arguments = list(arguments or [])
        self._shared_volumes = shared_volumes

    def _reset_others(self, keep: str) -> None:
        for field in ("base_image", "base_dockerfile", "build_context"):
            if field != keep and getattr(self, f"_{field}") is not None:
                warnings.warn(
                    f"docker.{keep} is set, so docker.{field} is reset to None "
                    "(base_image, base_dockerfile and build_context are mutually exclusive).",
                    UserWarning,
                    stacklevel=3,
                )
                setattr(self, f"_{field}", None)

    @property
    def base_image(self) -> str | None:
        """The base image reference, such as ``python:3.11-slim``."""
        return self._base_image

    @base_image.setter
    def base_image(self, value: str | None) -> None:
        if value is not None:
            self._reset_others("base_image")
        self._base_image = value

    @property
    def base_dockerfile(self) -> str | None:
        """The content of a Dockerfile to build the base image from."""
        return self._base_dockerfile

    @base_dockerfile.setter
    def base_dockerfile(self, value: str | None) -> None:
        if value is not None:
            self._reset_others("base_dockerfile")
        self._base_dockerfile = value

    @property
    def build_context(self) -> dict[str, Any] | None:
        """A Docker build context description (camelCase object, as Azure ML serialises it)."""
        return self._build_context

    @build_context.setter
    def build_context(self, value: dict[str, Any] | None) -> None:
        if value is not None:
            self._reset_others("build_context")
        self._build_context = value

    enabled = _deprecated_flag("enabled")
    gpu_support = _deprecated_flag("gpu_support")
    shm_size = _deprecated_flag("shm_size")
    arguments = _deprecated_flag("arguments")
    shared_volumes = _deprecated_flag("shared_volumes")

    def to_dict(self) -> dict[str, Any]:
        """The camelCase ``docker`` section."""
        return {
            "enabled": self._enabled,
            "baseImage": self._base_image,
            "baseDockerfile": self._base_dockerfile,
            "buildContext": copy.deepcopy(self._build_context),
            "sharedVolumes": self._shared_volumes,
            "shmSize": self._shm_size,
            "arguments": list(self._arguments),
            "baseImageRegistry": self.base_image_registry.to_dict(),
            "platform": {"os": "Linux", "architecture": "amd64"},
        }

    @classmethod
    def from_dict(cls, section: dict[str, Any], where: str) -> DockerSection:
        """Read a camelCase ``docker`` section; absent keys stay unset (no default base image)."""
        _warn_unknown_keys(section, _DOCKER_KEYS, _IGNORED_DOCKER, where)
        image = _typed(section, "baseImage", str, where, None)
        dockerfile = _typed(section, "baseDockerfile", str, where, None)
        context = _typed(section, "buildContext", dict, where, None)
        if sum(v is not None for v in (image, dockerfile, context)) > 1:
            raise EnvironmentException(
                f"{where}: baseImage, baseDockerfile and buildContext are mutually exclusive; "
                "keep only one of them."
            )
        registry_where = f"{where}.baseImageRegistry"
        registry = _section(section, "baseImageRegistry", where) or {}
        _warn_unknown_keys(registry, _REGISTRY_KEYS, _IGNORED_REGISTRY, registry_where)
        return cls(
            base_image=image,
            base_dockerfile=dockerfile,
            build_context=context,
            base_image_registry=ContainerRegistry(
                *(
                    _typed(registry, key, str, registry_where, None)
                    for key in ("address", "username", "password")
                )
            ),
            enabled=_typed(section, "enabled", bool, where, False),
            gpu_support=_typed(section, "gpuSupport", bool, where, False),
            shm_size=_typed(section, "shmSize", str, where, None),
            arguments=_typed(section, "arguments", list, where, []),
            shared_volumes=_typed(section, "sharedVolumes", bool, where, True),
        )


# -- references --------------------------------------------------------------------------------


def is_environment_reference(payload: dict[str, Any]) -> bool:
    """True when ``payload`` has only ``name`` and/or ``version``: it points at a registered environment."""
    return bool(payload) and set(payload) <= {"name", "version"}


@dataclass(frozen=True)
class EnvironmentReference:
    """A pointer to a registered environment, written in a file as ``{"name": ..., "version": ...}``.

    Azure ML v1 turns such an object into an unusable ``EnvironmentReference``; modelport resolves
    it against a workspace (a strict superset of v1).
    """

    name: str
    version: str | None = None

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> EnvironmentReference:
        """Read ``{"name": str, "version": str|int|null}``."""
        if not is_environment_reference(payload) or not isinstance(payload.get("name"), str):
            raise EnvironmentException(
                "An environment reference needs a string 'name' and an optional 'version', nothing else."
            )
        version = payload.get("version")
        return cls(name=payload["name"], version=None if version is None else str(version))

    def resolve(self, workspace: Workspace) -> Environment:
        """Return the registered environment (the latest version when none is given)."""
        return Environment.get(workspace, self.name, version=self.version)


# -- the environment ---------------------------------------------------------------------------


class Environment:
    """A named, versionable definition of the Python environment a model's entry script runs in."""

    def __init__(self, name: str) -> None:
        self.name = check_environment_name(name)
        self.version: str | None = None
        self.python = PythonSection(conda_dependencies=CondaDependencies())
        self.docker = DockerSection(base_image=DEFAULT_CPU_IMAGE, shm_size=DEFAULT_SHM_SIZE)
        self.environment_variables: dict[str, str] = dict(DEFAULT_ENVIRONMENT_VARIABLES)
        self.inferencing_stack_version: str | None = None

    # -- serialised form --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The camelCase form (as in ``inferenceconfig.json``), JSON-compatible.

        docs/environments.md, "The serialised form", lists its keys."""
        return {
            "name": self.name,
            "version": self.version,
            "environmentVariables": dict(self.environment_variables),
            "python": self.python.to_dict(),
            "docker": self.docker.to_dict(),
            "inferencingStackVersion": self.inferencing_stack_version,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Environment:
        """Build an environment from its camelCase form, with Azure ML's deserialisation rules.

        Missing sections get no defaults (no conda spec, no base image, no variables). Unknown or
        snake_case keys are ignored as in Azure ML, but each is named in an
        :class:`EnvironmentDefinitionWarning`. A payload with only ``name``/``version`` points at a
        registered environment and raises :class:`EnvironmentException` saying how to use one
        (see :class:`EnvironmentReference` to resolve it instead).
        """
        where = "environment"
        if not isinstance(payload, dict):
            raise EnvironmentException(f"{where} must be an object, got {type(payload).__name__}.")
        if is_environment_reference(payload):
            ref = f"{payload.get('name')}:{payload.get('version') or 'latest'}"
            raise EnvironmentException(
                f"{where} {{name, version}} ({ref}) names a registered environment instead of defining one. "
                "Fix: pass it on the command line with -e NAME --ev VERSION, or in Python use "
                "Environment.get(workspace, name, version) (EnvironmentReference resolves such objects)."
            )
        name = payload.get("name")
        if not isinstance(name, str):
            raise EnvironmentException(
                f'{where}.name is required and must be a string, got {name!r}. Fix: add "name": "my-env".'
            )
        _warn_unknown_keys(payload, _TOP_KEYS, _IGNORED_TOP, where)
        env = cls(name)
        version = payload.get("version")
        env.version = None if version is None else str(version)
        variables = _typed(payload, "environmentVariables", dict, where, {})
        env.environment_variables = {str(k): str(v) for k, v in variables.items()}
        python = _section(payload, "python", where)
        env.python = (
            PythonSection.from_dict(python, f"{where}.python") if python is not None else PythonSection()
        )
        docker = _section(payload, "docker", where)
        env.docker = (
            DockerSection.from_dict(docker, f"{where}.docker") if docker is not None else DockerSection()
        )
        env.inferencing_stack_version = _typed(payload, "inferencingStackVersion", str, where, None)
        if env.inferencing_stack_version not in INFERENCING_STACK_VERSIONS:
            raise EnvironmentException(
                f'{where}.inferencingStackVersion must be null or "latest", got '
                f"{env.inferencing_stack_version!r}."
            )
        return env

    # -- factories --------------------------------------------------------------------------

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | Path) -> Environment:
        """An environment whose dependencies come from a conda YAML file.

        A file without a ``python`` entry gets the default Python pinned, with a warning.
        """
        env = cls(name)
        env.python.conda_dependencies = _conda_from_file(file_path)
        return env

    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | Path, pip_version: str | None = None
    ) -> Environment:
        """An environment whose pip section is the given requirements file (conda package ``pip`` added)."""
        env = cls(name)
        env.python.conda_dependencies = _conda_from_requirements(file_path, pip_version)
        return env

    @classmethod
    def from_docker_image(
        cls,
        name: str,
        image: str,
        container_registry: ContainerRegistry | None = None,
        conda_specification: str | Path | None = None,
        pip_requirements: str | Path | None = None,
    ) -> Environment:
        """An environment on ``image``; without a conda or pip file, the image's Python is used as-is."""
        env = cls(name)
        env.docker.base_image = image
        if container_registry is not None:
            env.docker.base_image_registry = container_registry
        env._set_image_dependencies(conda_specification, pip_requirements)
        return env

    @classmethod
    def from_dockerfile(
        cls,
        name: str,
        dockerfile: str | Path,
        conda_specification: str | Path | None = None,
        pip_requirements: str | Path | None = None,
    ) -> Environment:
        """An environment built from a Dockerfile (its content, or the path of a file holding it)."""
        env = cls(name)
        path = Path(dockerfile)
        is_file = "\n" not in str(dockerfile) and path.is_file()
        env.docker.base_image = None  # the Dockerfile replaces the default image: nothing to warn about
        env.docker.base_dockerfile = path.read_text(encoding="utf-8") if is_file else str(dockerfile)
        env._set_image_dependencies(conda_specification, pip_requirements)
        return env

    def _set_image_dependencies(
        self, conda_specification: str | Path | None, pip_requirements: str | Path | None
    ) -> None:
        if conda_specification is not None and pip_requirements is not None:
            raise EnvironmentException(
                "Give either conda_specification or pip_requirements, not both. "
                "Fix: put the pip requirements in the conda file's pip section."
            )
        if conda_specification is not None:
            self.python.conda_dependencies = _conda_from_file(conda_specification)
        elif pip_requirements is not None:
            self.python.conda_dependencies = _conda_from_requirements(pip_requirements, None)
        else:
            self.python.user_managed_dependencies = True

    # -- folders ----------------------------------------------------------------------------

    def save_to_directory(self, path: str | Path, overwrite: bool = False) -> None:
        """Write ``azureml_environment.json``, ``conda_dependencies.yml``, ``BaseDockerfile`` to ``path``."""
        folder = Path(path)
        if folder.exists() and not overwrite:
            raise EnvironmentException(
                f"Cannot save environment to {str(folder)!r}: it already exists. Fix: pass overwrite=True "
                "or choose a new folder."
            )
        folder.mkdir(parents=True, exist_ok=True)
        definition = self.to_dict()
        definition["python"]["condaDependencies"] = None
        definition["docker"]["baseDockerfile"] = None
        (folder / ENVIRONMENT_FILE).write_text(json.dumps(definition, indent=4) + "\n", encoding="utf-8")
        conda_path = folder / CONDA_FILE
        if self.python.conda_dependencies is not None:
            self.python.conda_dependencies.save(conda_path)
        else:
            conda_path.unlink(missing_ok=True)
        dockerfile_path = folder / DOCKERFILE_FILE
        if self.docker.base_dockerfile is not None:
            dockerfile_path.write_text(self.docker.base_dockerfile, encoding="utf-8")
        else:
            dockerfile_path.unlink(missing_ok=True)

    @classmethod
    def load_from_directory(cls, path: str | Path) -> Environment:
        """Read a folder written by :meth:`save_to_directory` (or by Azure ML)."""
        folder = Path(path)
        definition_path = folder / ENVIRONMENT_FILE
        try:
            payload = json.loads(definition_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EnvironmentException(
                f"Cannot load an environment from {str(folder)!r}: {ENVIRONMENT_FILE} is missing or "
                f"unreadable ({exc.strerror or exc}). Fix: give a folder written by save_to_directory."
            ) from exc
        except json.JSONDecodeError as exc:
            raise EnvironmentException(f"{definition_path} is not valid JSON: {exc}") from exc
        env = cls.from_dict(payload)
        if (folder / CONDA_FILE).is_file():
            env.python.conda_dependencies = CondaDependencies(folder / CONDA_FILE)
        if (folder / DOCKERFILE_FILE).is_file():
            env.docker.base_dockerfile = (folder / DOCKERFILE_FILE).read_text(encoding="utf-8")
        return env

    def clone(self, new_name: str) -> Environment:
        """A deep copy under ``new_name``, unregistered (no version)."""
        env = Environment.from_dict(self.to_dict())
        env.name = check_environment_name(new_name)
        env.version = None
        return env

    # -- the build key ----------------------------------------------------------------------

    def build_spec(self) -> dict[str, Any]:
        """What determines the built environment, in canonical form (the input of :attr:`content_hash`).

        Left out on purpose: ``name`` and ``version`` (identity, not content: two names with the same
        spec share one build), environment variables (set when a replica starts, not built in),
        registry credentials (secrets, and they do not change the image) and the deprecated docker
        flags (ignored for inference). Pip and conda package lists are sorted (install order does not
        change the result); channels and pip options keep their order (it sets priority).
        """
        python = self.python
        conda = python.conda_dependencies
        if python.user_managed_dependencies:
            python_spec: dict[str, Any] = {"userManaged": True, "interpreterPath": python.interpreter_path}
        else:
            python_spec = {
                "userManaged": False,
                "pythonVersion": (conda.get_python_version() if conda else None) or PYTHON_DEFAULT_VERSION,
                "channels": conda.conda_channels if conda else [],
                "condaPackages": sorted(
                    p.strip() for p in (conda.conda_packages if conda else []) if package_name(p) != "python"
                ),
                "pipPackages": sorted(p.strip() for p in (conda.pip_packages if conda else [])),
                "pipOptions": [o.strip() for o in (conda.pip_options if conda else [])],
                "condaDependenciesFile": python.conda_dependencies_file,
                "baseCondaEnvironment": python.base_conda_environment,
            }
        docker = self.docker
        return {
            "schema": CONTENT_HASH_SCHEMA,
            "python": python_spec,
            "docker": {
                "baseImage": docker.base_image,
                "baseDockerfile": docker.base_dockerfile,
                "buildContext": docker.build_context,
                "registry": docker.base_image_registry.address,
            },
            "inferencingStackVersion": self.inferencing_stack_version,
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of :meth:`build_spec` as canonical JSON: sorted keys, no spaces, ASCII only."""
        canonical = json.dumps(self.build_spec(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    # -- registry ---------------------------------------------------------------------------

    def register(self, workspace: Workspace) -> Environment:
        """Store this definition as the next version of its name; return the registered environment.

        Registering a definition identical to the latest version of that name returns that
        version instead of creating a new one (as Azure ML does).
        """
        from modelport.registry.environment_store import register_environment

        return register_environment(workspace, self).environment

    @staticmethod
    def get(
        workspace: Workspace, name: str, version: str | int | None = None, label: str | None = None
    ) -> Environment:
        """The registered environment ``name`` at ``version`` (default: the latest)."""
        from modelport.registry.environment_store import get_environment

        if label is not None:
            if version is not None:
                raise EnvironmentException("Give either version or label to Environment.get, not both.")
            raise EnvironmentException(
                f"Environment labels are not supported by modelport (label {label!r}). Fix: pass version=."
            )
        return get_environment(workspace, name, version).environment

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """The latest version of every registered environment, by name (as Azure ML)."""
        from modelport.registry.environment_store import list_environments

        return {record.environment.name: record.environment for record in list_environments(workspace)}

    # -- plumbing ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Environment):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return json.dumps(self.to_dict(), indent=4)


def _conda_from_file(file_path: str | Path) -> CondaDependencies:
    conda = CondaDependencies(file_path)
    if conda.get_python_version() is None:
        warnings.warn(
            f"No Python version provided in {str(file_path)!r}; pinning python={PYTHON_DEFAULT_VERSION}. "
            "Fix: add a 'python=3.x' entry to the dependencies to choose the version.",
            UserWarning,
            stacklevel=3,
        )
        conda.set_python_version(PYTHON_DEFAULT_VERSION)
    return conda


_NESTED_REQUIREMENTS = re.compile(r"^(-r|-c|--requirement|--constraint)\b")


def _conda_from_requirements(file_path: str | Path, pip_version: str | None) -> CondaDependencies:
    path = Path(file_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EnvironmentException(
            f"Cannot read pip requirements file {str(path)!r}: {exc.strerror or exc}. "
            "Fix: give the path of an existing requirements.txt."
        ) from exc
    requirements = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if _NESTED_REQUIREMENTS.match(line):
            raise EnvironmentException(
                f"{path}: {line!r} includes another file, which the environment cannot carry. "
                "Fix: copy that file's requirements into this one."
            )
        requirements.append(line)
    conda = CondaDependencies.create(python_version=PYTHON_DEFAULT_VERSION)
    conda.add_conda_package(f"pip={pip_version}" if pip_version else "pip")
    conda.set_pip_requirements(requirements)
    return conda
