"""Waiting for a service's target: ``wait_for_deployment``'s loop, and the wait for changed keys.

Every wait ends. A deployment is followed until a terminal state (Healthy, Failed,
DeploymentTimedOut) or a time limit, printing the target's progress as it happens when asked;
settings that need no new replicas (keys) are waited for until the front end applies them.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from modelport.errors import WebserviceException
from modelport.service import states
from modelport.service import store as service_store
from modelport.service.states import ServiceError

if TYPE_CHECKING:
    from modelport.service.webservice import Webservice
    from modelport.workspace import Workspace

POLL_S = 0.5
APPLY_DEADLINE_S = 30.0
# wait_for_deployment() without timeout_sec gives up after this long (the deployment continues):
# well past both targets' own rollout deadlines (600 s by default), after which a stuck rollout is
# already a terminal DeploymentTimedOut, so only a target refusing every apply runs into it.
DEFAULT_WAIT_TIMEOUT_S = 1800.0
_TERMINAL_ERROR_CODES = {states.DEPLOYMENT_TIMED_OUT}


def follow_deployment(
    service: Webservice, generation: int, show_output: bool, timeout_sec: float | None
) -> None:
    """Observe ``service`` until ``generation`` is Healthy, or raise with the error object.

    Raises at a terminal failure (forgetting the pending operation) or after ``timeout_sec``
    (default :data:`DEFAULT_WAIT_TIMEOUT_S`) with the current state; the deployment continues.
    """
    limit = DEFAULT_WAIT_TIMEOUT_S if timeout_sec is None else timeout_sec
    start = time.monotonic()
    seen = 0
    while True:
        service.update_deployment_state()
        if show_output:
            seen = _print_events(service.workspace, service.name, seen, generation)
        state = service.state
        status = service._status
        if service.generation == generation and status is not None:
            observed = status.observed_generation >= generation
            if observed and state == states.HEALTHY:
                return
            error = status.error
            terminal = state == states.FAILED or (error is not None and error.code in _TERMINAL_ERROR_CODES)
            if observed and terminal:
                service._pending_generation = None
                raise WebserviceException(_failure_message(service.name, state, generation, error))
        if time.monotonic() - start > limit:
            kind = "default timeout" if timeout_sec is None else "timeout override"
            raise WebserviceException(
                f"Deployment polling exceeded {kind} of {limit}s. Current status: "
                f"{state} (the deployment continues)."
            )
        time.sleep(POLL_S)


def _print_events(workspace: Workspace, name: str, after: int, generation: int) -> int:
    """Print the events of ``generation`` recorded after event ``after``; return the last event's id."""
    for event in service_store.read_events(workspace, name, after):
        if event.generation == generation and event.kind != "autoscale":
            stamp = event.time.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
            print(f"{stamp} {event.message}", flush=True)
        after = event.id
    return after


def _failure_message(name: str, state: str, generation: int, error: ServiceError | None) -> str:
    hint = "More information can be found using '.get_logs()'"
    if error is not None and error.code == states.ENVIRONMENT_BUILD_FAILED:
        hint = "More information can be found using '.get_logs(init=True)'"
    body = json.dumps(error.to_dict() if error else {}, indent=2)
    return (
        "Service deployment polling reached non-successful terminal state, current service state: "
        f"{state}\nOperation ID: {name}-g{generation}\n{hint}\nError:\n{body}"
    )


def until_auth_applied(service: Webservice, auth_digest: str, operation: str = "key regeneration") -> None:
    """Observe ``service`` until its front end applies the auth settings ``auth_digest`` names."""
    service.update_deployment_state()
    deadline = time.monotonic() + APPLY_DEADLINE_S
    while service.observed.get("authDigest") != auth_digest:
        if time.monotonic() > deadline:
            raise WebserviceException(
                f'Error, {operation} operation "TimedOut" with message "the {service.compute_name} '
                f'target did not apply the change within {APPLY_DEADLINE_S:.0f} s"'
            )
        time.sleep(POLL_S / 5)
        service.update_deployment_state()
