"""The Docker build context of an environment's image: what Azure ML would have built for it.

Azure ML builds an image per environment when it deploys. modelport's Kubernetes target runs
prebuilt images instead (the runtime image of ``k8s/Dockerfile``, or one built in the user's CI),
so ``modelport environment build-context`` writes, for one environment, a folder that ``docker
build`` turns into that image:

* ``Dockerfile``: ``FROM`` the base (below), the environment's packages installed with pip
  together with modelport in one resolution, ``pip check``, its environment variables as ``ENV``,
  labels naming the environment, its version and content hash;
* ``requirements.txt``: the conda/pip spec in PyPI terms, translated exactly as the local target
  translates it (:func:`modelport.compute.envplan.plan_install`);
* ``conda.yml``: the environment's conda specification, for reference (when it has one);
* ``README.md``: how to build, push and use the image.

The same context with a :class:`ServingApp` is a *package* (``Model.package(...,
generate_dockerfile=True)``): the models and the source laid out under ``azureml-app/`` as a
replica's app root (``service/replica_contract.py``), copied to ``/var/azureml-app``, with the
contract's variables and a ``CMD`` that runs ``modelport serve`` on them, so ``docker run``
serves the model. The environment's step then copies only ``requirements.txt`` into the build
folder, so the models are not copied into the image twice.

The base (docs/environments.md, "A build context for your CI"): ``base_image`` when given; else
the environment's ``docker.base_dockerfile`` (inlined) or its own ``docker.base_image``; else,
and for Azure ML's own images (``mcr.microsoft.com/azureml/...``, which hold Azure ML's conda
toolchain, not modelport), modelport's runtime image.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport import __version__
from modelport.compute.envplan import minimum_runtime_python, plan_install
from modelport.compute.imagebuild import image_repository
from modelport.compute.kubernetes.fetch_plan import APP_ROOT
from modelport.compute.kubernetes.objects import DEFAULT_IMAGE
from modelport.errors import EnvironmentException
from modelport.registry.environment import DEFAULT_CPU_IMAGE, Environment
from modelport.service.replica_contract import RUNTIME_PORT, app_environment, serve_arguments
from modelport.service.spec import ModelRef, SourceRef

DOCKERFILE = "Dockerfile"
REQUIREMENTS = "requirements.txt"
CONDA = "conda.yml"
README = "README.md"
# Every file this module may write: --force replaces these and keeps anything else in the folder.
WRITTEN = (DOCKERFILE, REQUIREMENTS, CONDA, README)
# The runtime image's Python (k8s/Dockerfile: ARG BASE_IMAGE=python:3.11-slim-bookworm; a test keeps the
# two in step) and its non-root user.
RUNTIME_IMAGE_PYTHON = "3.11"
RUNTIME_UID = 10001
AZUREML_IMAGES = "mcr.microsoft.com/azureml/"
LABEL_PREFIX = "io.modelport"
BUILD_ARG = "MODELPORT_REQUIREMENT"
# pip's own variables, as build arguments: the package index the build installs from (empty: pip's
# default). `environment build-image` passes a target's --index-url, --extra-index-url and
# --trusted-host through them.
PIP_INDEX_ARGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")
# The Dockerfile instructions this module writes (tests check every instruction is one of them).
INSTRUCTIONS = ("FROM", "LABEL", "ARG", "USER", "COPY", "RUN", "ENV", "WORKDIR", "EXPOSE", "CMD")
# A package's app root inside its build context: copied to APP_ROOT in the image.
APP_DIR = "azureml-app"

# envplan's wording for python/pip is the local target's ("uv provides ..."); in an image the
# image provides them.
_UV_SKIP_NOTE = "(uv provides the interpreter and the installer)"
_IMAGE_SKIP_NOTE = "(the image provides Python and pip)"
# Pip lines naming files on this machine: the image build cannot see them.
_PATH_FLAGS = (
    *("-e", "--editable", "-f", "--find-links", "-c", "--constraint"),
    *("-i", "--index-url", "--extra-index-url"),  # a file:// index is a path too
)
_ENV_NAME = re.compile(r"[A-Za-z_.-][A-Za-z0-9_.-]*")
_DIRECTIVE = re.compile(r"#\s*(syntax|escape|check)\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class ServingApp:
    """What a package's image serves besides its environment: the models and the source (laid out
    under :data:`APP_DIR` by the caller, as a replica's app root) and the image reference the
    README's commands tag it with."""

    models: tuple[ModelRef, ...]
    source: SourceRef
    image: str


