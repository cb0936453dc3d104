"""``CondaDependencies``: the conda/pip dependency spec of an environment, as in Azure ML v1.

The spec is kept as the plain structure of a conda environment file (``name``, ``channels``,
``dependencies`` with one optional ``{"pip": [...]}`` entry), so that it reads and writes the
users' existing ``conda_dependencies.yml`` files unchanged apart from comments.

Defaults (see docs/environments.md): like Azure ML, a new ``CondaDependencies()`` holds
``python=<default>``, pip ``azureml-defaults`` and channels ``anaconda``, ``conda-forge``; unlike
Azure ML (3.8.13), the default Python is the running interpreter's ``major.minor``, because
modelport builds environments with the local Pythons.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import EnvironmentException

PYTHON_DEFAULT_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT_CHANNELS = ("anaconda", "conda-forge")
DEFAULT_PIP_PACKAGES = ("azureml-defaults",)
DEFAULT_CONDA_ENV_NAME = "project_environment"

_CHANNELS = "channels"
_PACKAGES = "dependencies"
_PIP = "pip"
_PYTHON = "python"
_VALID_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
# Everything after the bare name: extras, version operators, markers, URL references.
_NAME_END = re.compile(r"[\[=<>~!;@\s]")


def package_name(requirement: str) -> str:
    """Return the normalised distribution name of a pip or conda requirement string.

    Names compare case-insensitively with ``-``, ``_`` and ``.`` equivalent (PEP 503), so that
    ``add_pip_package("Scikit_Learn==1.4")`` replaces an earlier ``scikit-learn``.
    """
    text = requirement.strip()
    if text.endswith(".whl"):
        # Wheel file names (possibly URLs) start with the distribution name (PEP 427).
        text = text.rsplit("/", 1)[-1].split("-", 1)[0]
    else:
        text = _NAME_END.split(text, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", text).lower()


def _is_option(item: str) -> bool:
    return item.startswith("-")


def _python_version_of(requirement: str) -> str | None:
    # "python=3.8.13" -> "3.8.13", "python==3.8" -> "3.8", "python>=3.8" -> ">=3.8", "python" -> None.
    rest = requirement.strip()[len(_PYTHON) :].strip()
    rest = rest.lstrip("=").strip()
    return rest or None


def _is_python(item: object) -> bool:
    return isinstance(item, str) and package_name(item) == _PYTHON


class CondaDependencies:
    """Manages an environment's conda and pip dependencies (``azureml.core.conda_dependencies``).

    ``CondaDependencies()`` is the default spec; ``CondaDependencies(path)`` loads a conda YAML file.
    """

    def __init__(self, conda_dependencies_file_path: str | Path | None = None) -> None:
        if conda_dependencies_file_path is None:
            self._spec: dict[str, Any] = {
                "name": DEFAULT_CONDA_ENV_NAME,
                _PACKAGES: [f"{_PYTHON}={PYTHON_DEFAULT_VERSION}", {_PIP: list(DEFAULT_PIP_PACKAGES)}],
                _CHANNELS: list(DEFAULT_CHANNELS),
            }
            return
        path = Path(conda_dependencies_file_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EnvironmentException(
                f"Cannot read conda specification file {str(path)!r}: {exc.strerror or exc}. "
                "Fix: give the path of an existing conda YAML file."
            ) from exc
        try:
            structure = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise EnvironmentException(
                f"Conda specification file {str(path)!r} is not valid YAML: {exc}"
            ) from exc
        self._spec = self._validated(structure, source=str(path))

    @classmethod
    def from_dict(cls, structure: object, *, source: str = "condaDependencies") -> CondaDependencies:
        """Build from the structure of a conda environment file (as found in serialised environments)."""
        instance = cls.__new__(cls)
        instance._spec = cls._validated(structure, source=source)
        return instance

    @staticmethod
    def _validated(structure: object, *, source: str) -> dict[str, Any]:
        if not isinstance(structure, dict):
            raise EnvironmentException(
                f"Environment error: {source} is not a valid conda specification (expected a mapping "
                f"with 'name', 'channels' and 'dependencies', got {type(structure).__name__})."
            )
        for key in structure:
            if key not in _VALID_KEYS:
                raise EnvironmentException(
                    f"Environment error: unknown {key} key in environment specification {source}. "
                    f"Valid keys: {', '.join(_VALID_KEYS)}."
                )
        spec = copy.deepcopy(structure)
        channels = spec.get(_CHANNELS)
        if channels is not None and (
            not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)
        ):
            raise EnvironmentException(
                f"Environment error: 'channels' in {source} must be a list of strings."
            )
        for item in spec.get(_PACKAGES) or []:
            if isinstance(item, str):
                continue
            pip_entry = isinstance(item, dict) and list(item) == [_PIP]
            if not pip_entry or not all(isinstance(p, str) for p in item[_PIP] or []):
                raise EnvironmentException(
                    f"Environment error: dependency {item!r} in {source} is neither a package string "
                    "nor a 'pip:' list of strings. Fix: quote version pins such as \"numpy=1.26\"."
                )
            item[_PIP] = list(item[_PIP] or [])
        if spec.get(_PACKAGES) is None and _PACKAGES in spec:
            spec[_PACKAGES] = []
        return spec

    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str = PYTHON_DEFAULT_VERSION,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """Return a spec with the given packages; without ``pip_packages``, pip gets ``azureml-defaults``.

        ``pip_indexurl`` becomes the pip option ``--index-url``. ``pin_sdk_version`` is accepted for
        compatibility and has no effect: there is no Azure ML SDK version to pin ``azureml-*`` to,
        and modelport's runtime provides what ``azureml-defaults`` stands for.
        """
        del pin_sdk_version
        deps = CondaDependencies()
        if pip_indexurl:
            deps.set_pip_option(f"--index-url {pip_indexurl}")
        deps.set_python_version(python_version)
        if pip_packages is not None:
            for package in deps.pip_packages:
                deps.remove_pip_package(package)
            for package in pip_packages:
                deps.add_pip_package(package)
        for package in conda_packages or []:
            deps.add_conda_package(package)
        return deps

    # -- reading ---------------------------------------------------------------------------

    def _dependencies(self) -> list[Any]:
        packages: list[Any] = self._spec.setdefault(_PACKAGES, [])
        return packages

    def _pip_section(self) -> list[str] | None:
        for item in self._spec.get(_PACKAGES) or []:
            if isinstance(item, dict):
                pip: list[str] = item[_PIP]
                return pip
        return None

    @property
    def conda_channels(self) -> list[str]:
        """The conda channels (a copy)."""
        return list(self._spec.get(_CHANNELS) or [])

    @property
    def conda_packages(self) -> list[str]:
        """The conda packages, ``python=...`` included (a copy)."""
        return [item for item in self._spec.get(_PACKAGES) or [] if isinstance(item, str)]

    @property
    def pip_packages(self) -> list[str]:
        """The pip requirements, options excluded (a copy)."""
        return [item for item in self._pip_section() or [] if not _is_option(item)]

    @property
    def pip_options(self) -> list[str]:
        """The pip options such as ``--index-url URL`` (a copy)."""
        return [item for item in self._pip_section() or [] if _is_option(item)]

    def get_python_version(self) -> str | None:
        """Return the version of the ``python`` conda package (``"3.11"``), or None if not pinned."""
        for item in self._spec.get(_PACKAGES) or []:
            if _is_python(item):
                return _python_version_of(item)
        return None

    def as_dict(self) -> dict[str, Any]:
        """Return the conda environment structure (a deep copy, JSON-compatible)."""
        return copy.deepcopy(self._spec)

    # -- editing ---------------------------------------------------------------------------

    def set_python_version(self, version: str) -> None:
        """Pin ``python=<version>``, replacing an existing python entry in place."""
        deps = self._dependencies()
        entry = f"{_PYTHON}={version}"
        for index, item in enumerate(deps):
            if _is_python(item):
                deps[index] = entry
                return
        deps.insert(0, entry)

    def add_channel(self, channel: str) -> None:
        """Add a conda channel (kept once, in order of addition)."""
        channels = self._spec.setdefault(_CHANNELS, [])
        if channel not in channels:
            channels.append(channel)

    def remove_channel(self, channel: str) -> None:
        """Remove a conda channel if present."""
        channels = self._spec.get(_CHANNELS) or []
        if channel in channels:
            channels.remove(channel)

    def add_conda_package(self, conda_package: str) -> None:
        """Add a conda package; ``python=X`` sets the Python version instead of adding a second python."""
        if _is_python(conda_package):
            version = _python_version_of(conda_package)
            if version is not None:
                self.set_python_version(version)
            return
        deps = self._dependencies()
        if conda_package not in deps:
            # Keep the pip entry last, where conda environment files conventionally have it.
            position = next((i for i, item in enumerate(deps) if isinstance(item, dict)), len(deps))
            deps.insert(position, conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove a conda package; removing python is refused (as in Azure ML)."""
        if _is_python(conda_package):
            raise EnvironmentException("python must not be removed from conda dependencies")
        deps = self._dependencies()
        if conda_package in deps:
            deps.remove(conda_package)

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement, replacing any earlier requirement for the same distribution."""
        if _is_option(pip_package):
            raise EnvironmentException(
                f"Invalid package name {pip_package}. Fix: use set_pip_option for pip options."
            )
        self.remove_pip_package(pip_package)
        self._ensure_pip_section().append(pip_package)

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove the pip requirement for the distribution named by ``pip_package`` (any version)."""
        if _is_option(pip_package):
            raise EnvironmentException(f"Invalid package name {pip_package}")
        section = self._pip_section()
        if section is None:
            return
        name = package_name(pip_package)
        section[:] = [item for item in section if _is_option(item) or package_name(item) != name]

    def set_pip_option(self, pip_option: str) -> None:
        """Add a pip option such as ``--extra-index-url URL``, replacing an earlier value of that option."""
        if not _is_option(pip_option):
            raise EnvironmentException(f"Invalid pip option {pip_option}. Fix: options start with '-'.")
        section = self._ensure_pip_section()
        flag = pip_option.split()[0]
        for index, item in enumerate(section):
            if _is_option(item) and item.split()[0] == flag:
                section[index] = pip_option
                return
        section.append(pip_option)

    def remove_pip_option(self, pip_option: str) -> None:
        """Remove the pip option with the same flag as ``pip_option``."""
        if not _is_option(pip_option):
            raise EnvironmentException(f"Invalid pip option {pip_option}")
        section = self._pip_section()
        if section is not None:
            flag = pip_option.split()[0]
            section[:] = [item for item in section if not (_is_option(item) and item.split()[0] == flag)]

    def set_pip_requirements(self, pip_requirements: list[str]) -> None:
        """Replace the whole pip section (packages and options) with ``pip_requirements``."""
        section = self._ensure_pip_section()
        section[:] = list(pip_requirements)

    def _ensure_pip_section(self) -> list[str]:
        section = self._pip_section()
        if section is None:
            section = []
            self._dependencies().append({_PIP: section})
        return section

    # -- writing ---------------------------------------------------------------------------

    def serialize_to_string(self) -> str:
        """Return the spec as conda environment YAML."""
        return yaml.safe_dump(self._spec, sort_keys=False, default_flow_style=False, allow_unicode=True)

    def save(self, path: str | Path) -> str:
        """Write the spec as conda YAML to the file ``path`` (its folder must exist); return the path."""
        target = Path(path)
        if target.is_dir():
            raise EnvironmentException(
                "Cannot save a conda environment specification file to a directory. "
                "Please specify a fully qualified path along with the file name to save the file."
            )
        if not target.parent.is_dir():
            raise EnvironmentException(
                f"Cannot save the conda environment specification file to an invalid path: "
                f"folder {str(target.parent)!r} does not exist."
            )
        target.write_text(self.serialize_to_string(), encoding="utf-8")
        return str(target)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CondaDependencies):
            return NotImplemented
        return self._spec == other._spec

    __hash__ = None  # type: ignore[assignment]  # mutable, so not hashable

    def __repr__(self) -> str:
        return f"CondaDependencies({self._spec!r})"
