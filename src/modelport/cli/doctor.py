"""``modelport doctor kubernetes -ct NAME``: check a cluster target end to end with a probe service."""

from __future__ import annotations

from pathlib import Path

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit

app = new_group("doctor")


@app.command("kubernetes")
def kubernetes(
    compute_target: str = typer.Option(..., "--compute-target", "-ct", help="The attached target to check."),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Seconds the probe service may take to be Healthy."
    ),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Deploy a probe service to the target, score it through the front end, read its logs, remove it."""
    from modelport.service.doctor import run_checks

    steps = []
    for step in run_checks(open_workspace(workspace, path), compute_target, timeout):
        steps.append(step)
        if output is OutputFormat.table:
            mark = "ok  " if step.ok else "FAIL"
            typer.echo(f"{mark} {step.name} ({step.seconds:.1f} s): {step.detail}")
    if output is not OutputFormat.table:
        emit([s.to_dict() for s in steps], output)
    if not all(s.ok for s in steps):
        raise typer.Exit(1)