@dataclass(frozen=True)
class BuildContext:
    """A build context as planned (``files``) and, once written, where (``directory``)."""

    environment: str
    version: str | None
    content_hash: str
    base: str  # the FROM image, or "docker.base_dockerfile"
    requirements: tuple[str, ...]
    notes: tuple[str, ...]
    files: dict[str, str]
    directory: Path | None = None
    app: ServingApp | None = None

    def summary(self) -> dict[str, Any]:
        """What the CLI prints: the environment, the base, the files and the choices made."""
        summary: dict[str, Any] = {
            "name": self.environment,
            "version": self.version,
            "contentHash": self.content_hash,
            "directory": str(self.directory) if self.directory else None,
            "base": self.base,
            "files": sorted([*self.files, *([APP_DIR] if self.app else [])]),
            "requirements": list(self.requirements),
            "notes": list(self.notes),
        }
        if self.app is not None:
            summary["models"] = [model.id for model in self.app.models]
            summary["entryScript"] = self.app.source.entry_script
            summary["image"] = self.app.image
        return summary


def suggested_tag(environment: Environment) -> str:
    """An image reference for the README: the name made a valid repository name, the version as tag."""
    return f"{image_repository(environment)}:{environment.version or 'latest'}"


def _quoted(value: str) -> str:
    """``value`` as one word of a Dockerfile ENV, LABEL or ARG (or of sh, backquotes aside), read back as is.

    Single quotes keep every character as it is in every Dockerfile parser: no variables, no
    escapes. A value holding a single quote goes in double quotes with backslash, double quote and
    dollar escaped, as BuildKit and sh read them (Docker's old builder left a doubled backslash
    doubled, hence single quotes first).
    """
    if "'" not in value:
        return f"'{value}'"
    return '"' + re.sub(r'([\\"$])', r"\\\1", value) + '"'


def _refuse(environment: Environment, field: str, value: object, why: str, fix: str) -> EnvironmentException:
    return EnvironmentException(
        f"Environment {environment.name!r}: {field} {value!r} cannot be expressed in a build context: "
        f"{why}. Fix: {fix}."
    )


def _base(environment: Environment, base_image: str | None) -> tuple[str | None, str | None, list[str]]:
    """The image to build FROM (or the base Dockerfile's text), and notes on the choice."""
    docker = environment.docker
    own = docker.base_image
    if base_image is not None:
        if docker.base_dockerfile is not None or docker.build_context is not None:
            own_base: str | None = (
                "docker.base_dockerfile" if docker.base_dockerfile is not None else "docker.build_context"
            )
        else:
            own_base = own if own and not own.startswith(AZUREML_IMAGES) else None
        return (
            base_image,
            None,
            [f"base image {base_image} given instead of the environment's {own_base}"] if own_base else [],
        )
    if docker.build_context is not None:
        raise _refuse(
            environment,
            "docker.build_context",
            docker.build_context,
            "it names a build context of its own, which modelport cannot fetch",
            "build that context's image, push it, and pass it as the base image (--base-image IMAGE)",
        )
    if docker.base_dockerfile is not None:
        return None, docker.base_dockerfile, ["base: the environment's docker.base_dockerfile, inlined"]
    if own is None or own.startswith(AZUREML_IMAGES):
        notes = []
        if own is not None and own != DEFAULT_CPU_IMAGE:  # Azure ML's default image needs no word
            notes.append(
                f"docker.base_image {own} is one of Azure ML's images, made for Azure ML's own build; "
                f"built on modelport's runtime image {DEFAULT_IMAGE} instead"
            )
        return DEFAULT_IMAGE, None, notes
    return own, None, []


