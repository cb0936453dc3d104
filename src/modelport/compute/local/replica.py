"""One replica of a local service: a ``modelport serve`` process, its readiness, liveness and memory.

A replica is started in its own process group (so that stopping it also stops its scoring
workers) and dies with the agent, so that a killed agent never leaves replicas behind (the
restarted agent brings services back from their desired state instead). On Linux that is the
parent-death signal; elsewhere (:mod:`modelport.host`) it is the agent's lifeline: a pipe whose
write end only the agent holds, so that its death, however it comes, is end-of-file on the read
end every replica watches (``--parent_fd``). Both work even for SIGKILL, which no handler sees.
Memory and process trees come from psutil, which reads them the same way on every platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from modelport.compute.local.cgroups import CpuLimiter
from modelport.compute.local.paths import replica_socket
from modelport.host import Host
from modelport.host import current as current_host
from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S, GRACEFUL_TIMEOUT_ENV
from modelport.service.replica_contract import LIVENESS_PATH, READINESS_PATH

READY_POLL_S = 0.1
# A replica stopped with SIGTERM finishes its requests in flight (the graceful timeout the replica
# contract gives it) before it exits; SIGKILL only after that and this margin.
STOP_MARGIN_S = 5.0
LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1


def _child_setup(cgroup: Path | None, parent_death_signal: bool) -> Callable[[], None]:
    """What the replica's process does between fork and exec: die with the agent, join its cgroup."""

    def setup() -> None:
        if parent_death_signal:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if cgroup is not None:
            CpuLimiter.join(cgroup)

    return setup


@functools.cache
def lifeline_fd() -> int:
    """The read end of this process's lifeline: replicas get it, the write end stays here alone.

    Both ends are created non-inheritable; a replica is handed the read end explicitly, so no
    child ever holds the write end and end-of-file means this process has gone.
    """
    read_end, _write_end = os.pipe()
    return read_end


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=max(0, lines)))
    except FileNotFoundError:
        return ""


def _process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (the replica and its workers); [] once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    total = 0
    for process in _process_tree(pid):
        with contextlib.suppress(psutil.Error):  # a worker that exits meanwhile holds no memory
            total += process.memory_info().rss
    return total


@dataclass
class ReplicaLaunch:
    """How to start a replica: interpreter, app folder, entry script, model dir and environment."""

    python: Path
    app_root: Path
    entry_script: str
    model_dir: Path
    env: dict[str, str]
    log_path: Path
    memory_limit_bytes: int | None = None
    cpu_limit_cores: float | None = None
    cpu_limiter: CpuLimiter | None = None
    socket_dir: Path | None = None  # where path-based Unix sockets go (no abstract namespace)


