"""The Debian packages the real node needs, installed with apt-get when missing (as root, or sudo).

containerd and the registry are not among them: ``build-node.sh`` takes their binaries from the
.debs, because installing them would start system services. Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A file each package installs, and the package.
NEEDED = {
    "/usr/sbin/runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/sbin/iptables": "iptables",
    "/usr/sbin/conntrack": "conntrack",  # kube-proxy clears stale UDP entries with it
    "/usr/bin/buildah": "buildah",
    "/usr/bin/mmdebstrap": "mmdebstrap",
    "/usr/bin/nsenter": "util-linux",
}


class PackageError(RuntimeError):
    """apt-get failed; the message has its output."""


def missing() -> list[str]:
    """The packages of :data:`NEEDED` whose file is not there."""
    return sorted({package for path, package in NEEDED.items() if not Path(path).exists()})


def ensure() -> None:
    """Install what :func:`missing` names (``apt-get update`` first: fresh machines have no lists)."""
    wanted = missing()
    if not wanted:
        return
    print(f"k8s-testbed: installing {' '.join(wanted)} from Debian", file=sys.stderr, flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [*sudo, "apt-get", "update", "-q"],
        [*sudo, "apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *wanted],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise PackageError(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-2000:]}")
