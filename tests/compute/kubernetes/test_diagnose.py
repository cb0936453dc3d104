"""Tier 0: typed failure states from hand-built pod objects (shapes as the kubelet and the
scheduler write them; tier 1 reaches the same through the real controllers)."""

from __future__ import annotations

from typing import Any

from modelport.compute.kubernetes.diagnose import (
    IMAGE_PULL_BACK_OFF,
    MODEL_FETCH_FAILED,
    REPLICA_CREATION_FAILED,
    diagnose,
    replica_failure,
)
from modelport.service import states


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "svc-abc"}, "status": status}


def _crashing(reason: str, code: int) -> dict[str, Any]:
    return {
        "name": "scorer",
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": reason, "exitCode": code}},
    }


def test_healthy_pods_have_no_diagnosis() -> None:
    running = {"name": "scorer", "ready": True, "state": {"running": {}}}
    done = {"name": "fetch-models", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    assert diagnose([_pod(containerStatuses=[running], initContainerStatuses=[done])]) is None
    assert diagnose([]) is None


def test_unschedulable_names_the_missing_resources_and_the_knobs() -> None:
    pod = _pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 2 Insufficient cpu, 3 Insufficient nvidia.com/gpu.",
            }
        ]
    )
    state, error = diagnose([pod])
    assert state == states.UNSCHEDULABLE and error.code == states.UNSCHEDULABLE_CODE
    assert "insufficient cpu, nvidia.com/gpu" in error.message
    assert "cpu_cores" in error.message and "gpu_cores" in error.message
    assert "0/3 nodes are available" in error.details[0].message


def test_oom_kill_wins_over_the_crash_loop_it_causes() -> None:
    state, error = diagnose([_pod(containerStatuses=[_crashing("OOMKilled", 137)])])
    assert (state, error.code) == (states.FAILED, states.OOM_KILLED)
    assert "memory_gb_limit" in error.message


def test_crash_loop_reports_restarts_and_exit_code() -> None:
    _, error = diagnose([_pod(containerStatuses=[_crashing("Error", 1)])])
    assert error.code == states.CRASH_LOOP_BACK_OFF
    assert [d.message for d in error.details] == ["svc-abc/scorer: 4", "svc-abc/scorer: 1"]


def test_image_pull_failure_of_the_init_container() -> None:
    waiting = {"name": "fetch-models", "image": "reg/x:1", "state": {"waiting": {"reason": "ErrImagePull"}}}
    _, error = diagnose([_pod(initContainerStatuses=[waiting])])
    assert error.code == IMAGE_PULL_BACK_OFF and "'reg/x:1'" in error.message


def test_failed_model_fetch_points_at_the_init_logs() -> None:
    failed = {"name": "fetch-models", "restartCount": 2, "state": {"terminated": {"exitCode": 1}}}
    _, error = diagnose([_pod(initContainerStatuses=[failed])])
    assert error.code == MODEL_FETCH_FAILED and "get_logs(init=True)" in error.message


def test_a_failed_environment_build_is_environment_build_failed_with_the_installer_message() -> None:
    message = (
        "Environment 'iris' (0123456789ab): uv could not install the packages (scikit-learnn): not found "
        "in the package registry. Fix: check the name and version of scikit-learnn\n  uv | error: ..."
    )
    backing_off = {
        "name": "environment",
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": message}},
    }
    _, error = diagnose([_pod(initContainerStatuses=[backing_off])])
    assert error.code == states.ENVIRONMENT_BUILD_FAILED
    assert error.message.startswith("Environment 'iris' (0123456789ab): uv could not install")
    assert error.message.endswith("The whole build log is get_logs(init=True).")
    assert error.details[0].message == message  # the installer's own output, whole


def test_pods_the_cluster_refuses_to_create_are_a_replica_creation_failure() -> None:
    quota = 'pods "svc-abc-x" is forbidden: exceeded quota: compute, requested: pods=1, limited: pods=0'
    deployment = {
        "status": {
            "conditions": [
                {"type": "Available", "status": "False"},
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": quota},
            ]
        }
    }
    error = replica_failure(deployment)
    assert error is not None and error.code == REPLICA_CREATION_FAILED
    assert "ResourceQuota" in error.message and error.details[0].message == quota
    admission = {
        "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "denied"}]}
    }
    assert "LimitRange" in replica_failure(admission).message
    assert (
        replica_failure({"status": {"conditions": [{"type": "ReplicaFailure", "status": "False"}]}}) is None
    )
