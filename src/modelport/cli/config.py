"""``modelport config validate``: load inference and deployment config files, print the effective result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, warnings_as_notes

# Loaded by the command (pydantic, the registry): `modelport --help` lists this group without them.
if TYPE_CHECKING:
    from modelport.config import InferenceConfig

app = new_group("config")

INFERENCE_CONFIG_OPTION = typer.Option(
    None,
    "--inference-config-file",
    "--ic",
    "-ic",
    dir_okay=False,
    help="inferenceconfig.json or YAML (entry script, source directory, environment).",
)
DEPLOY_CONFIG_OPTION = typer.Option(
    None,
    "--deploy-config-file",
    "--dc",
    "-dc",
    dir_okay=False,
    help="deploymentconfig.json or YAML (computeType aks/kubernetes or local; aci and aksendpoint mapped).",
)

# Secrets may sit in the files (keys, registry passwords); they are checked but never printed.
_SECRET_KEYS = frozenset({"password", "primary_key", "secondary_key"})


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "***" if key in _SECRET_KEYS and item is not None else _masked(item)
            for key, item in value.items()
        }
    return value


def _inference_view(config: InferenceConfig, output: OutputFormat) -> dict[str, Any]:
    view = {"entryScriptPath": str(config.entry_script_path), **config.to_file_dict()}
    if config.environment is not None and output is OutputFormat.table:
        # The full definition is long; the table names it, json/yaml print it whole.
        view["environment"] = (
            f"{config.environment.name} (version {config.environment.version or 'unregistered'})"
        )
    masked: dict[str, Any] = _masked(view)
    return masked


@app.command("validate")
def validate(
    inference_config_file: Path | None = INFERENCE_CONFIG_OPTION,
    deploy_config_file: Path | None = DEPLOY_CONFIG_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Load and validate the files as a deployment would, and print the effective configuration.

    Relative paths in the inference config are resolved against the current directory, as Azure
    ML's CLI did. Warnings (unknown or ignored keys, mapped compute types) go to stderr.
    """
    from modelport.config import load_deployment_config, load_inference_config

    if inference_config_file is None and deploy_config_file is None:
        raise typer.BadParameter(
            "give --inference-config-file/-ic FILE, --deploy-config-file/-dc FILE, or both",
            param_hint="'-ic' / '-dc'",
        )
    sections: dict[str, dict[str, Any]] = {}
    with warnings_as_notes():
        if inference_config_file is not None:
            sections["inferenceConfig"] = _inference_view(
                load_inference_config(inference_config_file), output
            )
        if deploy_config_file is not None:
            effective = load_deployment_config(deploy_config_file).effective()
            sections["deploymentConfig"] = _masked(effective.model_dump())
    if output is OutputFormat.table:
        titles = {
            "inferenceConfig": "inference configuration",
            "deploymentConfig": "deployment configuration",
        }
        for name, section in sections.items():
            emit(section, output, title=f"{titles[name]} (effective)")
    else:
        emit(sections, output)
