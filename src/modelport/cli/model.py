"""``modelport model register|list|show|download|update|delete|package`` (the ``az ml model`` shapes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelport._notes import note
from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.deploy import deploy, load_inference
from modelport.cli.groups import new_group
from modelport.cli.params import parse_filters, parse_pairs
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, warnings_as_notes

if TYPE_CHECKING:
    from modelport.registry.model import Model
    from modelport.workspace import Workspace

app = new_group("model")
app.command("deploy")(deploy)

_COLUMNS = ["name", "version", "framework", "sizeBytes", "tags", "createdTime", "description"]
MODEL_ID_OPTION = typer.Option(None, "--model-id", "-i", help="Model id NAME:VERSION.")
MODEL_NAME_OPTION = typer.Option(
    None, "--model-name", "-n", help="Model name (latest version unless --version)."
)
VERSION_OPTION = typer.Option(None, "--version", help="Model version (with --model-name).")


def _find(ws: Workspace, model_id: str | None, name: str | None, version: int | None) -> Model:
    from modelport.registry.model import Model

    if model_id is None and name is None:
        raise typer.BadParameter("give --model-id NAME:VERSION or --model-name NAME", param_hint="--model-id")
    return Model(ws, name=name, id=model_id, version=version)


@app.command("register")
def register(
    name: str = typer.Option(..., "--name", "-n", help="Model name."),
    model_path: Path = typer.Option(..., "--model-path", "-p", help="Model file or folder."),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE; repeatable."),
    prop: list[str] | None = typer.Option(None, "--property", help="KEY=VALUE; repeatable."),
    description: str | None = typer.Option(None, "--description", "-d"),
    framework: str | None = typer.Option(None, "--model-framework", help="e.g. ScikitLearn, Onnx, PyTorch."),
    framework_version: str | None = typer.Option(None, "--model-framework-version"),
    child_path: list[str] | None = typer.Option(None, "--child-path", help="Only these paths of the folder."),
    metadata_file: Path | None = typer.Option(
        None, "--output-metadata-file", "-t", help="Write {modelId, workspaceName} here (for `deploy -f`)."
    ),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Register a file or folder as the next version of a model."""
    from modelport.cli.progress import BarProgress
    from modelport.registry.model import Model

    ws = open_workspace(workspace, path)
    bar = BarProgress()
    try:
        model = Model.register(
            ws,
            model_path,
            name,
            tags=parse_pairs(tag, "--tag"),
            properties=parse_pairs(prop, "--property"),
            description=description,
            model_framework=framework,
            model_framework_version=framework_version,
            child_paths=child_path,
            progress=bar,
        )
    finally:
        bar.close()
    if metadata_file is not None:
        payload = {"modelId": model.id, "workspaceName": ws.name, "resourceGroupName": None}
        metadata_file.write_text(json.dumps(payload, indent=2) + "\n")
    emit(model.serialize(), output)


