"""``modelport environment register|list|show|build-context|build-image``: environments, command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.params import one_name
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, note, warnings_as_notes

# The registry (and SQLAlchemy under it) is imported inside the commands: `modelport --help`
# lists this group without loading it (docs/performance.md, "CLI start-up").
if TYPE_CHECKING:
    from modelport.registry.environment import Environment
    from modelport.registry.environment_store import RegisteredEnvironment

app = new_group("environment")

SUMMARY_COLUMNS = ("name", "version", "python", "pipPackages", "baseImage", "contentHash", "createdTime")


def summary(record: RegisteredEnvironment) -> dict[str, Any]:
    """The fields ``list`` and ``show`` print for one registered version."""
    env = record.environment
    conda = env.python.conda_dependencies
    user_managed = env.python.user_managed_dependencies
    return {
        "name": env.name,
        "version": env.version,
        "python": f"user-managed ({env.python.interpreter_path})"
        if user_managed
        else (conda.get_python_version() if conda else None),
        "condaPackages": [] if user_managed or conda is None else conda.conda_packages,
        "pipPackages": [] if user_managed or conda is None else conda.pip_packages,
        "baseImage": env.docker.base_image or ("(Dockerfile)" if env.docker.base_dockerfile else None),
        "environmentVariables": env.environment_variables,
        "contentHash": record.content_hash,
        "createdTime": record.created_time.isoformat(),
        "createdBy": record.created_by,
    }


def _only_one(**sources: object) -> None:
    given = [f"--{key.replace('_', '-')}" for key, value in sources.items() if value is not None]
    if len(given) > 1:
        raise typer.BadParameter(f"give only one of {', '.join(given)}", param_hint=given[1])


def _build(
    name: str | None,
    conda_file: Path | None,
    pip_requirements: Path | None,
    directory: Path | None,
    base_image: str | None,
) -> Environment:
    from modelport.registry.environment import Environment

    _only_one(conda_file=conda_file, pip_requirements=pip_requirements, directory=directory)
    if directory is not None:
        env = Environment.load_from_directory(directory)
        if name is not None:
            env = env.clone(name)
        if base_image is not None:
            env.docker.base_image = base_image
        return env
    if name is None:
        raise typer.BadParameter("a name is required unless --directory gives one", param_hint="--name")
    if base_image is not None:
        return Environment.from_docker_image(
            name, base_image, conda_specification=conda_file, pip_requirements=pip_requirements
        )
    if conda_file is not None:
        return Environment.from_conda_specification(name, conda_file)
    if pip_requirements is not None:
        return Environment.from_pip_requirements(name, pip_requirements)
    raise typer.BadParameter(
        "give --conda-file, --pip-requirements, --directory or --base-image", param_hint="--conda-file"
    )


@app.command("register")
def register(
    name: str | None = typer.Option(
        None, "--name", "-n", help="Environment name (default with -d: the saved one)."
    ),
    conda_file: Path | None = typer.Option(
        None, "--conda-file", "-c", help="Conda YAML with the dependencies."
    ),
    pip_requirements: Path | None = typer.Option(
        None, "--pip-requirements", "-r", help="pip requirements.txt with the dependencies."
    ),
    directory: Path | None = typer.Option(
        None, "--directory", "-d", help="Folder written by Environment.save_to_directory (Azure ML's layout)."
    ),
    base_image: str | None = typer.Option(
        None, "--base-image", help="Base image; alone, the image's own Python is used as it is."
    ),
    output: OutputFormat = OUTPUT_OPTION,
    workspace_name: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Register an environment as the next version of its name (an unchanged definition keeps its version)."""
    from modelport.registry.environment_store import register_environment

    with warnings_as_notes():
        env = _build(name, conda_file, pip_requirements, directory, base_image)
    record = register_environment(open_workspace(workspace_name, path), env)
    note(f"Environment {record.environment.name!r} is version {record.environment.version}.")
    emit(summary(record), output, columns=SUMMARY_COLUMNS)


