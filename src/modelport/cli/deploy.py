"""``modelport model deploy`` (the ``az ml model deploy`` shape)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.params import parse_pairs
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, warnings_as_notes

if TYPE_CHECKING:
    from modelport.config import InferenceConfig
    from modelport.workspace import Workspace

SERVICE_COLUMNS = ["name", "state", "computeType", "machine", "models", "scoringUri", "generation"]


def load_inference(
    path: Path | None, env_name: str | None, env_version: str | None, ws: Workspace
) -> InferenceConfig | None:
    """The inference config from ``path``, with ``-e/--ev`` naming a registered environment."""
    from modelport.config import load_inference_config
    from modelport.registry.environment import Environment

    if path is None:
        return None
    environment = Environment.get(ws, env_name, version=env_version) if env_name else None
    return load_inference_config(path, environment=environment)


def deploy(
    name: str = typer.Option(..., "--name", "-n", help="Service name (3-32 chars: a-z, 0-9, '-')."),
    model: list[str] = typer.Option([], "--model", "-m", help="Model id NAME:VERSION; repeatable."),
    inference_config: Path | None = typer.Option(
        None, "-ic", "--ic", "--inference-config-file", help="inferenceconfig.json (or YAML)."
    ),
    deploy_config: Path | None = typer.Option(
        None, "-dc", "--dc", "--deploy-config-file", help="deploymentconfig.json (or YAML)."
    ),
    compute_target: str | None = typer.Option(None, "-ct", "--ct", "--compute-target", help="Target name."),
    environment_name: str | None = typer.Option(None, "-e", "--environment-name", help="Registered env."),
    environment_version: str | None = typer.Option(None, "--ev", "--environment-version"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a service of the same name."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the deployment is recorded."),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE; repeatable."),
    prop: list[str] | None = typer.Option(None, "--property", help="KEY=VALUE; repeatable."),
    description: str | None = typer.Option(None, "--description", "-d"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Deploy models as a web service and wait until it is Healthy (or say why it is not)."""
    from modelport.config import load_deployment_config
    from modelport.service.deploy import deploy as deploy_service

    ws = open_workspace(workspace, path)
    with warnings_as_notes():
        inference = load_inference(inference_config, environment_name, environment_version, ws)
        config = load_deployment_config(deploy_config) if deploy_config is not None else None
    if config is not None and (tag or prop or description):
        config.tags = {**(config.tags or {}), **parse_pairs(tag, "--tag")}
        config.properties = {**(config.properties or {}), **parse_pairs(prop, "--property")}
        config.description = description or config.description
    service = deploy_service(
        ws,
        name,
        list(model),
        inference,
        config,
        deployment_target=compute_target,
        overwrite=overwrite,
        show_output=True,
    )
    if not no_wait:
        with contextlib.redirect_stdout(sys.stderr):  # progress on stderr; stdout keeps the result
            service.wait_for_deployment(show_output=True)
    emit(service.serialize(), output, columns=SERVICE_COLUMNS)