@app.command("list")
def list_(
    name: str | None = typer.Option(None, "--model-name", "-n", help="Only this name."),
    tag: list[str] | None = typer.Option(
        None, "--tag", help="KEY or KEY=VALUE; repeatable (all must match)."
    ),
    prop: list[str] | None = typer.Option(None, "--property", help="KEY or KEY=VALUE; repeatable."),
    latest: bool = typer.Option(False, "--latest", help="Only the newest version of each name."),
    framework: str | None = typer.Option(None, "--model-framework"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List registered models."""
    from modelport.registry.model import Model

    ws = open_workspace(workspace, path)
    found = Model.list(
        ws,
        name=name,
        tags=parse_filters(tag),
        properties=parse_filters(prop),
        latest=latest,
        model_framework=framework,
    )
    emit([m.serialize() for m in found], output, columns=_COLUMNS)


@app.command("show")
def show(
    model_id: str | None = MODEL_ID_OPTION,
    name: str | None = MODEL_NAME_OPTION,
    version: int | None = VERSION_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show one model version."""
    emit(_find(open_workspace(workspace, path), model_id, name, version).serialize(), output)


@app.command("download")
def download(
    model_id: str | None = MODEL_ID_OPTION,
    name: str | None = MODEL_NAME_OPTION,
    version: int | None = VERSION_OPTION,
    target_dir: Path = typer.Option(Path("."), "--target-dir", "-t", help="Where to write the files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files that already exist."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Download a model's files with their registered layout."""
    model = _find(open_workspace(workspace, path), model_id, name, version)
    typer.echo(Path(model.download(target_dir, exist_ok=overwrite)).resolve())


@app.command("update")
def update(
    model_id: str = typer.Option(..., "--model-id", "-i", help="Model id NAME:VERSION."),
    add_tag: list[str] | None = typer.Option(None, "--add-tag", help="KEY=VALUE; repeatable."),
    remove_tag: list[str] | None = typer.Option(None, "--remove-tag", help="KEY; repeatable."),
    add_property: list[str] | None = typer.Option(None, "--add-property", help="KEY=VALUE; repeatable."),
    description: str | None = typer.Option(None, "--description", "-d"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Add or remove tags, add properties (existing ones cannot change) or replace the description."""
    model = _find(open_workspace(workspace, path), model_id, None, None)
    if not (add_tag or remove_tag or add_property or description is not None):
        raise typer.BadParameter(
            "nothing to update: give --add-tag, --remove-tag, --add-property or --description",
            param_hint="--add-tag",
        )
    if add_tag or remove_tag or add_property:
        model.update_tags_properties(
            add_tags=parse_pairs(add_tag, "--add-tag"),
            remove_tags=remove_tag,
            add_properties=parse_pairs(add_property, "--add-property"),
        )
    if description is not None:
        model.update(description=description)
    emit(model.serialize(), output)


@app.command("delete")
def delete(
    model_id: str = typer.Option(..., "--model-id", "-i", help="Model id NAME:VERSION."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Delete a model version (refused while a service uses it)."""
    model = _find(open_workspace(workspace, path), model_id, None, None)
    model.delete()
    typer.echo(f"Deleted model {model.id}")


@app.command("package")
def package(
    model: list[str] = typer.Option([], "--model", "-m", help="Model id NAME:VERSION; repeatable."),
    inference_config: Path | None = typer.Option(
        None,
        "-ic",
        "--ic",
        "--inference-config-file",
        help="inferenceconfig.json (or YAML) with an environment.",
    ),
    environment_name: str | None = typer.Option(None, "-e", "--environment-name", help="Registered env."),
    environment_version: str | None = typer.Option(None, "--ev", "--environment-version"),
    dockerfile_only: bool = typer.Option(
        False, "--dockerfile-only", help="Write the image's build context instead of building the image."
    ),
    output_path: Path | None = typer.Option(
        None,
        "-o",
        "--output-path",
        help="New or empty folder for the build context (implies --dockerfile-only).",
    ),
    compute_target: str | None = typer.Option(
        None, "-ct", "--ct", "--compute-target", help="Push the image to this Kubernetes target's registry."
    ),
    image_name: str | None = typer.Option(None, "--image-name", help="Image name (default: the model's)."),
    image_label: str | None = typer.Option(None, "--image-label", help="Image label (default: latest)."),
    no_wait: bool = typer.Option(
        False,
        "--no-wait",
        help="Accepted for az ml scripts: the package is complete when the command returns.",
    ),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Package models with their entry script and environment as a serving image pushed to a target's
    registry (or, with -o, its build context)."""
    from modelport.service.package import package as make_package

    if dockerfile_only and output_path is None:
        raise typer.BadParameter(
            "--dockerfile-only writes a build context: give the folder with -o/--output-path DIR",
            param_hint="--output-path",
        )
    if no_wait:
        note("--no-wait: nothing to wait for; the package is complete when this command returns.")
    ws = open_workspace(workspace, path)
    with warnings_as_notes():
        inference = load_inference(inference_config, environment_name, environment_version, ws)
    made = make_package(
        ws,
        list(model),
        inference,
        generate_dockerfile=output_path is not None,
        image_name=image_name,
        image_label=image_label,
        compute_target=compute_target,
    )
    lines = made.get_logs().splitlines()
    for line in lines[:-1] if made.generate_dockerfile else lines:  # the SDK's advice is printed below
        note(line)
    made.wait_for_creation()
    if output_path is not None:
        made.save(output_path)
        note(f"Wrote the build context to {made.location}.")
        note(f"Build it: docker build -t {made.image} {output_path}")
    typer.echo(json.dumps(made.serialize(), indent=2))
