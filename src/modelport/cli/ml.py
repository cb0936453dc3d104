"""``modelport ml ...``: the ``az ml`` v1 command shapes, so that CI scripts port by replacing
``az ml`` with ``modelport ml`` (docs/migrating-from-azureml.md, "CLI").

Each command is translated onto modelport's own command (``ml service get-logs`` →
``service logs``) and run there; only what ``az ml`` spelled differently is rewritten here:
Azure-only flags (``-g``, ``--subscription-id``, ``-v``, ...) are dropped with one warning,
``-f/--model-metadata-file`` becomes ``-m <modelId>``, and read commands print JSON by default
(``az ml`` printed ``serialize()`` JSON). Compute target commands say that Kubernetes targets
land with the Kubernetes target.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import typer.main

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.cli import groups
from modelport.cli.computetarget import (
    CONTEXT_OPTION,
    DEADLINE_OPTION,
    IMAGE_OPTION,
    KUBECONFIG_OPTION,
    NAMESPACE_OPTION,
    PURPOSE_OPTION,
    SCORING_URL_OPTION,
    SERVICE_TYPE_OPTION,
    STORE_ENDPOINT_OPTION,
    SYSTEM_NAMESPACE_OPTION,
)
from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, warnings_as_notes
from modelport.errors import UserErrorException

app = new_group("ml")
model_app = typer.Typer(help="az ml model: register, list, show, download, update, delete, deploy, package.")
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
    model_id: str = data["modelId"]  # checked above
    return model_id


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


def _command(app_: typer.Typer, name: str) -> Any:
    """Command ``name`` of typer group ``app_`` (typer's own, vendored, click Group)."""
    # typer types get_command() as returning a plain Command; for a Typer with commands it is a group.
    return typer.main.get_command(app_).commands[name]  # type: ignore[attr-defined]


def run_native(group: str, command: str, args: list[str]) -> None:
    """Run ``modelport <group> <command>`` with the translated ``az ml`` arguments."""
    run_command(_command(groups.group(group), command), f"modelport {group} {command}", args)


def run_command(target: Any, prog: str, args: list[str]) -> None:
    """Run click command ``target`` with the ``az ml`` arguments ``args`` translated."""
    new_args, dropped, output = translate(args)
    if dropped:
        with warnings_as_notes():
            warnings.warn(
                f"{', '.join(dict.fromkeys(dropped))} ignored (Azure-only; modelport finds the workspace "
                "from -w or the config file).",
                AzureArgumentIgnoredWarning,
                stacklevel=2,
            )
    if _has_output_option(target) and "--help" not in new_args:
        new_args += ["-o", OUTPUT_FORMATS.get(output or "json", "json")]
    elif output not in (None, "none"):
        with warnings_as_notes():
            warnings.warn(
                f"-o {output} has no effect on `{prog}`: it has one output form (-o none silences it).",
                AzureArgumentIgnoredWarning,
                stacklevel=2,
            )
    sink = io.StringIO() if output == "none" else None
    with contextlib.redirect_stdout(sink) if sink is not None else contextlib.nullcontext():
        target.main(args=new_args, prog_name=prog, standalone_mode=False)


def _passthrough(app_: typer.Typer, aml_name: str, resolve: Callable[[], Any], prog: str) -> None:
    """Register ``aml_name`` on ``app_``: runs the command ``resolve()`` returns with translated args."""

    def handler(ctx: typer.Context) -> None:
        run_command(resolve(), prog, list(ctx.args))

    handler.__doc__ = f"`az ml {app_.info.name or ''} {aml_name}` → `{prog}`."
    app_.command(aml_name, context_settings=PASSTHROUGH, add_help_option=False, help=handler.__doc__)(handler)


def _native(group: str, command: str) -> Callable[[], Any]:
    """A resolver of ``modelport <group> <command>``: its module is imported only when it runs."""
    return lambda: _command(groups.group(group), command)


for _name in ("register", "list", "show", "download", "update", "delete", "deploy", "package"):
    _passthrough(model_app, _name, _native("model", _name), f"modelport model {_name}")
for _aml, _native_name in {
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
    _passthrough(service_app, _aml, _native("service", _native_name), f"modelport service {_native_name}")


@model_app.command("profile", context_settings=PASSTHROUGH, add_help_option=False)
def profile(ctx: typer.Context) -> None:
    """Not supported (Azure ML's resource recommendation service)."""
    raise UserErrorException("`ml model profile` is not supported by modelport.")


# ---------------------------------------------------------------------- compute targets
# The commands call the facade (modelport.azureml.core.compute), so that `ml computetarget` and
# the SDK share every rule and message; run_command drops Azure-only flags and handles -o for
# them as for the other `ml` commands.
compute_commands = typer.Typer(no_args_is_help=True)
NAME_OPTION = typer.Option(..., "--name", "-n", help="Compute target name (3–24 letters, digits, dashes).")
NO_WAIT_OPTION = typer.Option(
    False, "--no-wait", help="Accepted; modelport's attach and create are synchronous."
)


def _kubernetes_only(kind: str) -> None:
    if kind.lower() not in ("aks", "kubernetes"):
        raise UserErrorException(
            f"compute target type {kind!r} is not supported; modelport has aks/kubernetes."
        )


def _summary(compute: Any) -> dict[str, Any]:
    """The table row of a target (json and yaml print all of ``serialize()``)."""
    return {
        "name": compute.name,
        "computeType": compute.type,
        "provisioningState": compute.provisioning_state,
        "isAttachedCompute": compute.is_attached,
        "clusterPurpose": compute.cluster_purpose,
        "context": compute.kubernetes.context,
        "namespace": compute.kubernetes.namespace,
    }


def _emit_computes(computes: list[Any], output: OutputFormat, single: bool = False) -> None:
    rows = [_summary(c) if output is OutputFormat.table else c.serialize() for c in computes]
    emit(rows[0] if single else rows, output)


def _report(compute: Any, is_delete_operation: bool = False) -> None:
    """The operation's progress and outcome on stderr; raises Azure ML's message if it failed."""
    with contextlib.redirect_stdout(sys.stderr):
        compute.wait_for_completion(show_output=True, is_delete_operation=is_delete_operation)


def _target_options(**options: Any) -> dict[str, Any]:
    """modelport's options of the target, under the facade's names (unset ones left out)."""
    renamed = {"store_endpoint": "store_endpoint_url", "progress_deadline": "progress_deadline_s"}
    return {renamed.get(key, key): value for key, value in options.items() if value is not None}


@compute_commands.command("create")
def create(
    kind: str = typer.Argument(..., help="aks"),
    name: str = NAME_OPTION,
    agent_count: int | None = typer.Option(None, "--agent-count", help="Recorded; no nodes are provisioned."),
    vm_size: str | None = typer.Option(None, "--vm-size", help="Recorded; no nodes are provisioned."),
    cluster_purpose: str | None = PURPOSE_OPTION,
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
    context: str | None = CONTEXT_OPTION,
    kubeconfig: str | None = KUBECONFIG_OPTION,
    namespace: str | None = NAMESPACE_OPTION,
    system_namespace: str | None = SYSTEM_NAMESPACE_OPTION,
    image: str | None = IMAGE_OPTION,
    frontend_service_type: str | None = SERVICE_TYPE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Create an AKS target in a kubeconfig context (default: the current one); prints it as JSON."""
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
        **_target_options(
            context=context,
            kubeconfig=kubeconfig,
            namespace=namespace,
            system_namespace=system_namespace,
            image=image,
            frontend_service_type=frontend_service_type,
        ),
    )
    with warnings_as_notes():
        compute = ComputeTarget.create(open_workspace(workspace, path), name, config)
    _report(compute)
    _emit_computes([compute], output, single=True)


@compute_commands.command("attach")
def attach(
    kind: str = typer.Argument(..., help="aks (or kubernetes)"),
    name: str = NAME_OPTION,
    compute_resource_id: str | None = typer.Option(
        None, "--compute-resource-id", "-i", help="AKS resource id: its last segment names the context."
    ),
    context: str | None = typer.Option(
        None, "--context", "--cluster-name", help="The kubeconfig context to attach (instead of -i)."
    ),
    cluster_purpose: str | None = PURPOSE_OPTION,
    load_balancer_type: str | None = typer.Option(None, "--load-balancer-type"),
    load_balancer_subnet: str | None = typer.Option(None, "--load-balancer-subnet"),
    kubeconfig: str | None = KUBECONFIG_OPTION,
    namespace: str | None = NAMESPACE_OPTION,
    system_namespace: str | None = SYSTEM_NAMESPACE_OPTION,
    image: str | None = IMAGE_OPTION,
    frontend_service_type: str | None = SERVICE_TYPE_OPTION,
    scoring_url: str | None = SCORING_URL_OPTION,
    store_endpoint: str | None = STORE_ENDPOINT_OPTION,
    progress_deadline: int | None = DEADLINE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Attach the kubeconfig context named by -i (its cluster name) or --context; prints it as JSON."""
    from modelport.azureml.core.compute import AksCompute, ComputeTarget, KubernetesCompute

    _kubernetes_only(kind)
    if (compute_resource_id is None) == (context is None):
        raise UserErrorException(
            "attach aks needs either -i <AKS resource id> (its last segment names the kubeconfig context) "
            "or --context CONTEXT, not both."
        )
    options = _target_options(
        kubeconfig=kubeconfig,
        namespace=namespace,
        system_namespace=system_namespace,
        image=image,
        frontend_service_type=frontend_service_type,
        scoring_url=scoring_url,
        store_endpoint=store_endpoint,
        progress_deadline=progress_deadline,
    )
    if compute_resource_id is not None:
        config: Any = AksCompute.attach_configuration(
            resource_id=compute_resource_id,
            cluster_purpose=cluster_purpose,
            load_balancer_type=load_balancer_type,
            load_balancer_subnet=load_balancer_subnet,
            **options,
        )
    elif load_balancer_type or load_balancer_subnet:
        raise UserErrorException(
            "--load-balancer-type/--load-balancer-subnet go with -i; with --context choose the front end's "
            "Service with --frontend-service-type."
        )
    else:
        config = KubernetesCompute.attach_configuration(
            context=context, cluster_purpose=cluster_purpose, **options
        )
    with warnings_as_notes():
        compute = ComputeTarget.attach(open_workspace(workspace, path), name, config)
    _report(compute)
    _emit_computes([compute], output, single=True)


def _existing(name: str, workspace: str | None, path: Path | None) -> Any:
    from modelport.azureml.core.compute import ComputeTarget

    return ComputeTarget(open_workspace(workspace, path), name)


@compute_commands.command("detach")
def detach(
    name: str = NAME_OPTION, workspace: str | None = WORKSPACE_OPTION, path: Path | None = PATH_OPTION
) -> None:
    """Remove what attach installed and forget the target; the cluster keeps running."""
    compute = _existing(name, workspace, path)
    compute.detach()
    _report(compute, is_delete_operation=True)


@compute_commands.command("delete")
def delete(
    name: str = NAME_OPTION, workspace: str | None = WORKSPACE_OPTION, path: Path | None = PATH_OPTION
) -> None:
    """A created target: detached (the cluster is never deleted). An attached one: refused (use detach)."""
    compute = _existing(name, workspace, path)
    with warnings_as_notes():
        compute.delete()
    _report(compute, is_delete_operation=True)


@compute_commands.command("show")
def show(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """A compute target (Azure ML's serialize() JSON)."""
    _emit_computes([_existing(name, workspace, path)], output, single=True)


@compute_commands.command("list")
def list_(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """The workspace's compute targets (the local target is implicit and not listed)."""
    from modelport.azureml.core.compute import ComputeTarget

    _emit_computes(ComputeTarget.list(open_workspace(workspace, path)), output)


for _name in ("create", "attach", "detach", "delete", "show", "list"):
    _passthrough(
        compute_app,
        _name,
        functools.partial(_command, compute_commands, _name),
        f"modelport ml computetarget {_name}",
    )


__all__ = ["app", "translate"]
