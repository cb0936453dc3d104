"""Whether the kernel's OOM killer took a scoring worker, read from the replica's memory cgroup.

In a container with a memory limit, a ``run()`` that allocates past it makes the kernel kill the
process that allocates: the scoring worker, not the server. Replacing the worker would hide the
event from the cluster (the container runs on, nothing reports ``OOMKilled``) and let the next
such request do it again. So when a ready worker dies of SIGKILL while the cgroup's ``oom_kill``
counter grew, the pool answers the request with :func:`out_of_memory_reply` and the server drains
and exits with :data:`EXIT_STATUS`: the container runtime, which saw the OOM event in the
container's cgroup, records the container as ``OOMKilled`` and Kubernetes restarts it
(docs/decisions.md, "A run() past the memory limit").

Without a memory cgroup with a limit (a process on a workstation, the local target) nothing is
read and a killed worker is replaced as before.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from modelport.runtime.scoring import Reply, error_reply

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v2 (the container's cgroup at the root of its view), then cgroup v1's memory hierarchy.
_LAYOUTS = (("memory.events", "memory.max"), ("memory/memory.oom_control", "memory/memory.limit_in_bytes"))
# cgroup v1 shows "no limit" as the largest page-aligned counter (about 2^63); any real limit is
# far below 2^60 bytes.
_NO_LIMIT_V1 = 1 << 60
# What the shell reports for a process killed by SIGKILL, as the kernel's OOM kill of the server
# itself would show.
EXIT_STATUS = 128 + signal.SIGKILL


def oom_kill_count(text: str) -> int | None:
    """The ``oom_kill`` counter of a ``memory.events`` (v2) or ``memory.oom_control`` (v1) file."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def memory_limit(text: str) -> int | None:
    """Bytes of a ``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) file; None for no limit."""
    value = text.strip()
    if not value.isdigit() or int(value) >= _NO_LIMIT_V1:
        return None
    return int(value)


@dataclass(frozen=True)
class MemoryCgroup:
    """The memory cgroup this process runs in, seen at the root of its cgroup view."""

    events: Path  # holds the oom_kill counter
    limit_bytes: int

    @classmethod
    def find(cls, root: Path = CGROUP_ROOT) -> MemoryCgroup | None:
        """The cgroup's files when they can be read and hold a memory limit and an OOM kill counter."""
        for events_name, limit_name in _LAYOUTS:
            try:
                limit = memory_limit((root / limit_name).read_text())
                count = oom_kill_count((root / events_name).read_text())
            except OSError:
                continue
            if limit is not None and count is not None:
                return cls(root / events_name, limit)
        return None

    def oom_kills(self) -> int | None:
        """The counter now (None when it can no longer be read)."""
        try:
            return oom_kill_count(self.events.read_text())
        except OSError:
            return None


def killed_for_memory(exit_code: int, kills_before: int | None, kills_now: int | None) -> bool:
    """Whether a worker that exited with ``exit_code`` (``Popen.returncode``) was the OOM killer's
    victim: it died of SIGKILL and the cgroup's counter grew meanwhile."""
    return (
        exit_code == -signal.SIGKILL
        and kills_before is not None
        and kills_now is not None
        and kills_now > kills_before
    )


def out_of_memory_reply(limit_bytes: int) -> Reply:
    """The answer to the request whose ``run()`` went past the memory limit (run-failed, like any
    failed ``run()``): what happened, what the replica does now, and the fix."""
    return error_reply(
        502,
        f"The scoring worker was killed by the kernel while handling the request: the replica ran "
        f"out of memory (limit {limit_bytes / 2**20:.0f} MiB). The replica restarts; the request "
        "was not completed. Fix: raise memory_gb_limit (or memory_gb), or make run() use less memory.",
        run_failed=True,
    )
