"""Options shared by commands that work on a workspace, and opening that workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from modelport.workspace import Workspace

WORKSPACE_OPTION = typer.Option(
    None,
    "--workspace-name",
    "-w",
    envvar="MODELPORT_WORKSPACE",
    help="Workspace name (default: the one whose config is found from --path upward).",
)
PATH_OPTION = typer.Option(
    None,
    "--path",
    help="Folder to search upward for .modelport/config.json (or an Azure ML config.json).",
)


def open_workspace(name: str | None, path: Path | None) -> Workspace:
    """Open the workspace the user means: by name if given, else from the config found from ``path``."""
    from modelport.workspace import Workspace

    if name is not None:
        return Workspace.get(name, path=str(path) if path else None)
    return Workspace.from_config(path=str(path) if path else None)
