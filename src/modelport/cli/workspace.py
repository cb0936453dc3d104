"""``modelport workspace create|show|list``."""

from __future__ import annotations

from pathlib import Path

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.params import one_name, parse_pairs
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit

app = new_group("workspace")


@app.command("create")
def create(
    name: str | None = typer.Argument(None, help="Workspace name (2-32 letters, digits, '-' or '_')."),
    name_option: str | None = typer.Option(
        None, "--name", "-n", help="The workspace name, as the other commands take it (or positional)."
    ),
    path: Path = typer.Option(
        Path("."), "--path", help="Project folder; the config goes to PATH/.modelport/."
    ),
    metadata_url: str | None = typer.Option(
        None,
        "--metadata-url",
        help="Metadata database (default: SQLite in PATH/.modelport; or postgresql://...).",
    ),
    artifact_url: str | None = typer.Option(
        None,
        "--artifact-url",
        help="Artifact store (default: PATH/.modelport/artifacts; or s3://bucket/prefix).",
    ),
    s3_endpoint_url: str | None = typer.Option(None, "--s3-endpoint-url", help="S3-compatible endpoint."),
    s3_key: str | None = typer.Option(None, "--s3-key", help="S3 access key (or ${ENV_VAR})."),
    s3_secret: str | None = typer.Option(None, "--s3-secret", help="S3 secret key (or ${ENV_VAR})."),
    location: str | None = typer.Option(None, "--location", "-l", help="Free-text location label."),
    description: str | None = typer.Option(None, "--description", "-d"),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE; repeatable."),
    exist_ok: bool = typer.Option(False, "--exist-ok", help="Open the workspace if it already exists."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Create a workspace and write its config to PATH/.modelport/config.json."""
    from modelport.workspace import Workspace

    name = one_name(name, name_option, "workspace")
    storage_options = {
        key: value
        for key, value in (("endpoint_url", s3_endpoint_url), ("key", s3_key), ("secret", s3_secret))
        if value is not None
    }
    ws = Workspace.create(
        name,
        path=path,
        metadata_url=metadata_url,
        artifact_url=artifact_url,
        storage_options=storage_options or None,
        exist_ok=exist_ok,
        tags=parse_pairs(tag, "--tag"),
        location=location,
        description=description,
    )
    emit(ws.get_details(), output)


@app.command("show")
def show(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show the workspace found from --path (or named with -w)."""
    emit(open_workspace(workspace, path).get_details(), output)


@app.command("list")
def list_(output: OutputFormat = OUTPUT_OPTION) -> None:
    """List the workspaces created by this user."""
    from modelport.workspace import Workspace

    rows = [{"name": name, "config": config} for name, config in sorted(Workspace.list().items())]
    emit(rows, output, columns=["name", "config"])
