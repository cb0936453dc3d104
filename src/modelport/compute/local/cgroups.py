"""CPU limits for local replicas through Linux control groups, where the machine allows it.

``cpu_cores_limit`` becomes a CFS quota: cgroup v2's ``cpu.max`` when the unified hierarchy
has the cpu controller enabled for us, else cgroup v1's ``cpu.cfs_quota_us``. Without a
writable cpu controller (most laptops without root, many containers) the limit is not enforced
and the preparation log says so. The replica joins its group before it executes (in the forked
child), so its scoring workers inherit the limit.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from modelport.host import Host

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


@dataclass(frozen=True)
class CpuLimiter:
    """Creates one cgroup per replica under ``base`` with a CPU quota."""

    base: Path
    version: int  # 1 or 2

    def create(self, replica_id: str, cores: float) -> Path:
        """The group for ``replica_id`` with ``cores`` CPUs of quota."""
        group = self.base / replica_id
        group.mkdir(parents=True, exist_ok=True)
        quota = max(1000, int(cores * PERIOD_US))
        if self.version == 2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        return group

    @staticmethod
    def join(group: Path) -> None:
        """Move the calling process into ``group`` (called in the child before exec)."""
        with open(group / "cgroup.procs", "w") as handle:
            handle.write(str(os.getpid()))

    @staticmethod
    def remove(group: Path) -> None:
        """Remove an emptied group (ignored while processes remain or when already gone)."""
        with contextlib.suppress(OSError):
            group.rmdir()


def find_cpu_limiter(host: Host, root: Path = CGROUP_ROOT) -> CpuLimiter | None:
    """A limiter for this machine, or None when no writable cpu controller is available."""
    if not host.linux_features:
        return None
    controllers = root / "cgroup.controllers"
    if controllers.is_file() and "cpu" in controllers.read_text().split():
        subtree = root / "cgroup.subtree_control"
        base = root / "modelport"
        try:
            if "cpu" not in subtree.read_text().split():
                subtree.write_text("+cpu")
            base.mkdir(exist_ok=True)
            (base / "cgroup.subtree_control").write_text("+cpu")
            return CpuLimiter(base, 2)
        except OSError:
            return None
    v1 = root / "cpu"
    if (v1 / "cpu.cfs_quota_us").is_file() and os.access(v1, os.W_OK):
        base = v1 / "modelport"
        try:
            base.mkdir(exist_ok=True)
        except OSError:
            return None
        return CpuLimiter(base, 1)
    return None