def _split_directives(environment: Environment, dockerfile: str) -> tuple[list[str], list[str]]:
    """The base Dockerfile's parser directives (they must stay the file's first lines) and the rest."""
    lines = dockerfile.rstrip("\n").splitlines()
    count = 0
    while count < len(lines) and (directive := _DIRECTIVE.match(lines[count])):
        if directive.group(1).lower() == "escape":
            raise _refuse(
                environment,
                "docker.base_dockerfile directive",
                lines[count],
                "the layers modelport adds continue lines with a backslash",
                "remove the escape directive from the base Dockerfile",
            )
        count += 1
    return lines[:count], lines[count:]


def _same_python(request: str, available: str) -> bool:
    # "3.11" matches "3.11.7" and "3"; a range such as ">=3.8" is not evaluated (a note says so).
    asked, have = request.split("."), available.split(".")
    shorter = min(len(asked), len(have))
    return re.fullmatch(r"\d+(\.\d+)*", request) is not None and asked[:shorter] == have[:shorter]


def _python_note(request: str | None, base: str | None) -> str | None:
    if request is None:
        return None
    minimum = ".".join(map(str, minimum_runtime_python()))
    if base != DEFAULT_IMAGE:
        return (
            f"Python {request} is pinned; the base image's own python is used (the build checks that it "
            f"is >= {minimum}, which modelport's runtime needs)"
        )
    if _same_python(request, RUNTIME_IMAGE_PYTHON):
        return None
    return (
        f"Python {request} is pinned, but {DEFAULT_IMAGE} has Python {RUNTIME_IMAGE_PYTHON}, which is used "
        f"(an image has one Python; modelport's runtime needs >= {minimum}). Fix: pin "
        f"python={RUNTIME_IMAGE_PYTHON}, or build on an image with the Python you need (--base-image)"
    )


def _local_path(line: str) -> str | None:
    """The path on this machine that a pip line names, if it names one."""
    value = line.strip()
    for flag in _PATH_FLAGS:
        if value.startswith((f"{flag} ", f"{flag}=")):
            value = value[len(flag) + 1 :].strip()
            break
    if " @ " in value:  # "name @ url"
        value = value.split(" @ ", 1)[1].strip()
    is_path = value in (".", "..") or value.startswith(("/", "./", "../", "~", "file:"))
    is_wheel_file = value.endswith((".whl", ".tar.gz", ".zip")) and "://" not in value
    return value if is_path or is_wheel_file else None


def _check_variables(environment: Environment) -> None:
    for name, value in environment.environment_variables.items():
        if not _ENV_NAME.fullmatch(name):
            raise _refuse(
                environment,
                "environment_variables name",
                name,
                "an image's variable names are letters, digits, '_', '.' and '-', not starting with a digit",
                "rename the variable",
            )
        if "\n" in value or "\r" in value:
            raise _refuse(
                environment,
                f"environment_variables[{name!r}]",
                value,
                "a Dockerfile ENV value cannot hold a line break",
                "set it without line breaks, or at run time",
            )


