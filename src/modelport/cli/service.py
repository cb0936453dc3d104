"""``modelport service list|show|logs|update|delete|keys [add|list|update|remove]|regen-key|token|
tokens revoke|run``."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.deploy import SERVICE_COLUMNS, load_inference
from modelport.cli.groups import new_group
from modelport.cli.params import parse_filters, parse_pairs
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit, warnings_as_notes

if TYPE_CHECKING:
    from modelport.service.webservice import Webservice

app = new_group("service")
NAME_OPTION = typer.Option(..., "--name", "-n", help="Service name.")


def _service(name: str, workspace: str | None, path: Path | None) -> Webservice:
    from modelport.service.webservice import Webservice

    return Webservice(open_workspace(workspace, path), name)


@app.command("list")
def list_(
    compute_type: str | None = typer.Option(None, "--compute-type", help="local or kubernetes (AKS)."),
    model_name: str | None = typer.Option(None, "--model-name"),
    model_id: str | None = typer.Option(None, "--model-id"),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY or KEY=VALUE; repeatable."),
    prop: list[str] | None = typer.Option(None, "--property", help="KEY or KEY=VALUE; repeatable."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List services."""
    from modelport.service.webservice import Webservice

    services = Webservice.list(
        open_workspace(workspace, path),
        compute_type=compute_type,
        model_name=model_name,
        model_id=model_id,
        tags=parse_filters(tag),
        properties=parse_filters(prop),
    )
    emit([s.serialize() for s in services], output, columns=SERVICE_COLUMNS)


