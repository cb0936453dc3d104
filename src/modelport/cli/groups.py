"""The list of sub-command groups; one module per user-facing area adds itself here."""

from __future__ import annotations

import typer


def all_groups() -> list[tuple[str, typer.Typer]]:
    """Return ``(name, group)`` for every sub-command group of the CLI."""
    groups: list[tuple[str, typer.Typer]] = []
    return groups
