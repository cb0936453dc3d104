"""Real servers the tests run against, started on loopback in temporary folders.

* PostgreSQL from the Debian package (``make test`` installs it): ``initdb`` into a temporary
  folder and ``pg_ctl start`` on a free port, as the ``postgres`` user when the tests run as root
  (PostgreSQL refuses to run as root).
* An S3-protocol server: moto's ``moto_server`` in a subprocess.

Both are polled for readiness with a deadline; nothing sleeps in place of a check.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

STARTUP_DEADLINE_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Poll until ``port`` accepts connections; fail early if ``process`` died."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)  # poll interval of the readiness check, not a readiness stand-in
    raise RuntimeError(f"{what} did not listen on port {port} within {STARTUP_DEADLINE_S}s")


def wait_until(
    condition: Callable[[], bool], what: str, deadline_s: float = 60.0, interval_s: float = 0.02
) -> None:
    """Poll ``condition`` every ``interval_s`` until it holds; fail naming ``what`` after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(interval_s)  # poll interval of the check, not a readiness stand-in


def postgres_bin_dir() -> Path | None:
    """The folder with initdb/pg_ctl of the newest installed PostgreSQL, if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresServer:
    """A running PostgreSQL server; ``url(db)`` gives a SQLAlchemy URL for a database on it."""

    port: int
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        """URL of ``database`` on this server (trust auth on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a private PostgreSQL server for the duration of the ``with`` block."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb). `make test` installs the "
            "Debian package; or run: apt-get install -y postgresql"
        )
    base = Path(tempfile.mkdtemp(prefix="modelport-pg-"))
    data_dir = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    log = base / "server.log"
    subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(port, data_dir)
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class S3Server:
    """A running moto S3 server."""

    endpoint_url: str

    def storage_options(self) -> dict[str, str]:
        """The workspace storage options that reach this server."""
        return {"endpoint_url": self.endpoint_url, "key": "testing", "secret": "testing"}


@contextlib.contextmanager
def s3_server(host: str = "127.0.0.1") -> Iterator[S3Server]:
    """Start moto's S3-protocol server on loopback for the duration of the ``with`` block.

    ``host``: the address it listens on; the real-node tier gives 0.0.0.0 inside the node's network
    namespace, so that pods reach it at the node's address (which exists only there).
    """
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "moto_server")
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