@app.command("list")
def list_(
    name: str | None = typer.Option(None, "--name", "-n", help="List every version of this environment."),
    output: OutputFormat = OUTPUT_OPTION,
    workspace_name: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """List the latest version of each registered environment (or all versions of one)."""
    from modelport.registry.environment_store import list_environments

    records = list_environments(open_workspace(workspace_name, path), name=name)
    emit([summary(r) for r in records], output, columns=SUMMARY_COLUMNS)


@app.command("show")
def show(
    name: str = typer.Option(..., "--name", "-n", help="Environment name."),
    version: str | None = typer.Option(None, "--version", "-v", help="Version (default: the latest)."),
    output: OutputFormat = OUTPUT_OPTION,
    workspace_name: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Show one registered environment; json and yaml include the full definition."""
    from modelport.registry.environment_store import get_environment

    record = get_environment(open_workspace(workspace_name, path), name, version)
    definition = record.environment.to_dict()
    registry = definition["docker"]["baseImageRegistry"]
    if registry["password"] is not None:
        registry["password"] = "***"  # stored for pulling the image, never printed
    details = {**summary(record), "definition": definition}
    emit(details, output, columns=[c for c in details if c != "definition"])


@app.command("build-context")
def build_context(
    name: str | None = typer.Argument(None, metavar="NAME", help="Environment name (or -n NAME)."),
    name_option: str | None = typer.Option(None, "--name", "-n", help="Environment name."),
    version: str | None = typer.Option(None, "--version", "-v", help="Version (default: the latest)."),
    target_dir: Path = typer.Option(
        ..., "--target-dir", "-t", help="Folder to write the build context to (created if missing)."
    ),
    base_image: str | None = typer.Option(
        None,
        "--base-image",
        help="Image to build on (default: the environment's own, else modelport's runtime image).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        "--overwrite",
        help="Write into a folder that is not empty: replace the files written here, keep the others.",
    ),
    output: OutputFormat = OUTPUT_OPTION,
    workspace_name: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Write a Docker build context (Dockerfile, requirements) of the image Azure ML would have built."""
    from modelport.compute.kubernetes.build_context import suggested_tag, write_build_context
    from modelport.registry.environment_store import get_environment

    wanted = one_name(name, name_option, "environment")
    with warnings_as_notes():
        record = get_environment(open_workspace(workspace_name, path), wanted, version)
    context = write_build_context(record.environment, target_dir, base_image, force=force)
    for line in context.notes:
        note(line)
    note(
        f"Wrote the build context of {wanted!r} version {record.environment.version} to {context.directory}. "
        f"Build it: docker build -t REGISTRY/{suggested_tag(record.environment)} {target_dir}"
    )
    emit(context.summary(), output, columns=["name", "version", "directory", "base", "files", "requirements"])


@app.command("build-image")
def build_image(
    name: str | None = typer.Argument(None, metavar="NAME", help="Environment name (or -n NAME)."),
    name_option: str | None = typer.Option(None, "--name", "-n", help="Environment name."),
    version: str | None = typer.Option(None, "--version", "-v", help="Version (default: the latest)."),
    target: str = typer.Option(
        ..., "--target", help="Kubernetes compute target whose runtime image and --registry to use."
    ),
    builder: str | None = typer.Option(
        None, "--builder", help="docker, podman or buildah (default: the first that works here)."
    ),
    force: bool = typer.Option(False, "--force", help="Build and push even when the registry has the tag."),
    output: OutputFormat = OUTPUT_OPTION,
    workspace_name: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Build the environment's image on the target's runtime image and push it to the target's registry.

    Tagged with the environment's content hash; skipped when the registry already has that tag.
    """
    from modelport.compute.kubernetes.envimage import ensure_environment_image
    from modelport.compute.kubernetes.target import load_target
    from modelport.registry.environment_store import get_environment

    wanted = one_name(name, name_option, "environment")
    ws = open_workspace(workspace_name, path)
    with warnings_as_notes():
        record = get_environment(ws, wanted, version)
    image = ensure_environment_image(
        record.environment, load_target(ws, target), target, on_line=note, force=force, builder=builder
    )
    summary = {
        "name": record.environment.name,
        "version": record.environment.version,
        "image": image.reference,
        "built": image.built,
        "seconds": round(image.seconds, 1),
    }
    emit(summary, output, columns=list(summary))
