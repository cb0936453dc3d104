"""``modelport serve --parent_fd``: a replica dies with its parent where there is no parent-death signal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.runtime.conftest import SCRIPTS_DIR, free_port
from tests.runtime.test_config import _serve
from tests.servers import wait_until


def test_the_server_and_its_workers_die_when_the_parent_pipe_closes(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    shutil.copy(SCRIPTS_DIR / "plain.py", script)
    port = free_port()
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelport",
            "serve",
            "--entry_script",
            str(script),
            "--port",
            str(port),
            "--parent_fd",
            str(read_end),
        ],
        env={**os.environ, "AML_APP_ROOT": str(tmp_path)},
        pass_fds=(read_end,),
        start_new_session=True,  # as the local agent starts replicas: the server leads its group
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(read_end)
    try:
        wait_until(lambda: _ready(port), "the server to be ready", 120)
        workers = _children(server.pid)
        assert workers, "the server runs at least one scoring worker"
        os.close(write_end)  # the parent "dies": its end of the pipe closes
        assert server.wait(timeout=30) == -9  # killed at once, as PR_SET_PDEATHSIG would
        wait_until(lambda: not any(_alive(p) for p in workers), "the workers to exit", 30)
        assert "--parent_fd" in server.stdout.read()  # it says why it went
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_parent_fd_that_is_not_open_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    shutil.copy(SCRIPTS_DIR / "plain.py", script)
    result = _serve("--entry_script", str(script), "--parent_fd", "987", env={"AML_APP_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert "--parent_fd: 987 is not an open file descriptor" in result.stderr


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _children(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