def render_build_context(
    environment: Environment,
    base_image: str | None = None,
    *,
    modelport_requirement: str | None = None,
    app: ServingApp | None = None,
) -> BuildContext:
    """Plan the build context of ``environment``: the files' contents and the notes; writes nothing.

    ``base_image`` overrides the base (see the module docstring). ``modelport_requirement`` is the
    default of the Dockerfile's ``MODELPORT_REQUIREMENT`` build argument (``modelport[kubernetes]``
    pinned to this version). ``app`` makes it a package's context: the image serves those models.
    Raises :class:`EnvironmentException` (field, value, fix) for what an image build cannot do.
    """
    python = environment.python
    if python.user_managed_dependencies and python.interpreter_path != "python":
        raise _refuse(
            environment,
            "python.interpreter_path",
            python.interpreter_path,
            "replicas run `python -m modelport serve`, so the image's `python` is the interpreter",
            "set interpreter_path to 'python' and make that the interpreter on the image's PATH",
        )
    _check_variables(environment)
    image, dockerfile, notes = _base(environment, base_image)
    if image is not None and (not image or any(char.isspace() for char in image)):
        raise _refuse(
            environment,
            "base image",
            image,
            "an image reference has no spaces or line breaks",
            "give a reference such as registry.example/team/image:tag",
        )
    conda = None if python.user_managed_dependencies else python.conda_dependencies
    requirements: list[str] = []
    if conda is None:
        notes.append("no packages to install: the base image's Python is used as it is, with modelport added")
        python_request = None
    else:
        plan = plan_install(environment)
        notes.extend(note.replace(_UV_SKIP_NOTE, _IMAGE_SKIP_NOTE) for note in plan.notes)
        requirements = [*plan.options, *(["--pre"] if plan.prerelease else []), *plan.requirements]
        for line in requirements:
            path = _local_path(line)
            if path is not None:
                raise _refuse(
                    environment,
                    "pip requirement",
                    line,
                    f"it names {path!r} on this machine, which the image build cannot see",
                    "publish the package to an index (or name a git or https URL), or edit the written "
                    "requirements.txt to name a copy placed in the build context",
                )
        python_request = plan.python_request
    python_note = _python_note(python_request, image)
    if python_note:
        notes.append(python_note)
    base_name = image or "the environment's base Dockerfile"
    files = {
        DOCKERFILE: _dockerfile(environment, image, dockerfile, notes, modelport_requirement, app),
        REQUIREMENTS: _requirements(environment, requirements),
        README: (
            _readme(environment, base_name, image == DEFAULT_IMAGE)
            if app is None
            else _package_readme(environment, base_name, app)
        ),
    }
    if conda is not None:
        files[CONDA] = conda.serialize_to_string()
    return BuildContext(
        environment=environment.name,
        version=environment.version,
        content_hash=environment.content_hash,
        base=image or "docker.base_dockerfile",
        requirements=tuple(line for line in requirements if not line.startswith("-")),
        notes=tuple(notes),
        files=files,
        app=app,
    )


def write_build_context(
    environment: Environment,
    dest: str | Path,
    base_image: str | None = None,
    *,
    force: bool = False,
    modelport_requirement: str | None = None,
    app: ServingApp | None = None,
) -> BuildContext:
    """Write the build context of ``environment`` into the folder ``dest`` (created if missing).

    A ``dest`` that exists and is not empty is refused unless ``force``, which replaces the files
    listed in :data:`WRITTEN` and keeps every other file (a wheel placed there, for instance).
    Nothing is written when the environment cannot be expressed (see :func:`render_build_context`).
    With ``app``, the caller lays out the models and the source under :data:`APP_DIR`.
    """
    context = render_build_context(
        environment, base_image, modelport_requirement=modelport_requirement, app=app
    )
    folder = Path(dest)
    if folder.exists() and not folder.is_dir():
        raise EnvironmentException(
            f"Build context folder {str(folder)!r} is a file. Fix: name a new or empty folder."
        )
    if folder.is_dir() and not force:
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            raise EnvironmentException(
                f"Build context folder {str(folder)!r} is not empty ({len(entries)} entries, such as "
                f"{entries[0]!r}). Fix: name a new or empty folder, or pass --force (force=True) to "
                f"replace the files written there ({', '.join(WRITTEN)}) and keep the others."
            )
    folder.mkdir(parents=True, exist_ok=True)
    for name in WRITTEN:  # a conda.yml of an earlier, different environment must not stay behind
        (folder / name).unlink(missing_ok=True)
    for name, text in context.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return dataclasses.replace(context, directory=folder.resolve())


# -- the files ---------------------------------------------------------------------------------


def _describe(environment: Environment) -> str:
    version = f" version {environment.version}" if environment.version else " (unregistered)"
    return f"environment {environment.name!r}{version}"


