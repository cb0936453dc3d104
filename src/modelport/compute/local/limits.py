"""Which resource limits a local replica gets on this machine, and the words for those it cannot.

``memory_gb_limit`` holds on every platform: the agent's watchdog adds up the resident memory of
a replica's process tree (psutil) and kills it as OOMKilled above the limit. ``cpu_cores_limit``
is a CFS quota, which needs Linux control groups with a writable cpu controller
(:mod:`.cgroups`); elsewhere it cannot hold, and saying so is the only honest answer: a warning
when the service is deployed, an event in its log, and ``service show`` lists it.
"""

from __future__ import annotations

from modelport.compute.local.cgroups import CpuLimiter
from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.host import Host


class LimitNotEnforcedWarning(UserWarning):
    """A resource limit that was accepted but cannot be enforced on this platform."""


def unenforced_limits(
    config: EffectiveDeploymentConfig, host: Host, cpu_limiter: CpuLimiter | None
) -> tuple[str, ...]:
    """One sentence per limit of ``config`` that this machine cannot enforce (setting, platform, why)."""
    limit = config.cpu_cores_limit
    if not limit or cpu_limiter is not None:
        return ()
    if host.linux_features:
        reason = (
            "this machine offers no writable cgroup cpu controller (run the agent as root, or in a "
            "systemd user slice with the cpu controller delegated)"
        )
    else:
        reason = "CPU quotas need Linux control groups, which this platform does not have"
    return (
        f"cpu_cores_limit={limit:g} is not enforced on {host.name}: {reason}. The replicas may use every "
        "core; to cap them, deploy to a Kubernetes cluster or run the local target on Linux.",
    )
