"""The sub-command groups and top-level commands, by name, imported only when used.

``modelport serve`` runs inside every replica's environment, which holds the scoring runtime's
dependencies but not the control plane's: loading just the command asked for keeps it so, and
keeps every command's start-up short.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import typer

from modelport.cli.helppage import HelpGroup


@dataclass(frozen=True)
class Group:
    """A sub-command group: the module holding its ``app``, and its one-line help."""

    module: str
    help: str


GROUPS = {
    "workspace": Group("modelport.cli.workspace", "Create and inspect workspaces."),
    "model": Group("modelport.cli.model", "Register, inspect, download, deploy and delete models."),
    "environment": Group(
        "modelport.cli.environment", "Register and inspect environments (Python, packages, base image)."
    ),
    "config": Group("modelport.cli.config", "Check inferenceconfig and deploymentconfig files."),
    "service": Group("modelport.cli.service", "Inspect, use, update and delete deployed services."),
    "local": Group("modelport.cli.local", "The local target's agent (front end and replica processes)."),
    "ml": Group(
        "modelport.cli.ml", "Azure ML CLI v1 (`az ml`) command shapes: model, service, computetarget."
    ),
    "computetarget": Group(
        "modelport.cli.computetarget", "Compute targets: attach Kubernetes clusters, list and detach them."
    ),
    "doctor": Group(
        "modelport.cli.doctor", "Check that a target really serves: deploy a probe, score it, remove it."
    ),
}
# name → (module, function) of a top-level command
COMMANDS = {"serve": ("modelport.cli.serve", "serve")}
# ``serve`` takes its arguments raw, --help included: the runtime's own parser reads them.
COMMAND_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def new_group(name: str) -> typer.Typer:
    """The empty typer group ``name`` (its module adds the commands)."""
    return typer.Typer(help=GROUPS[name].help, no_args_is_help=True, cls=HelpGroup)


def group(name: str) -> typer.Typer:
    """The typer group ``name`` with its commands (its module imported)."""
    app: typer.Typer = importlib.import_module(GROUPS[name].module).app
    return app


def command(name: str) -> Callable[..., object]:
    """The function of top-level command ``name``."""
    module, function = COMMANDS[name]
    found: Callable[..., object] = getattr(importlib.import_module(module), function)
    return found