def _header(environment: Environment, app: ServingApp | None) -> list[str]:
    if app is None:
        what = f"# The image of {_describe(environment)} (content hash {environment.content_hash[:12]}),"
        written_by = "`modelport environment build-context`"
    else:
        what = f"# A serving image of {', '.join(m.id for m in app.models)} in {_describe(environment)},"
        written_by = "Model.package"
    return [
        what,
        f"# written by modelport {__version__} ({written_by}): what Azure ML would",
        "# have built for it. Build it with `docker build -t IMAGE .`; README.md says how to use it.",
    ]


def _dockerfile(
    environment: Environment,
    image: str | None,
    base_dockerfile: str | None,
    notes: list[str],
    modelport_requirement: str | None,
    app: ServingApp | None,
) -> str:
    requirement = modelport_requirement or f"modelport[kubernetes]=={__version__}"
    minimum = minimum_runtime_python()
    needed = ".".join(map(str, minimum))
    python_check = (
        f"import sys; sys.exit(0 if sys.version_info >= {minimum} else "
        f"'modelport needs Python >= {needed}; this image has ' + sys.version.split()[0])"
    )
    directives, base_lines = _split_directives(environment, base_dockerfile) if base_dockerfile else ([], [])
    lines = [*directives, *_header(environment, app)]
    if base_dockerfile is not None:
        lines += ["", "# --- the environment's docker.base_dockerfile, as registered ---"]
        lines += [*base_lines, "# --- modelport's layers on top of it ---"]
    else:
        lines += [f"FROM {image}"]
    labels = {
        f"{LABEL_PREFIX}.environment.name": environment.name,
        f"{LABEL_PREFIX}.environment.version": environment.version,
        f"{LABEL_PREFIX}.environment.content-hash": environment.content_hash,
        f"{LABEL_PREFIX}.version": __version__,
    }
    label_lines = [f"{key}={_quoted(value)}" for key, value in labels.items() if value is not None]
    lines += ["", "LABEL " + " \\\n      ".join(label_lines)]
    if notes:
        lines += ["", "# How the environment's spec became this image (docs/environments.md):"]
        for note in notes:
            lines += textwrap.wrap(note, 100, initial_indent="#   ", subsequent_indent="#     ")
    lines += [
        "",
        "# modelport itself, pinned to the version that wrote this file (the runtime image has it",
        "# already). Override it, e.g. with a wheel copied into this folder"
        + (":" if app is None else f" and named after {REQUIREMENTS} below:"),
        f"#   docker build --build-arg {BUILD_ARG}=./modelport-{__version__}-py3-none-any.whl ...",
        f"ARG {BUILD_ARG}={_quoted(requirement)}",
        "# The package index pip installs from (unset when empty: pip's default), e.g.",
        "#   docker build --build-arg PIP_INDEX_URL=https://mirror.example/simple ...",
        *(f'ARG {name}=""' for name in PIP_INDEX_ARGS),
        "USER root",
        # A package's models stay out of this step: copied here, they would weigh twice in the image.
        f"COPY {'.' if app is None else REQUIREMENTS} /tmp/modelport-build/",
        "# One pip run resolves the environment's packages together with modelport's dependencies, and",
        "# pip check fails the build if anything installed is left broken: a pin that cannot coexist",
        "# with the runtime (pydantic==1.10, say) is an error here, as it is on the local target.",
        "RUN cd /tmp/modelport-build \\",
        *(f'    && {{ [ -n "${name}" ] || unset {name}; }} \\' for name in PIP_INDEX_ARGS),
        f"    && python -c {_quoted(python_check)} \\",
        # The variable, not pip's flag: pips older than 22.1 refuse the flag and ignore the variable.
        f'    && PIP_ROOT_USER_ACTION=ignore python -m pip install --no-cache-dir "${{{BUILD_ARG}}}" \\',
        f"       -r {REQUIREMENTS} \\",
        "    && python -m pip check \\",
        f"    && mkdir -p {APP_ROOT} && chown {RUNTIME_UID} {APP_ROOT} \\",
        "    && cd / && rm -rf /tmp/modelport-build",
    ]
    variables = environment.environment_variables
    if variables:
        env_lines = [f"{name}={_quoted(value)}" for name, value in variables.items()]
        lines += [
            "",
            "# The environment's variables, set in every replica.",
            "ENV " + " \\\n    ".join(env_lines),
        ]
    lines += [
        "",
        "# Non-root, as the runtime image: clusters that enforce runAsNonRoot accept it.",
        f"USER {RUNTIME_UID}",
    ]
    if app is not None:
        lines += _serving_lines(app)
    return "\n".join(lines) + "\n"


