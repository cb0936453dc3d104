"""Whether a Deployment's rollout is done, from the Deployment object alone (as ``kubectl rollout
status`` decides it), safe against stale reads.

A read or watch event that follows an apply can come from the apiserver's watch cache and show the
object as it was before the apply; its old ``observedGeneration`` would then equal its old
``generation`` and look "rolled out". The caller therefore passes the generation its apply
returned, and nothing older than that is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelport.service import states
from modelport.service.states import ErrorDetail, ServiceError

RolloutPhase = Literal["progressing", "complete", "failed"]
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class RolloutStatus:
    """Where a rollout stands, with a sentence for the user."""

    phase: RolloutPhase
    message: str


def rollout_status(deployment: Mapping[str, Any], applied_generation: int) -> RolloutStatus:
    """The rollout state of ``deployment`` (a Deployment as a dict) for the generation an apply returned."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if generation < applied_generation:
        return RolloutStatus(
            "progressing", f"waiting for generation {applied_generation} (read {generation})"
        )
    if observed < generation:
        return RolloutStatus("progressing", f"waiting for the controller to observe generation {generation}")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == PROGRESS_DEADLINE_EXCEEDED:
            return RolloutStatus("failed", condition.get("message") or PROGRESS_DEADLINE_EXCEEDED)
    wanted = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return RolloutStatus("progressing", f"{updated} of {wanted} replicas updated")
    if total > updated:
        return RolloutStatus("progressing", f"{total - updated} old replica(s) pending termination")
    if available < updated:
        return RolloutStatus("progressing", f"{available} of {updated} updated replicas available")
    return RolloutStatus("complete", f"{available} replica(s) available")


def timed_out_error(status: RolloutStatus) -> ServiceError | None:
    """``DeploymentTimedOut`` for a failed rollout (None otherwise), with the controller's message."""
    if status.phase != "failed":
        return None
    return ServiceError(
        code=states.DEPLOYMENT_TIMED_OUT,
        message="The rollout made no progress within its deadline. Fix: look at the pods' state "
        "(get_logs(), get_logs(init=True)) for the cause; raise the deadline if replicas only start slowly.",
        details=(ErrorDetail(code=PROGRESS_DEADLINE_EXCEEDED, message=status.message),),
    )
