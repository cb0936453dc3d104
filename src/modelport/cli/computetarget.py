"""``modelport computetarget attach|create kubernetes, detach, list, show``: attached clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, note

app = new_group("computetarget")
attach_app = typer.Typer(help="Attach a cluster as a compute target.", no_args_is_help=True)
create_app = typer.Typer(
    help="Create a compute target in an existing kubeconfig context.", no_args_is_help=True
)
app.add_typer(attach_app, name="attach")
app.add_typer(create_app, name="create")

NAME_OPTION = typer.Option(..., "--name", "-n", help="Compute target name (3–24 letters, digits, dashes).")
KUBECONFIG_OPTION = typer.Option(
    None, "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
)
CONTEXT_OPTION = typer.Option(None, "--context", help="kubeconfig context (default: its current context).")
IN_CLUSTER_OPTION = typer.Option(False, "--in-cluster", help="Use the pod's service account instead.")
NAMESPACE_OPTION = typer.Option(None, "--namespace", help="Namespace of the services (modelport-services).")
SYSTEM_NAMESPACE_OPTION = typer.Option(
    None, "--system-namespace", help="Namespace of the front end (modelport-system)."
)
PURPOSE_OPTION = typer.Option(
    None, "--cluster-purpose", help="FastProd (≥ 3 nodes, ≥ 12 vCPUs; the default) or DevTest."
)
IMAGE_OPTION = typer.Option(None, "--image", help="Runtime image of replicas and front end.")
SERVICE_TYPE_OPTION = typer.Option(
    None, "--frontend-service-type", help="LoadBalancer (default), NodePort or ClusterIP."
)
FRONTEND_REPLICAS_OPTION = typer.Option(
    None, "--frontend-replicas", help="Front-end replicas (1..10; default 3 on FastProd, 1 on DevTest)."
)
SCORING_URL_OPTION = typer.Option(
    None, "--scoring-url", help="The front end's address as clients reach it (ingress, port-forward)."
)
STORE_ENDPOINT_OPTION = typer.Option(
    None, "--store-endpoint", help="The artifact store's endpoint URL as pods reach it, if it differs."
)
DEADLINE_OPTION = typer.Option(
    None, "--progress-deadline", help="Seconds a rollout may make no progress before it fails (600)."
)
ENV_CACHE_OPTION = typer.Option(
    None,
    "--env-cache",
    help="Where each node keeps built environments: a hostPath (/var/lib/modelport/envs) or pvc:CLAIM.",
)
ENV_CACHE_MAX_OPTION = typer.Option(
    None, "--env-cache-max-gb", help="Size cap of a node's environment cache (20); LRU eviction above it."
)
INDEX_URL_OPTION = typer.Option(
    None, "--index-url", help="Package index pods install environments from (default: uv's, PyPI)."
)
EXTRA_INDEX_OPTION = typer.Option(None, "--extra-index-url", help="Another package index (repeatable).")
TRUSTED_HOST_OPTION = typer.Option(
    None, "--trusted-host", help="Index host allowed without valid TLS (repeatable)."
)
PROXY_OPTION = typer.Option(
    None, "--package-proxy", help="HTTP(S) proxy for environment builds: http://[USER:${VAR}@]HOST:PORT."
)
NO_PROXY_OPTION = typer.Option(
    None, "--no-proxy", help="Host the builds reach without the proxy (repeatable)."
)

ENV_MODE_OPTION = typer.Option(
    None,
    "--env-mode",
    help="How environments reach pods: node-cache (installed on each node; the default) or image "
    "(built here into an image, pushed to --registry).",
)
REGISTRY_OPTION = typer.Option(
    None, "--registry", help="Registry HOST[:PORT][/PREFIX] environment images are pushed to and pulled from."
)
REGISTRY_USERNAME_OPTION = typer.Option(None, "--registry-username", help="Registry user (${VAR} allowed).")
REGISTRY_PASSWORD_OPTION = typer.Option(
    None,
    "--registry-password",
    help="Registry password as a ${VAR} reference, resolved where you deploy (never stored).",
)
REGISTRY_INSECURE_OPTION = typer.Option(
    None, "--registry-insecure", help="The registry speaks plain HTTP (a testbed, an internal mirror)."
)


def _target(**options: Any) -> Any:
    from modelport.compute.kubernetes.target import target_from_options

    return target_from_options(**options)


def kubernetes(
    ctx: typer.Context,
    name: str = NAME_OPTION,
    kubeconfig: str | None = KUBECONFIG_OPTION,
    context: str | None = CONTEXT_OPTION,
    in_cluster: bool = IN_CLUSTER_OPTION,
    namespace: str | None = NAMESPACE_OPTION,
    system_namespace: str | None = SYSTEM_NAMESPACE_OPTION,
    cluster_purpose: str | None = PURPOSE_OPTION,
    image: str | None = IMAGE_OPTION,
    frontend_service_type: str | None = SERVICE_TYPE_OPTION,
    frontend_replicas: int | None = FRONTEND_REPLICAS_OPTION,
    scoring_url: str | None = SCORING_URL_OPTION,
    store_endpoint: str | None = STORE_ENDPOINT_OPTION,
    progress_deadline: int | None = DEADLINE_OPTION,
    env_cache: str | None = ENV_CACHE_OPTION,
    env_cache_max_gb: float | None = ENV_CACHE_MAX_OPTION,
    index_url: str | None = INDEX_URL_OPTION,
    extra_index_url: list[str] | None = EXTRA_INDEX_OPTION,
    trusted_host: list[str] | None = TRUSTED_HOST_OPTION,
    package_proxy: str | None = PROXY_OPTION,
    no_proxy: list[str] | None = NO_PROXY_OPTION,
    env_mode: str | None = ENV_MODE_OPTION,
    registry: str | None = REGISTRY_OPTION,
    registry_username: str | None = REGISTRY_USERNAME_OPTION,
    registry_password: str | None = REGISTRY_PASSWORD_OPTION,
    registry_insecure: bool | None = REGISTRY_INSECURE_OPTION,
    agent_count: int | None = typer.Option(None, "--agent-count", help="create: recorded, not provisioned."),
    vm_size: str | None = typer.Option(None, "--vm-size", help="create: recorded, not provisioned."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Attach (or create in) a kubeconfig context: checks the cluster purpose, installs the front end.

    ``create`` is attach into an existing context that records the requested size; provisioning
    clusters from a cloud is not built in.
    """
    from modelport.compute.kubernetes.cluster import attach, create
    from modelport.compute.kubernetes.target_status import describe
    from modelport.errors import UserErrorException

    creating = ctx.parent is not None and ctx.parent.info_name == "create"
    provisioning = {k: v for k, v in {"agentCount": agent_count, "vmSize": vm_size}.items() if v is not None}
    if provisioning and not creating:
        raise UserErrorException("--agent-count and --vm-size belong to `computetarget create kubernetes`.")
    target = _target(
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        namespace=namespace,
        system_namespace=system_namespace,
        cluster_purpose=cluster_purpose,
        image=image,
        frontend_service_type=frontend_service_type,
        frontend_replicas=frontend_replicas,
        scoring_url=scoring_url,
        store_endpoint_url=store_endpoint,
        progress_deadline_s=progress_deadline,
        env_cache=env_cache,
        env_cache_max_gb=env_cache_max_gb,
        package_index_url=index_url,
        extra_index_urls=tuple(extra_index_url) if extra_index_url else None,
        trusted_hosts=tuple(trusted_host) if trusted_host else None,
        package_proxy=package_proxy,
        no_proxy=tuple(no_proxy) if no_proxy else None,
        env_mode=env_mode,
        registry=registry,
        registry_username=registry_username,
        registry_password=registry_password,
        registry_insecure=registry_insecure,
    )
    ws = open_workspace(workspace, path)
    if creating:
        if provisioning:
            note(f"Not provisioned (recorded only): {', '.join(f'{k}={v}' for k, v in provisioning.items())}")
        record = create(ws, name, target, provisioning, progress=note)
    else:
        record = attach(ws, name, target, progress=note)
    emit(describe(ws, record), output)


