"""``modelport local status|start|stop|logs``: the workspace's local agent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit

if TYPE_CHECKING:
    from modelport.compute.local.driver import LocalDriver

app = new_group("local")


def _driver() -> LocalDriver:
    from modelport.compute.local.driver import LocalDriver

    return LocalDriver()


@app.command("status")
def status(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Whether the agent runs, its pid, front end URL and folders."""
    emit(_driver().status(open_workspace(workspace, path)), output)


@app.command("start")
def start(workspace: str | None = WORKSPACE_OPTION, path: Path | None = PATH_OPTION) -> None:
    """Start the agent (deploying does this on its own)."""
    pid = _driver().ensure_agent(open_workspace(workspace, path))
    typer.echo(f"Local agent running (pid {pid})")


@app.command("stop")
def stop(workspace: str | None = WORKSPACE_OPTION, path: Path | None = PATH_OPTION) -> None:
    """Stop the agent and its replicas; services stay deployed and come back on the next start."""
    stopped = _driver().stop_agent(open_workspace(workspace, path))
    typer.echo("Local agent stopped" if stopped else "No local agent was running")


@app.command("logs")
def logs(
    num_lines: int = typer.Option(200, "--num-lines", "-l"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Print the agent's own log."""
    from modelport.compute.local.driver import paths_for
    from modelport.compute.local.replica import log_tail

    sys.stdout.write(log_tail(paths_for(open_workspace(workspace, path)).agent_log, num_lines))