def _serving_lines(app: ServingApp) -> list[str]:
    """A package's layers: its app root, the replica contract's variables and ``modelport serve``."""
    variables = app_environment(app.models, app.source, APP_ROOT)
    command = ["python", "-m", "modelport", "serve", *serve_arguments(app.models, app.source, APP_ROOT)]
    return [
        "",
        "# The models (azureml-models/<name>/<version>/) and the source, laid out as a replica's app",
        "# root, with the variables a replica gets (AZUREML_MODEL_DIR: Azure ML's rule).",
        f"COPY --chown={RUNTIME_UID} {APP_DIR}/ {APP_ROOT}/",
        "ENV " + " \\\n    ".join(f"{name}={_quoted(value)}" for name, value in variables.items()),
        f"WORKDIR {APP_ROOT}",
        f"EXPOSE {RUNTIME_PORT}",
        f"CMD {json.dumps(command)}",
    ]


def _requirements(environment: Environment, requirements: list[str]) -> str:
    header = [
        f"# pip requirements of {_describe(environment)}: the conda/pip spec in PyPI terms, as the",
        "# local target installs it (docs/environments.md). Installed together with modelport (Dockerfile).",
    ]
    if environment.python.user_managed_dependencies:
        header.append(
            "# User-managed dependencies: nothing to install; the base image's Python is used as it is."
        )
    return "\n".join([*header, *requirements]) + "\n"


def _package_readme(environment: Environment, base: str, app: ServingApp) -> str:
    models = ", ".join(f"`{model.id}`" for model in app.models)
    lines = [
        f"# A serving image of {models}",
        "",
        f"Written by `Model.package` / `modelport model package` (modelport {__version__}): `{base}`",
        f"plus the packages of {_describe(environment)} (`requirements.txt`), the models and the",
        f"source under `{APP_DIR}/` (copied to `{APP_ROOT}`), and a command that serves them.",
        "",
        f"    docker build -t {app.image} .",
        f"    docker run --rm -p {RUNTIME_PORT}:{RUNTIME_PORT} {app.image}",
        f"    curl -H 'Content-Type: application/json' -d @sample.json localhost:{RUNTIME_PORT}/score",
        "",
        "The server answers `GET /` (liveness), `GET /health/ready` once `init()` has returned, and",
        "`POST /score`, with no keys or tokens: those are the front end's, which a deployment adds",
        "(`Model.deploy`), so run the image behind a front end of your own.",
    ]
    return "\n".join(lines) + "\n"


def _readme(environment: Environment, base: str, on_runtime: bool) -> str:
    tag = f"REGISTRY/{suggested_tag(environment)}"
    registry = environment.docker.base_image_registry.address
    login = f" Its base is in a private registry: `docker login {registry}` first." if registry else ""
    register = f"modelport environment register -n {shlex.quote(environment.name)} --base-image {tag}"
    lines = [
        f"# The image of {_describe(environment)}",
        "",
        f"Written by `modelport environment build-context` (modelport {__version__}): `{base}`",
        "plus the environment's packages (`requirements.txt`; `conda.yml`, when present, is its conda",
        "spec, for reference) and variables: the image Azure ML would have built for it."
        + ("" if on_runtime else login),
        "",
        f"    docker build -t {tag} . && docker push {tag}",
        "",
        "Run a Kubernetes target's services on it: `modelport computetarget attach kubernetes -n",
        f"TARGET --image {tag} ...`; or only this environment's services, since an environment's",
        f"own image goes before the target's: `{register}` (the image's Python as it is).",
    ]
    return "\n".join(lines) + "\n"