attach_app.command("kubernetes")(kubernetes)
create_app.command("kubernetes")(kubernetes)


@app.command("detach")
def detach(
    name: str = NAME_OPTION,
    force: bool = typer.Option(
        False,
        "--force",
        help="Forget the target even if the cluster cannot be reached (nothing removed there).",
    ),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Remove what attach installed and forget the target (its services must be deleted first)."""
    from modelport.compute.kubernetes.cluster import detach as detach_target

    for line in detach_target(open_workspace(workspace, path), name, progress=note, force=force):
        note(line)


@app.command("list")
def list_(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Attached compute targets (the local target is always there and not listed)."""
    from modelport.compute import targets

    rows = [
        {
            "name": r.name,
            "computeType": r.compute_type,
            "provisioningState": r.state,
            "context": r.definition.get("context"),
            "namespace": r.definition.get("namespace"),
            "clusterPurpose": r.definition.get("cluster_purpose"),
        }
        for r in targets.list_targets(open_workspace(workspace, path))
    ]
    emit(rows, output, columns=["name", "computeType", "provisioningState", "context", "namespace"])


@app.command("show")
def show(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """A target with what the cluster reports now: nodes, CPUs, front end readiness and address."""
    from modelport.compute import targets
    from modelport.compute.kubernetes.target_status import describe

    ws = open_workspace(workspace, path)
    emit(describe(ws, targets.require_target(ws, name)), output)
