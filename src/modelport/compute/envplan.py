"""What a target installs for an environment: its conda/pip spec in PyPI terms, and the runtime.

Shared by both targets: the local target installs the plan into a virtualenv
(:mod:`modelport.compute.envbuild`), the Kubernetes target writes it into an image's build
context (:mod:`modelport.compute.kubernetes.build_context`). There is no conda, only a package
index, so an environment's spec becomes one pip
requirements file: pip packages as written, conda packages mapped to the PyPI distribution of the
same name (``numpy=1.26`` → ``numpy==1.26.*``), Python and pip themselves skipped, and the Azure ML
serving packages dropped because modelport's runtime provides them. Every such choice is kept as a
note for the build log. docs/environments.md ("How the local target builds environments") is the
user-facing description.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from dataclasses import dataclass, field

from modelport import __version__
from modelport.registry.conda import package_name
from modelport.registry.environment import Environment

# Satisfied by modelport's own runtime (its server and the shims of
# ``modelport.runtime.shims``); installing them would pull the Azure SDK and a second server.
PROVIDED_BY_RUNTIME = frozenset(
    {"azureml-defaults", "azureml-core", "azureml-inference-server-http", "azureml-contrib-services"}
)
# Conda packages that are the interpreter or installer themselves: uv provides both.
CONDA_SKIPPED = frozenset({"python", "pip"})
# Conda-only native packages that Azure ML conda files often list; PyPI wheels bundle them.
CONDA_ONLY = frozenset({"cudatoolkit", "cudnn", "cpuonly", "pytorch-cuda", "mkl", "nomkl", "libgcc-ng"})
# The few conda names whose PyPI distribution is named differently (PyPI's "pytorch" is a stub
# that refuses to install).
CONDA_TO_PYPI = {"pytorch": "torch", "py-xgboost": "xgboost"}
# The extra of modelport's metadata that lists what a replica imports (pyproject.toml): the local
# target installs that subset, never the control plane's packages (SQLAlchemy, typer, rich, ...).
RUNTIME_EXTRA = "runtime"
# ``; extra == "runtime"`` as setuptools writes it in the metadata, alone or after other markers.
_EXTRA_MARKER = re.compile(rf"""\s*(?:\band\s+)?extra\s*==\s*["']{RUNTIME_EXTRA}["']""")

_PIP_OPERATORS = ("==", ">=", "<=", "!=", "~=", ">", "<")
# pip options that uv takes on the command line only, not inside a requirements file.
_PRERELEASE_OPTION = "--pre"


@dataclass(frozen=True)
class InstallPlan:
    """The pip terms of one environment: what to ask uv for, and what was changed on the way."""

    python_request: str | None
    requirements: tuple[str, ...]
    options: tuple[str, ...]
    prerelease: bool
    notes: tuple[str, ...]
    # Normalised PyPI name -> the conda entry it came from, to point a failed install at its source.
    from_conda: dict[str, str] = field(default_factory=dict)

    def requirements_text(self) -> str:
        """The user's side as a requirements file: options first, then one requirement a line."""
        return "".join(f"{line}\n" for line in (*self.options, *self.requirements))


def conda_to_pip(conda_spec: str) -> str:
    """Translate a conda match spec into a pip requirement for the PyPI package of the same name.

    ``numpy=1.26`` (conda's "1.26 or any 1.26.x") → ``numpy==1.26.*``; ``numpy=1.26.4=py311_0`` (a
    build string) → ``numpy==1.26.4.*``; ``numpy 1.26`` → ``numpy==1.26.*``; ``numpy>=1.2,<2`` is
    the same in pip; a ``channel::`` prefix is dropped; names in :data:`CONDA_TO_PYPI` are renamed.
    """
    text = conda_spec.strip().split("::", 1)[-1].strip()
    if " " in text:
        name, version = text.split(None, 2)[:2]
        rest = version if version.startswith(_PIP_OPERATORS) else f"={version}"
    else:
        match = re.match(r"[A-Za-z0-9_.\-]+", text)
        name = match.group(0) if match else text
        rest = text[len(name) :]
    name = CONDA_TO_PYPI.get(package_name(name), name)
    if rest.startswith("=") and not rest.startswith("=="):
        version = rest[1:].split("=", 1)[0]
        rest = f"=={version}" if version.endswith("*") else f"=={version}.*"
    return f"{name}{rest}"


def plan_install(env: Environment) -> InstallPlan:
    """Turn ``env``'s conda/pip spec into the pip requirements the local target installs."""
    conda = env.python.conda_dependencies
    if conda is None:
        return InstallPlan(
            python_request=None,
            requirements=(),
            options=(),
            prerelease=False,
            notes=("No conda/pip spec: the environment holds modelport's runtime only.",),
        )
    notes: list[str] = []
    requirements: list[str] = []
    from_conda: dict[str, str] = {}
    for entry in conda.conda_packages:
        name = package_name(entry)
        if name in CONDA_SKIPPED:
            notes.append(f"conda {entry!r}: skipped (uv provides the interpreter and the installer)")
        elif name in CONDA_ONLY:
            notes.append(f"conda {entry!r}: skipped (a conda-only native package; PyPI wheels bundle it)")
        else:
            requirement = conda_to_pip(entry)
            from_conda[package_name(requirement)] = entry
            requirements.append(requirement)
            notes.append(f"conda {entry!r}: installed from PyPI as {requirement!r}")
    for requirement in conda.pip_packages:
        if package_name(requirement) in PROVIDED_BY_RUNTIME:
            notes.append(f"pip {requirement!r}: not installed, modelport's runtime provides it")
        else:
            requirements.append(requirement)
    options = [option for option in conda.pip_options if option.strip() != _PRERELEASE_OPTION]
    prerelease = len(options) != len(conda.pip_options)
    if env.python.base_conda_environment:
        notes.append(f"base conda environment {env.python.base_conda_environment!r}: not used, no conda here")
    if conda.conda_channels:
        notes.append(f"conda channels {', '.join(conda.conda_channels)}: not used, packages come from PyPI")
    return InstallPlan(
        python_request=conda.get_python_version(),
        requirements=tuple(requirements),
        options=tuple(options),
        prerelease=prerelease,
        notes=tuple(notes),
        from_conda=from_conda,
    )


def runtime_requirements() -> tuple[str, ...]:
    """What ``python -m modelport serve`` needs: the ``runtime`` extra of modelport's installed metadata.

    Read from the installed distribution, so that the environment follows pyproject.toml without
    a second list to keep in step; the extra's own marker is dropped, any other marker kept.
    """
    declared = importlib.metadata.requires("modelport") or []
    requirements = []
    for requirement in declared:
        marked = _EXTRA_MARKER.search(requirement)
        if marked is None:
            continue
        kept = (requirement[: marked.start()] + requirement[marked.end() :]).rstrip()
        requirements.append(kept.rstrip(";").rstrip())
    return tuple(sorted(requirements))


def runtime_fingerprint(requirements: tuple[str, ...]) -> str:
    """Identify the runtime a venv was built for: a modelport upgrade that changes it means a rebuild."""
    text = "\n".join((__version__, *requirements))
    return hashlib.sha256(text.encode()).hexdigest()


def minimum_runtime_python() -> tuple[int, int]:
    """The oldest ``major.minor`` modelport runs on (``Requires-Python: >=3.11`` of its metadata)."""
    # PackageMetadata promises get() only from Python 3.12; membership and indexing work on 3.11.
    metadata = importlib.metadata.metadata("modelport")
    declared = metadata["Requires-Python"] if "Requires-Python" in metadata else ""  # noqa: SIM401
    match = re.search(r">=\s*(\d+)\.(\d+)", declared)
    return (int(match.group(1)), int(match.group(2))) if match else (3, 0)
