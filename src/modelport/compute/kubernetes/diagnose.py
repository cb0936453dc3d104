"""Why a service's pods are not serving, as a typed Azure ML error object, from the pods alone.

Input is the service's pods as dicts (what the API returns); output is the service state and a
:class:`~modelport.service.states.ServiceError` whose code names the cause, with the evidence in
``details`` and the fix in the message, or ``None`` when no pod shows a problem. The driver will
add log lines (an entry script's traceback) to crash-loop errors; that needs the pod log, which
this module does not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelport.compute.kubernetes.envplacement import ENVIRONMENT_CONTAINER
from modelport.service import states
from modelport.service.states import ErrorDetail, ServiceError

IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
MODEL_FETCH_FAILED = "ModelFetchFailed"
REPLICA_CREATION_FAILED = "ReplicaCreationFailed"
_IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
_INSUFFICIENT = re.compile(r"Insufficient ([\w/-]+(?:\.[\w/-]+)*)")  # "nvidia.com/gpu", not "cpu."
_FIXES = {
    "cpu": "lower cpu_cores (containerResourceRequirements.cpu)",
    "memory": "lower memory_gb (containerResourceRequirements.memoryInGB)",
    "nvidia.com/gpu": "lower gpu_cores, or add nodes with NVIDIA GPUs and their device plugin",
}


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    conditions: list[Mapping[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == kind:
            return condition
    return None


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", "?"))


def _unschedulable(pod: Mapping[str, Any]) -> ServiceError | None:
    scheduled = _condition(pod, "PodScheduled")
    if not scheduled or scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":
        return None
    text = str(scheduled.get("message") or "")
    missing = sorted(set(_INSUFFICIENT.findall(text)))
    fixes = [_FIXES.get(resource, f"lower the {resource} request") for resource in missing]
    fix = "; ".join(fixes) if fixes else "check node selectors, taints and node capacity"
    resources = f"insufficient {', '.join(missing)}" if missing else "no node fits"
    return ServiceError(
        code=states.UNSCHEDULABLE_CODE,
        message=f"No node can run a replica ({resources}). Fix: {fix}, or add nodes to the cluster.",
        details=(ErrorDetail(code="SchedulerMessage", message=f"{_name(pod)}: {text}"),),
    )


def _container_error(pod: Mapping[str, Any], status: Mapping[str, Any], init: bool) -> ServiceError | None:
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    container = status.get("name", "?")
    where = f"{_name(pod)}/{container}"
    restarts = int(status.get("restartCount") or 0)
    if waiting.get("reason") in _IMAGE_PULL_REASONS:
        return ServiceError(
            code=IMAGE_PULL_BACK_OFF,
            message=f"The cluster cannot pull image {status.get('image')!r}. Fix: push the image to a "
            "registry the nodes can reach, check its name, or add an image pull secret.",
            details=(ErrorDetail(code=waiting["reason"], message=f"{where}: {waiting.get('message', '')}"),),
        )
    failed = waiting.get("reason") == "CrashLoopBackOff" or terminated.get("exitCode", 0) != 0
    if init and failed and container == ENVIRONMENT_CONTAINER:
        # The installer's own error, as the init container wrote it (envcache.py): its first line
        # names the environment, the packages and the fix.
        text = (terminated.get("message") or last.get("message") or "").strip()
        return ServiceError(
            code=states.ENVIRONMENT_BUILD_FAILED,
            message=(text.splitlines() or ["Building the environment in the node cache failed."])[0]
            + " The whole build log is get_logs(init=True).",
            details=(
                ErrorDetail(code="InstallerOutput", message=text or "(no message)"),
                ErrorDetail(code="Restarts", message=f"{where}: {restarts}"),
            ),
        )
    if init and failed:
        return ServiceError(
            code=MODEL_FETCH_FAILED,
            message="Fetching the models and code into the pod failed. Its output is "
            "get_logs(init=True); Fix: check the artifact store's address and credentials Secret.",
            details=(ErrorDetail(code="Restarts", message=f"{where}: {restarts}"),),
        )
    if init:
        return None
    if "OOMKilled" in (last.get("reason"), terminated.get("reason")):
        return ServiceError(
            code=states.OOM_KILLED,
            message="A replica used more memory than its limit and was killed. Fix: raise "
            "memory_gb_limit (or memory_gb), or make the model use less memory.",
            details=(ErrorDetail(code="Restarts", message=f"{where}: {restarts}"),),
        )
    if waiting.get("reason") == "CrashLoopBackOff":
        exit_code = last.get("exitCode")
        return ServiceError(
            code=states.CRASH_LOOP_BACK_OFF,
            message="A replica keeps exiting and Kubernetes is backing off its restarts. Fix: read "
            "get_logs() for the entry script's traceback; init() must return without raising.",
            details=(
                ErrorDetail(code="Restarts", message=f"{where}: {restarts}"),
                ErrorDetail(code="LastExitCode", message=f"{where}: {exit_code}"),
            ),
        )
    return None


def diagnose(pods: Iterable[Mapping[str, Any]]) -> tuple[str, ServiceError] | None:
    """(state, error) for the first problem the pods show, most fundamental first, or ``None``.

    Order: a pod that cannot be placed (``Unschedulable``), then image pulls, then the init
    container, then the scoring container (OOM kill before crash loop, since an OOM-killed
    container also crash-loops).
    """
    pods = list(pods)
    for pod in pods:
        error = _unschedulable(pod)
        if error is not None:
            return states.UNSCHEDULABLE, error
    for init in (True, False):
        key = "initContainerStatuses" if init else "containerStatuses"
        for pod in pods:
            for status in (pod.get("status") or {}).get(key) or []:
                error = _container_error(pod, status, init)
                if error is not None:
                    return states.FAILED, error
    return None


def replica_failure(deployment: Mapping[str, Any]) -> ServiceError | None:
    """Pods that cannot even be created (a ResourceQuota, a LimitRange, an admission policy).

    The ReplicaSet controller reports it as a ``ReplicaFailure`` condition, which the Deployment
    controller copies onto the Deployment; no pod exists for :func:`diagnose` to look at.
    """
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            text = str(condition.get("message") or condition.get("reason") or "")
            if "exceeded quota" in text:
                fix = "raise the namespace's ResourceQuota, or lower cpu_cores/memory_gb or the replica count"
            else:
                fix = "check the namespace's LimitRange and admission policies against the pod's settings"
            return ServiceError(
                code=REPLICA_CREATION_FAILED,
                message=f"The cluster refuses to create the service's pods. Fix: {fix}.",
                details=(ErrorDetail(code=str(condition.get("reason") or "FailedCreate"), message=text),),
            )
    return None
