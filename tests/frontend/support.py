"""Real replica processes (``modelport serve``) and request helpers of the front-end tests.

Replicas run ``scripts/echo.py`` under ``python -m modelport serve`` and are ready when
``GET /health/ready`` answers 200 (polled with a deadline). The front end runs on its own
thread and event loop in the test process (``BackgroundFrontEnd``), so tests can read its
counters directly; clients reach it over real sockets. Requests are held in flight by the
``gate``: the entry script blocks until the test writes a release file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelport.frontend.routes import ReplicaTarget
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.servers import free_port, wait_until

SCRIPT = Path(__file__).with_name("scripts") / "echo.py"


@dataclass
class ReplicaProcess:
    """One ``modelport serve`` process (and its workers, in their own process group)."""

    replica_id: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    unix_socket: str | None = None

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> ReplicaTarget:
        """This replica as a routing-table entry."""
        return ReplicaTarget(self.replica_id, self.url, self.unix_socket)

    def kill(self) -> None:
        """SIGKILL the replica and its workers (a crash, as the front end sees it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the replica (SIGTERM, then SIGKILL)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        self.kill()


class ReplicaFactory:
    """Starts replicas of the echo script; every one is stopped at the end of the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[ReplicaProcess] = []

    def start(self, replica_id: str, workers: int = 1, unix_socket: str | None = None) -> ReplicaProcess:
        """Start a replica with ``workers`` worker processes (and a Unix socket when given); wait until
        it is ready."""
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "modelport",
            "serve",
            "--entry_script",
            str(SCRIPT),
            "--port",
            str(port),
        ]
        argv += ["--worker_count", str(workers)]
        if unix_socket is not None:
            argv += ["--unix_socket", unix_socket]
        log_path = self.root / f"{replica_id}.log"
        env = {**os.environ, "REPLICA_ID": replica_id, "FRONTEND_TEST_DIR": str(self.root)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica = ReplicaProcess(replica_id, port, process, log_path, unix_socket)
        self.started.append(replica)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"replica {replica_id} exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                return httpx.get(replica.url + "/health/ready", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, f"replica {replica_id} to be ready")
        return replica


class Gate:
    """Holds ``block`` requests in the entry script until the test releases them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    def tag(self) -> str:
        """A fresh tag for one blocked request."""
        self._count += 1
        return f"t{os.getpid()}-{self._count}-{time.monotonic_ns()}"

    def wait_started(self, tag: str) -> str:
        """Wait until run() is blocked on ``tag``; return the replica it runs on."""
        path = self.root / f"started-{tag}"
        wait_until(path.exists, f"run() to start for {tag}")
        return path.read_text()

    def release(self, *tags: str) -> None:
        """Let the blocked run() calls of ``tags`` return."""
        for tag in tags:
            (self.root / f"release-{tag}").write_text("go")


def score_url(frontend: BackgroundFrontEnd, service: str) -> str:
    """The scoring URI of ``service`` on ``frontend``."""
    return f"{frontend.url}/api/v1/service/{service}/score"


def post_json(url: str, payload: object, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``payload`` as JSON with a generous timeout."""
    return httpx.post(url, json=payload, headers=headers, timeout=60.0)


def submit_post(
    pool: ThreadPoolExecutor, url: str, payload: object, headers: dict[str, str] | None = None
) -> Future[httpx.Response]:
    """POST on a pool thread; the future holds the response."""
    return pool.submit(post_json, url, payload, headers)