@app.command("show")
def show(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show a service: state, error, replicas and the last autoscaling decision (observed now)."""
    service = _service(name, workspace, path)
    service.update_deployment_state()  # a cluster is observed (and a refused apply retried) here
    data = service.serialize()
    if output is OutputFormat.table:
        observed = data.get("deploymentStatus") or {}
        data = {
            **{
                k: data[k]
                for k in ("name", "state", "computeName", "machine", "scoringUri", "models", "generation")
            },
            "error": json.dumps(data["error"]) if data["error"] else None,
            "replicas": f"{observed.get('readyReplicas', 0)} ready of {observed.get('desiredReplicas', '?')}",
            "autoscale": _decision_line(observed.get("autoscale")),
            "limitsNotEnforced": "; ".join(observed.get("limitsNotEnforced") or []) or None,
            "authEnabled": data["authEnabled"],
            "tokenAuthEnabled": data["aadAuthEnabled"],
        }
    emit(data, output)


def _decision_line(decision: dict[str, Any] | None) -> str | None:
    """The last autoscaling decision in one line (``-o json`` shows every input)."""
    if not decision:
        return None
    return (
        f"{decision['reason']}: {decision['message']} ({decision['current_replicas']} -> "
        f"{decision['desired_replicas']} replicas, at {decision.get('time', '?')})"
    )


@app.command("logs")
def logs(
    name: str = NAME_OPTION,
    num_lines: int = typer.Option(5000, "--num-lines", "-l", help="How many lines at most."),
    init: bool = typer.Option(False, "--init", help="The preparation log (env build, models)."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Print a service's logs."""
    sys.stdout.write(_service(name, workspace, path).get_logs(num_lines=num_lines, init=init))


EVENT_KINDS = ("operation", "state", "rollout", "replica", "autoscale", "cluster")


@app.command("events")
def events(
    name: str = NAME_OPTION,
    kind: list[str] | None = typer.Option(
        None, "--kind", "-k", help=f"Only these kinds (repeatable): {', '.join(EVENT_KINDS)}."
    ),
    since: datetime | None = typer.Option(
        None, "--since", help="Only events at or after this time (ISO 8601)."
    ),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Print a service's history: operations, state changes, restarts, autoscale decisions."""
    unknown = sorted(set(kind or ()) - set(EVENT_KINDS))
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: not an event kind; use one of {', '.join(EVENT_KINDS)}",
            param_hint="--kind",
        )
    found = _service(name, workspace, path).get_events(kinds=kind or None, since=since)
    emit(found, output, columns=["time", "generation", "kind", "message"])


# ``keys -n SVC`` prints Azure ML's two keys (as ``ml service get-keys``); its sub-commands manage
# the named keys. A group with a callback keeps both spellings.
keys_app = typer.Typer(
    invoke_without_command=True,
    help="Print the primary and secondary keys; add, list, update, remove named keys.",
)
app.add_typer(keys_app, name="keys")
KEY_NAME_OPTION = typer.Option(..., "--key-name", "-k", help="The named key (e.g. team-a).")
RATE_HELP = "Requests per second, minute, hour or day: COUNT/UNIT, e.g. 20/s (token bucket)."
BURST_HELP = "Requests a key may send at once above its rate (default: one second's worth)."
QUOTA_HELP = "Requests per fixed window: COUNT/UNIT with UNIT s, min, h or day, e.g. 100000/day."


@keys_app.callback()
def keys(
    ctx: typer.Context,
    name: str | None = typer.Option(None, "--name", "-n", help="Service name."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Print the primary and secondary keys (sub-commands: the named keys)."""
    if ctx.invoked_subcommand is not None:
        return
    if name is None:
        raise typer.BadParameter(
            "missing. Fix: `modelport service keys -n SERVICE` prints its primary and secondary keys; "
            "`modelport service keys add|list|update|remove -n SERVICE ...` manages its named keys.",
            param_hint="'--name' / '-n'",
        )
    primary, secondary = _service(name, workspace, path).get_keys()
    emit({"primaryKey": primary, "secondaryKey": secondary}, output)


@keys_app.command("add")
def keys_add(
    name: str = NAME_OPTION,
    key_name: str = KEY_NAME_OPTION,
    rate: str | None = typer.Option(None, "--rate", help=RATE_HELP),
    burst: int | None = typer.Option(None, "--burst", help=BURST_HELP),
    quota: str | None = typer.Option(None, "--quota", help=QUOTA_HELP),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Add a named key and print its value: the only time it is shown (it is stored hashed)."""
    value = _service(name, workspace, path).add_key(key_name, rate=rate, burst=burst, quota=quota)
    emit({"name": key_name, "key": value}, output)


@keys_app.command("list")
def keys_list(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List the named keys with their limits (never their values)."""
    emit(_service(name, workspace, path).list_keys(), output, columns=("name", "rate", "burst", "quota"))


@keys_app.command("update")
def keys_update(
    name: str = NAME_OPTION,
    key_name: str = KEY_NAME_OPTION,
    rate: str | None = typer.Option(None, "--rate", help=RATE_HELP + " 'none' removes it."),
    burst: str | None = typer.Option(None, "--burst", help=BURST_HELP + " 'none': the default."),
    quota: str | None = typer.Option(None, "--quota", help=QUOTA_HELP + " 'none' removes it."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Change a named key's limits (those not given stay); in effect when this returns."""
    service = _service(name, workspace, path)
    service.update_key(key_name, rate=rate, burst=burst, quota=quota)
    emit(next(k for k in service.list_keys() if k["name"] == key_name), output)


@keys_app.command("remove")
def keys_remove(
    name: str = NAME_OPTION,
    key_name: str = KEY_NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Remove a named key; it is refused from the moment this returns."""
    _service(name, workspace, path).remove_key(key_name)
    typer.echo(f"Removed key {key_name} of service {name}")


@app.command("regen-key")
def regen_key(
    name: str = NAME_OPTION,
    key: str = typer.Option(..., "--key", "-k", help="Primary or Secondary."),
    set_key: str | None = typer.Option(None, "--set-key", "-s", help="The new value (default: generated)."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Replace one key; the old value stops working when this returns."""
    service = _service(name, workspace, path)
    service.regen_key(key, set_key=set_key)
    primary, secondary = service.get_keys()
    emit({"primaryKey": primary, "secondaryKey": secondary}, output)


@app.command("token")
def token(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Print an access token (token-auth services) with its refresh-after and expiry times."""
    emit(_service(name, workspace, path).get_access_token().to_wire(), output)


tokens_app = typer.Typer(no_args_is_help=True, help="Revoke a token-auth service's access tokens.")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("revoke")
def tokens_revoke(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Rotate the token-signing secret: every token issued so far is refused when this returns."""
    _service(name, workspace, path).revoke_tokens()
    typer.echo(
        f"Revoked every access token of service {name}; fetch new ones with `modelport service token`."
    )


@app.command("run")
def run(
    name: str = NAME_OPTION,
    input_data: str = typer.Option(..., "--input-data", "-d", help="The JSON body to score, or @FILE."),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Score a request through the front end, with the service's key or token."""
    body = Path(input_data[1:]).read_text() if input_data.startswith("@") else input_data
    result: Any = _service(name, workspace, path).run(body)
    typer.echo(json.dumps(result))


@app.command("update")
def update(
    name: str = NAME_OPTION,
    model: list[str] | None = typer.Option(None, "--model", "-m", help="Model id NAME:VERSION; repeatable."),
    inference_config: Path | None = typer.Option(None, "-ic", "--ic", "--inference-config-file"),
    deploy_config: Path | None = typer.Option(None, "-dc", "--dc", "--deploy-config-file"),
    environment_name: str | None = typer.Option(None, "-e", "--environment-name"),
    environment_version: str | None = typer.Option(None, "--ev", "--environment-version"),
    add_tag: list[str] | None = typer.Option(None, "--add-tag", help="KEY=VALUE; repeatable."),
    remove_tag: list[str] | None = typer.Option(None, "--remove-tag", help="KEY; repeatable."),
    add_property: list[str] | None = typer.Option(None, "--add-property", help="KEY=VALUE; repeatable."),
    description: str | None = typer.Option(None, "--description", "-d"),
    no_wait: bool = typer.Option(False, "--no-wait"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Change a service: a rolling update for settings, models and code; tags and properties in place."""
    from modelport.config import load_deployment_config
    from modelport.service.update import UPDATABLE_KNOBS

    service = _service(name, workspace, path)
    with warnings_as_notes():
        inference = load_inference(inference_config, environment_name, environment_version, service.workspace)
        knobs: dict[str, Any] = {}
        if deploy_config is not None:
            given = load_deployment_config(deploy_config).given()
            knobs = {k: given[k] for k in UPDATABLE_KNOBS if given.get(k) is not None}
    tags = None
    if add_tag or remove_tag:
        tags = {**service.tags, **parse_pairs(add_tag, "--add-tag")}
        for key in remove_tag or []:
            tags.pop(key, None)
    service.update(
        models=model or None,
        inference_config=inference,
        tags=tags,
        properties=parse_pairs(add_property, "--add-property") or None,
        description=description,
        **knobs,
    )
    if not no_wait and service._pending_generation is not None:
        with contextlib.redirect_stdout(sys.stderr):  # progress on stderr; stdout keeps the result
            service.wait_for_deployment(show_output=True)
    emit(service.serialize(), output, columns=SERVICE_COLUMNS)


@app.command("delete")
def delete(
    name: str = NAME_OPTION,
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Delete a service and everything it owns."""
    _service(name, workspace, path).delete()
    typer.echo(f"Deleted service {name}")
