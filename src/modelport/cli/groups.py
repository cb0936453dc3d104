"""The sub-command groups and top-level commands; one module per user-facing area adds itself here."""

from __future__ import annotations

from collections.abc import Callable

import typer


def all_groups() -> list[tuple[str, typer.Typer]]:
    """Return ``(name, group)`` for every sub-command group of the CLI."""
    from modelport.cli import config, environment, local, model, service, workspace

    groups: list[tuple[str, typer.Typer]] = [
        ("workspace", workspace.app),
        ("model", model.app),
        ("environment", environment.app),
        ("config", config.app),
        ("service", service.app),
        ("local", local.app),
    ]
    return groups


def all_commands() -> list[tuple[str, Callable[..., object]]]:
    """Return ``(name, function)`` for every top-level command (such as ``serve``)."""
    commands: list[tuple[str, Callable[..., object]]] = []
    from modelport.cli import serve

    commands.append(("serve", serve.serve))
    return commands
