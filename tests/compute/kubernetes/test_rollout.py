"""Tier 0: the rollout decision on hand-built Deployment objects, stale reads included."""

from __future__ import annotations

from typing import Any

from modelport.compute.kubernetes.rollout import rollout_status, timed_out_error
from modelport.service import states


def _deployment(generation: int, observed: int, wanted: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": wanted},
        "status": {"observedGeneration": observed, **status},
    }


def test_a_stale_read_from_before_the_apply_is_not_complete() -> None:
    # Generation 1, fully rolled out: exactly what a watch cache replays right after applying gen 2.
    stale = _deployment(1, 1, updatedReplicas=2, replicas=2, availableReplicas=2)
    assert rollout_status(stale, applied_generation=1).phase == "complete"
    assert rollout_status(stale, applied_generation=2).phase == "progressing"


def test_not_yet_observed_by_the_controller() -> None:
    dep = _deployment(2, 1, updatedReplicas=2, availableReplicas=2)
    status = rollout_status(dep, 2)
    assert status.phase == "progressing" and "observe generation 2" in status.message


def test_waits_for_updated_then_old_then_available_replicas() -> None:
    assert "1 of 2 replicas updated" in rollout_status(_deployment(2, 2, updatedReplicas=1), 2).message
    old = _deployment(2, 2, updatedReplicas=2, replicas=3, availableReplicas=2)
    assert "pending termination" in rollout_status(old, 2).message
    waiting = _deployment(2, 2, updatedReplicas=2, replicas=2, availableReplicas=1)
    assert "1 of 2 updated replicas available" in rollout_status(waiting, 2).message


def test_complete_when_every_updated_replica_is_available() -> None:
    done = _deployment(3, 3, updatedReplicas=2, replicas=2, availableReplicas=2)
    assert rollout_status(done, 3).phase == "complete"
    # A newer generation than the one applied (someone else applied since) is judged on its own.
    assert rollout_status(done, 2).phase == "complete"


def test_progress_deadline_exceeded_is_a_failure_with_the_servers_message() -> None:
    dep = _deployment(
        2,
        2,
        updatedReplicas=1,
        conditions=[
            {"type": "Available", "status": "False"},
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "svc-5d8" has timed out progressing.',
            },
        ],
    )
    status = rollout_status(dep, 2)
    assert status.phase == "failed" and "timed out progressing" in status.message
    error = timed_out_error(status)
    assert error is not None and error.code == states.DEPLOYMENT_TIMED_OUT
    assert error.details[0].message == status.message
    assert timed_out_error(rollout_status(_deployment(2, 2, updatedReplicas=1), 2)) is None
