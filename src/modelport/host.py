"""What the operating system under modelport offers, decided in one place.

Linux has three things the local target uses that other platforms lack: the parent-death
signal (``prctl(PR_SET_PDEATHSIG)``), the abstract Unix socket namespace, and control groups for
CPU quotas. Everything else it needs (process groups, path-based Unix sockets, process trees and
memory through psutil) is the same on macOS. Every test of ``sys.platform`` in the package is
here, and ``MODELPORT_LOCAL_PORTABLE=1`` makes Linux take the code paths of other platforms, so
that the local-target tests run them on Linux (docs/services.md, "Platforms"). Native Windows
has neither ``fork`` semantics nor POSIX process groups: the local target runs there through WSL,
which is Linux.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from modelport.errors import UserErrorException

PORTABLE_ENV = "MODELPORT_LOCAL_PORTABLE"
# sizeof(sockaddr_un.sun_path), its terminating NUL included: 108 on Linux, 104 on macOS and the BSDs.
LINUX_UNIX_PATH_MAX = 108
BSD_UNIX_PATH_MAX = 104
_NAMES = {"linux": "Linux", "darwin": "macOS", "win32": "Windows"}


@dataclass(frozen=True)
class Host:
    """The platform (``sys.platform``) and whether Linux's own features are switched off."""

    platform: str
    forced_portable: bool = False

    @property
    def linux_features(self) -> bool:
        """Parent-death signal, abstract sockets and cgroups: Linux, unless the portable paths are forced."""
        return self.platform == "linux" and not self.forced_portable

    @property
    def name(self) -> str:
        """The platform in words, as warnings and ``service show`` say it."""
        name = _NAMES.get(self.platform, self.platform)
        return f"{name} with {PORTABLE_ENV}=1" if self.forced_portable else name

    @property
    def unix_path_max(self) -> int:
        """The longest Unix socket address, terminating NUL included (the stricter one when forced)."""
        return LINUX_UNIX_PATH_MAX if self.linux_features else BSD_UNIX_PATH_MAX

    @property
    def native_windows(self) -> bool:
        """Windows itself, not WSL (which reports ``linux``)."""
        return self.platform == "win32"


def current() -> Host:
    """This machine, with the portable paths forced when ``MODELPORT_LOCAL_PORTABLE=1``."""
    forced = os.environ.get(PORTABLE_ENV, "").strip().lower() in ("1", "true", "yes")
    return Host(sys.platform, forced_portable=forced and sys.platform == "linux")


def require_local_target(host: Host | None = None) -> None:
    """Refuse the local target where it cannot run (native Windows), naming WSL as the fix."""
    host = host or current()
    if host.native_windows:
        raise UserErrorException(
            "The local target does not run on native Windows: its agent and replicas need POSIX "
            "process groups, signals and file locks. Fix: install modelport inside WSL "
            "(Windows Subsystem for Linux: `wsl --install`, then `pip install modelport` in the Linux "
            "shell) and run it there; deploying to a Kubernetes cluster works from WSL too."
        )
