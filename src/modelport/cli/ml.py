"""``modelport ml ...``: the ``az ml`` v1 command shapes (§3 of the spec), so that CI scripts port by
replacing ``az ml`` with ``modelport ml``.

Each command is translated onto modelport's own command (``ml service get-logs`` →
``service logs``) and run there; only what ``az ml`` spelled differently is rewritten here:
Azure-only flags (``-g``, ``--subscription-id``, ``-v``, ...) are dropped with one warning,
``-f/--model-metadata-file`` becomes ``-m <modelId>``, and read commands print JSON by default
(``az ml`` printed ``serialize()`` JSON). Compute target commands say that Kubernetes targets
land with the Kubernetes target.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import typer
import typer.main

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.cli import groups
from modelport.cli.render import warnings_as_notes
from modelport.errors import UserErrorException

app = typer.Typer(
    help="Azure ML CLI v1 (`az ml`) command shapes: model, service, computetarget.", no_args_is_help=True
)
model_app = typer.Typer(help="az ml model: register, list, show, download, update, delete, deploy.")
service_app = typer.Typer(help="az ml service: list, show, get-logs, get-keys, regen-key, run, update, ...")
compute_app = typer.Typer(help="az ml computetarget: attach aks, create aks, detach, delete, show, list.")
app.add_typer(model_app, name="model", no_args_is_help=True)
app.add_typer(service_app, name="service", no_args_is_help=True)
app.add_typer(compute_app, name="computetarget", no_args_is_help=True)

# az ml flags with no meaning here: flag -> whether it takes a value.
AZURE_ONLY_FLAGS = {
    "-g": True,
    "--resource-group": True,
    "--subscription-id": True,
    "--query": True,
    "-v": False,
    "--verbose": False,
    "--only-show-errors": False,
    "--no-wait-for-completion": False,
}
OUTPUT_FORMATS = {"json": "json", "jsonc": "json", "yaml": "yaml", "yamlc": "yaml", "table": "table"}
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _read_metadata(path: str, workspace: str | None) -> str:
    """The ``modelId`` of a ``--output-metadata-file`` written by ``model register -t``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserErrorException(f"--model-metadata-file {path}: cannot read it as JSON ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("modelId"), str):
        raise UserErrorException(f"--model-metadata-file {path} has no modelId (written by `register -t`).")
    if workspace is not None and data.get("workspaceName") not in (None, workspace):
        raise UserErrorException(
            f"--model-metadata-file {path} is for workspace {data['workspaceName']!r}, not {workspace!r}."
        )
    return data["modelId"]


def translate(args: list[str]) -> tuple[list[str], list[str], str | None]:
    """Rewrite ``az ml`` arguments for modelport's command.

    Returns the new arguments, the Azure-only flags dropped, and the output format asked for
    (``None``: not given; ``"none"``: print nothing).
    """
    workspace = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-w", "--workspace-name")), None)
    result: list[str] = []
    dropped: list[str] = []
    output: str | None = None
    items = iter(args)
    for arg in items:
        flag, eq, inline = arg.partition("=")
        if flag in AZURE_ONLY_FLAGS:
            dropped.append(flag)
            if AZURE_ONLY_FLAGS[flag] and not eq:
                next(items, None)
        elif flag in ("-o", "--output"):
            output = inline if eq else next(items, "")
            if output != "none" and output not in OUTPUT_FORMATS:
                raise typer.BadParameter(
                    f"{output!r}: expected one of json, jsonc, yaml, yamlc, table, none",
                    param_hint="--output",
                )
        elif flag in ("-f", "--model-metadata-file"):
            result += ["-m", _read_metadata(inline if eq else next(items, ""), workspace)]
        elif flag == "--num_lines":
            result += ["--num-lines", *([inline] if eq else [])]
        else:
            result.append(arg)
    return result, dropped, output


def _has_output_option(command: Any) -> bool:
    return any("--output" in param.opts for param in command.params)


def run_native(group: str, command: str, args: list[str]) -> None:
    """Run ``modelport <group> <command>`` with the translated ``az ml`` arguments."""
    new_args, dropped, output = translate(args)
    if dropped:
        with warnings_as_notes():
            warnings.warn(
                f"{', '.join(dict.fromkeys(dropped))} ignored (Azure-only; modelport finds the workspace "
                "from -w or the config file).",
                AzureArgumentIgnoredWarning,
                stacklevel=2,
            )
    # typer's own (vendored) click Group: its sub-commands by name.
    target = typer.main.get_command(groups.group(group)).commands[command]  # type: ignore[attr-defined]
    if _has_output_option(target) and "--help" not in new_args:
        new_args += ["-o", OUTPUT_FORMATS.get(output or "json", "json")]
    sink = io.StringIO() if output == "none" else None
    with contextlib.redirect_stdout(sink) if sink is not None else contextlib.nullcontext():
        target.main(args=new_args, prog_name=f"modelport {group} {command}", standalone_mode=False)


def _passthrough(app_: typer.Typer, aml_name: str, group: str, command: str) -> None:
    def handler(ctx: typer.Context) -> None:
        run_native(group, command, list(ctx.args))

    handler.__doc__ = f"`az ml {app_.info.name or ''} {aml_name}` → `modelport {group} {command}`."
    app_.command(aml_name, context_settings=PASSTHROUGH, add_help_option=False, help=handler.__doc__)(handler)


for _name in ("register", "list", "show", "download", "update", "delete", "deploy"):
    _passthrough(model_app, _name, "model", _name)
for _aml, _native in {
    "list": "list",
    "show": "show",
    "update": "update",
    "delete": "delete",
    "run": "run",
    "get-logs": "logs",
    "get-keys": "keys",
    "regen-key": "regen-key",
    "get-access-token": "token",
}.items():
    _passthrough(service_app, _aml, "service", _native)


@model_app.command("package", context_settings=PASSTHROUGH, add_help_option=False)
def package(ctx: typer.Context) -> None:
    """Not supported: modelport builds no images (services run from the registered files)."""
    raise UserErrorException("`ml model package` is not supported: modelport builds no images.")


@model_app.command("profile", context_settings=PASSTHROUGH, add_help_option=False)
def profile(ctx: typer.Context) -> None:
    """Not supported (Azure ML's resource recommendation service)."""
    raise UserErrorException("`ml model profile` is not supported by modelport.")


# ---------------------------------------------------------------------- compute targets
def _kubernetes_only(kind: str) -> None:
    if kind.lower() not in ("aks", "kubernetes"):
        raise UserErrorException(
            f"compute target type {kind!r} is not supported; modelport has aks/kubernetes."
        )


@compute_app.command("create")
def create(
    kind: str = typer.Argument(..., help="aks"),
    name: str = typer.Option(..., "--name", "-n"),
    agent_count: int | None = typer.Option(None, "--agent-count"),
    vm_size: str | None = typer.Option(None, "--vm-size"),
    cluster_purpose: str | None = typer.Option(None, "--cluster-purpose"),
    location: str | None = typer.Option(None, "--location", "-l"),
    load_balancer_type: str | None = typer.Option(None, "--load-balancer-type"),
    load_balancer_subnet: str | None = typer.Option(None, "--load-balancer-subnet"),
    ssl_cname: str | None = typer.Option(None, "--ssl-cname"),
    ssl_cert_file: str | None = typer.Option(None, "--ssl-cert-file"),
    ssl_key_file: str | None = typer.Option(None, "--ssl-key-file"),
    vnet_resourcegroup_name: str | None = typer.Option(None, "--vnet-resourcegroup-name"),
    vnet_name: str | None = typer.Option(None, "--vnet-name"),
    subnet_name: str | None = typer.Option(None, "--subnet-name"),
    service_cidr: str | None = typer.Option(None, "--service-cidr"),
    dns_service_ip: str | None = typer.Option(None, "--dns-service-ip"),
    docker_bridge_cidr: str | None = typer.Option(None, "--docker-bridge-cidr"),
    no_wait: bool = typer.Option(False, "--no-wait"),
    workspace: str | None = typer.Option(None, "--workspace-name", "-w"),
    resource_group: str | None = typer.Option(None, "--resource-group", "-g"),
    path: Path | None = typer.Option(None, "--path"),
) -> None:
    """Validate the provisioning flags as Azure ML did; provisioning lands with the Kubernetes target."""
    from modelport.azureml.core.compute import AksCompute, ComputeTarget

    _kubernetes_only(kind)
    config = AksCompute.provisioning_configuration(
        agent_count=agent_count,
        vm_size=vm_size,
        ssl_cname=ssl_cname,
        ssl_cert_pem_file=ssl_cert_file,
        ssl_key_pem_file=ssl_key_file,
        location=location,
        vnet_resourcegroup_name=vnet_resourcegroup_name,
        vnet_name=vnet_name,
        subnet_name=subnet_name,
        service_cidr=service_cidr,
        dns_service_ip=dns_service_ip,
        docker_bridge_cidr=docker_bridge_cidr,
        cluster_purpose=cluster_purpose,
        load_balancer_type=load_balancer_type,
        load_balancer_subnet=load_balancer_subnet,
    )
    ComputeTarget.create(None, name, config)


@compute_app.command("attach")
def attach(
    kind: str = typer.Argument(..., help="aks (or kubernetes)"),
    name: str = typer.Option(..., "--name", "-n"),
    compute_resource_id: str | None = typer.Option(None, "--compute-resource-id", "-i"),
    cluster_purpose: str | None = typer.Option(None, "--cluster-purpose"),
    load_balancer_type: str | None = typer.Option(None, "--load-balancer-type"),
    load_balancer_subnet: str | None = typer.Option(None, "--load-balancer-subnet"),
    workspace: str | None = typer.Option(None, "--workspace-name", "-w"),
    resource_group: str | None = typer.Option(None, "--resource-group", "-g"),
    path: Path | None = typer.Option(None, "--path"),
) -> None:
    """Validate the attach flags as Azure ML did; attaching lands with the Kubernetes target."""
    from modelport.azureml.core.compute import AksCompute, ComputeTarget

    _kubernetes_only(kind)
    config = AksCompute.attach_configuration(
        resource_id=compute_resource_id,
        cluster_name=None if compute_resource_id else name,
        resource_group=None if compute_resource_id else resource_group,
        cluster_purpose=cluster_purpose,
        load_balancer_type=load_balancer_type,
        load_balancer_subnet=load_balancer_subnet,
    )
    ComputeTarget.attach(None, name, config)


def _no_target(name: str) -> Any:
    from modelport.azureml.core.compute import ComputeTarget

    return ComputeTarget(None, name)


@compute_app.command("detach")
def detach(
    name: str = typer.Option(..., "--name", "-n"), path: Path | None = typer.Option(None, "--path")
) -> None:
    """No Kubernetes target can be attached yet, so none can be detached."""
    _no_target(name)


@compute_app.command("delete")
def delete(
    name: str = typer.Option(..., "--name", "-n"), path: Path | None = typer.Option(None, "--path")
) -> None:
    """No Kubernetes target can be created yet, so none can be deleted."""
    _no_target(name)


@compute_app.command("show")
def show(
    name: str = typer.Option(..., "--name", "-n"), path: Path | None = typer.Option(None, "--path")
) -> None:
    """Show a compute target: none exist until the Kubernetes target lands."""
    _no_target(name)


@compute_app.command("list")
def list_(path: Path | None = typer.Option(None, "--path")) -> None:
    """Attached compute targets (JSON): none until the Kubernetes target lands."""
    typer.echo(json.dumps([]))


__all__ = ["app", "translate"]
