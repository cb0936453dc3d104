"""The sub-command groups and top-level commands, by name, imported only when used.

``modelport serve`` runs inside every replica's environment, which holds the scoring runtime's
dependencies but not the control plane's: loading just the command asked for keeps it so, and
keeps every command's start-up short.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

# name → module holding ``app`` (a typer group)
GROUPS = {
    "workspace": "modelport.cli.workspace",
    "model": "modelport.cli.model",
    "environment": "modelport.cli.environment",
    "config": "modelport.cli.config",
    "service": "modelport.cli.service",
    "local": "modelport.cli.local",
    "ml": "modelport.cli.ml",
    "computetarget": "modelport.cli.computetarget",
    "doctor": "modelport.cli.doctor",
}
# name → (module, function) of a top-level command
COMMANDS = {"serve": ("modelport.cli.serve", "serve")}


def group(name: str) -> typer.Typer:
    """The typer group ``name``."""
    return importlib.import_module(GROUPS[name]).app


def command(name: str) -> Callable[..., object]:
    """The function of top-level command ``name``."""
    module, function = COMMANDS[name]
    return getattr(importlib.import_module(module), function)
