"""The real node's network namespace: made, entered and removed by the testbed, nothing else.

Everything of a real-node testbed (control plane, containerd, kubelet, kube-proxy, registry, pods,
test clients) lives in one network namespace made here with ``ip netns add``. Its only interfaces
are ``lo`` and a bridge without ports holding the node's address (this kernel has no dummy
interfaces); the default route points into that bridge, which has nowhere to send what it is
given. So pod, Service and node addresses exist only inside
the namespace and no packet can leave it for the host's interfaces. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
# Addresses that exist only inside the namespace (see the module docstring).
NODE_IP = "10.77.0.1"
NODE_PREFIX = 24
NODE_INTERFACE = "node0"
POD_SUBNET = "10.88.0.0/16"
POD_RANGE = "10.88.0.0/24"
CLONE_NEWNET = 0x40000000


class NetnsError(RuntimeError):
    """A namespace step failed; the message names the command and its output."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def path(name: str) -> Path:
    """The namespace's bind mount, which ``nsenter --net=`` takes."""
    return NETNS_DIR / name


def exists(name: str) -> bool:
    """Whether the named namespace is there."""
    return path(name).exists()


def create(name: str) -> None:
    """Make the namespace with ``lo`` up and the node address on a portless bridge (a black hole)."""
    _ip("netns", "add", name)
    try:
        for command in (
            ("link", "set", "lo", "up"),
            ("link", "add", NODE_INTERFACE, "type", "bridge"),
            ("addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", NODE_INTERFACE),
            ("link", "set", NODE_INTERFACE, "up"),
            # Anything without a more specific route (a Service address before kube-proxy's NAT,
            # a mistyped address) goes into the portless bridge and is dropped, never out.
            ("route", "add", "default", "dev", NODE_INTERFACE),
        ):
            _ip("-n", name, *command)
    except BaseException:
        delete(name)
        raise


def delete(name: str) -> None:
    """Remove the namespace (its interfaces, routes and iptables rules go with it)."""
    if exists(name):
        _ip("netns", "del", name)


def pids_inside(name: str) -> list[int]:
    """Processes whose network namespace is this one (none once the testbed has stopped)."""
    try:
        target = os.stat(path(name)).st_ino
    except FileNotFoundError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def command(name: str) -> list[str]:
    """The prefix that runs a command inside the namespace, keeping this mount namespace's view of
    /sys (``ip netns exec`` remounts /sys, which hides the cgroup mounts runc needs)."""
    return ["nsenter", f"--net={path(name)}"]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetnsError(f"setns: {os.strerror(errno)}")


@contextmanager
def entered(name: str) -> Iterator[list[str]]:
    """Run the calling thread (and the threads and processes it starts) inside the namespace.

    The network namespace is per thread: enter it before starting threads that must be inside.
    Yields the prefix that runs a command back in the namespace the thread came from (an image
    build that fetches packages from the index, say).
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path(name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield ["nsenter", f"--net=/proc/{os.getpid()}/fd/{home}"]
        finally:
            _setns(home)
    finally:
        os.close(home)