@dataclass
class Replica:
    """A running (or finished) replica process and what is known about it."""

    replica_id: str
    generation: int
    launch: ReplicaLaunch
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    state: str = "starting"  # starting | ready | exited | stopping
    started_at: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    exit_code: int | None = None
    exit_reason: str | None = None  # "OOMKilled", "LivenessProbeFailed", "Stopped", or None
    ever_ready: bool = False
    cgroup: Path | None = None
    # Where the front end sends requests (its probes use the TCP port): an abstract name or a socket
    # file (:func:`replica_socket`); None when neither fits, and then requests go over TCP.
    unix_socket: str | None = None
    host: Host = field(default_factory=current_host)
    _liveness_failures: int = 0
    _ready_successes: int = 0

    @property
    def base_url(self) -> str:
        """Where the replica's scoring server listens."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Spawn ``python -m modelport serve`` for this replica."""
        self.port = free_port()
        launch = self.launch
        self.unix_socket = replica_socket(self.host, self.replica_id, launch.socket_dir)
        listeners = ["--unix_socket", self.unix_socket] if self.unix_socket else []
        lifeline: tuple[int, ...] = () if self.host.linux_features else (lifeline_fd(),)
        listeners += [arg for fd in lifeline for arg in ("--parent_fd", str(fd))]
        if launch.cpu_limiter is not None and launch.cpu_limit_cores:
            self.cgroup = launch.cpu_limiter.create(self.replica_id, launch.cpu_limit_cores)
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(launch.log_path, "ab") as log:
            log.write(f"--- replica {self.replica_id} starting on port {self.port} ---\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                str(launch.python),
                "-m",
                "modelport",
                "serve",
                "--entry_script",
                launch.entry_script,
                "--model_dir",
                str(launch.model_dir),
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                *listeners,
                cwd=launch.app_root,
                env=launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                pass_fds=lifeline,
                preexec_fn=_child_setup(self.cgroup, self.host.linux_features),
            )
        self.state = "starting"
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        """The replica's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def poll_exit(self) -> bool:
        """Record the exit of a finished process; True when it has exited."""
        if self.process is None or self.process.returncode is None:
            return False
        if self.state != "exited":
            self.exit_code = self.process.returncode
            self.state = "exited"
            self._release()
        return True

    def _release(self) -> None:
        if self.cgroup is not None:
            CpuLimiter.remove(self.cgroup)
        if self.unix_socket is not None and not self.unix_socket.startswith("@"):
            # A killed replica cannot remove its socket file itself.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_socket)

    async def check_ready(self, client: httpx.AsyncClient, success_threshold: int = 1) -> bool:
        """While starting: True once ``/health/ready`` has answered 200 ``success_threshold`` times
        in a row (every worker's init() returned), as a readiness probe's successThreshold counts."""
        if self.state != "starting" or self.poll_exit():
            return False
        try:
            response = await client.get(f"{self.base_url}{READINESS_PATH}", timeout=1.0)
        except httpx.HTTPError:
            self._ready_successes = 0
            return False
        self._ready_successes = self._ready_successes + 1 if response.status_code == 200 else 0
        # A replica already over its memory limit is killed, never reported ready for a moment.
        if self._ready_successes >= success_threshold and self.check_memory():
            self.state = "ready"
            self.ready_at = time.monotonic()
            self.ever_ready = True
            return True
        return False

    async def check_live(self, client: httpx.AsyncClient, timeout_s: float, failure_threshold: int) -> bool:
        """Liveness (``GET /``) False, and the replica killed, after too many failures."""
        if self.state != "ready" or self.poll_exit():
            return self.state == "ready"
        try:
            response = await client.get(f"{self.base_url}{LIVENESS_PATH}", timeout=timeout_s)
            healthy = response.status_code == 200
        except httpx.HTTPError:
            healthy = False
        self._liveness_failures = 0 if healthy else self._liveness_failures + 1
        if self._liveness_failures >= failure_threshold:
            self.kill("LivenessProbeFailed")
            return False
        return True

    def check_memory(self) -> bool:
        """Kill the replica (reason ``OOMKilled``) when its processes exceed the memory limit."""
        limit = self.launch.memory_limit_bytes
        if limit is None or self.pid is None or self.state in ("exited", "stopping"):
            return True
        if _tree_rss_bytes(self.pid) > limit:
            self.kill("OOMKilled")
            return False
        return True

    def kill(self, reason: str) -> None:
        """SIGKILL the replica's process group at once, remembering why.

        Descendants that left the group (a worker that called ``setsid``) are found in the process
        tree first and killed too: nothing the replica started outlives it.
        """
        self.exit_reason = reason
        if self.process is not None and self.process.returncode is None:
            tree = _process_tree(self.process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            for process in tree[1:]:
                with contextlib.suppress(psutil.Error):
                    process.kill()

    @property
    def stop_grace_s(self) -> float:
        """How long a stopped replica may drain before it is killed."""
        graceful = self.launch.env.get(GRACEFUL_TIMEOUT_ENV)
        return (float(graceful) if graceful else DEFAULT_GRACEFUL_TIMEOUT_S) + STOP_MARGIN_S

    async def stop(self) -> None:
        """Stop gracefully (SIGTERM to the group: the replica drains), then SIGKILL after a grace period."""
        if self.process is None or self.process.returncode is not None:
            self.state = "exited"
            return
        self.state = "stopping"
        self.exit_reason = self.exit_reason or "Stopped"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), self.stop_grace_s)
        except TimeoutError:
            self.kill(self.exit_reason)
            await self.process.wait()
        self.exit_code = self.process.returncode
        self.state = "exited"
        self._release()

    def describe(self) -> dict[str, object]:
        """The replica as reported in the service's observed state."""
        return {
            "id": self.replica_id,
            "generation": self.generation,
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "unixSocket": self.unix_socket,
            "exitCode": self.exit_code,
            "exitReason": self.exit_reason,
            "cgroup": str(self.cgroup) if self.cgroup else None,
        }
