"""Graceful stop of ``modelport serve``: SIGTERM with requests in flight, over real sockets.

Requests are held inside ``run()`` by a gate (the script waits for a ``release`` file the test
writes), so that they are in flight when the signal arrives, whatever the machine's speed.
Requests are sent with ``http.client``, whose ``request()`` returns once the bytes are sent:
the test knows each one is on its way before it signals. The readiness probe is polled on the
separate health port, which keeps answering during the drain while the scoring port refuses.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.clirun import modelport
from tests.runtime.conftest import Server, ServerFactory
from tests.servers import free_port, wait_until

GATED = """
import json, os, time
from pathlib import Path

ROOT = Path(os.environ["AML_APP_ROOT"])

def init():
    pass

def run(data):
    command = json.loads(data)
    tag = command["tag"]
    (ROOT / f"starting-{tag}").write_text("")
    (ROOT / f"starting-{tag}").rename(ROOT / f"started-{tag}")
    release = ROOT / "release"
    end = time.monotonic() + command.get("max_s", 60)
    while command.get("wait", True) and not release.exists() and time.monotonic() < end:
        time.sleep(0.005)
    return {"tag": tag, "released": release.exists()}
"""
ANSWER_TIMEOUT_S = 60.0


def _start(factory: ServerFactory, *args: str) -> tuple[Server, int]:
    health_port = free_port()
    server = factory.start(
        None,
        script_text=GATED,
        args=("--health_port", str(health_port), *args),
        env={"SEPERATE_HEALTH_ENDPOINT": "true"},
    )
    wait_until(lambda: _ready_status(health_port) == 200, "every worker's init()")
    return server, health_port


def _send(server: Server, tag: str, **command: object) -> http.client.HTTPConnection:
    """Open a connection and send one scoring request on it; returns once the bytes are sent."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=ANSWER_TIMEOUT_S)
    connection.request("POST", "/score", body=json.dumps({"tag": tag, **command}))
    return connection


def _started(server: Server, tag: str) -> bool:
    return (server.app_root / f"started-{tag}").exists()


def _ready_status(health_port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{health_port}/health/ready", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _terminate(server: Server, whole_group: bool) -> None:
    # A terminal's Ctrl-C or `kill -TERM -PGID` reaches the workers too; Kubernetes and
    # container runtimes signal the main process only.
    if whole_group:
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        os.kill(server.process.pid, signal.SIGTERM)


@pytest.mark.parametrize("whole_group", [False, True], ids=["main-process", "process-group"])
def test_request_in_flight_is_answered_after_sigterm(
    factory: ServerFactory, modelport_only: None, whole_group: bool
) -> None:
    server, health_port = _start(factory)
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=ANSWER_TIMEOUT_S)
    idle.request("GET", "/health/live")
    assert idle.getresponse().read()  # a keep-alive connection, idle from here on
    connection = _send(server, "one")
    wait_until(lambda: _started(server, "one"), "run() to start")

    _terminate(server, whole_group)
    wait_until(lambda: _ready_status(health_port) == 503, "readiness to turn 503 after SIGTERM")
    assert _refused(server.port), "the scoring port still accepts connections while draining"
    assert idle.sock is not None and idle.sock.recv(1) == b"", "the idle keep-alive connection stays open"
    assert server.process.poll() is None, "the server exited with a request in flight"

    (server.app_root / "release").write_text("")
    response = connection.getresponse()
    assert response.status == 200, response.read()
    assert json.loads(response.read()) == {"tag": "one", "released": True}
    assert response.getheader("connection") == "close"
    assert server.wait_exit() == 0
    assert "exited with code" not in server.log()


def test_eight_connections_in_flight_are_all_answered(factory: ServerFactory, modelport_only: None) -> None:
    server, health_port = _start(factory, "--worker_count", "2")
    tags = [f"c{index}" for index in range(8)]
    connections = [_send(server, tag) for tag in tags]
    # Two are inside run() (one per worker); the other six wait, sent but not yet read.
    wait_until(lambda: sum(_started(server, tag) for tag in tags) == 2, "both workers to be in run()")

    _terminate(server, whole_group=True)
    wait_until(lambda: _ready_status(health_port) == 503, "readiness to turn 503 after SIGTERM")
    assert _refused(server.port)

    (server.app_root / "release").write_text("")
    answers = []
    for tag, connection in zip(tags, connections, strict=True):
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
        assert answers[-1] == (200, {"tag": tag, "released": True}), answers
    assert server.wait_exit() == 0


def test_run_longer_than_the_grace_period_gets_a_json_503(
    factory: ServerFactory, modelport_only: None
) -> None:
    server, _health_port = _start(factory, "--graceful_timeout", "1")
    stuck = _send(server, "stuck", max_s=120)
    wait_until(lambda: _started(server, "stuck"), "run() to start")
    queued = _send(server, "queued")  # behind the stuck one on the only worker

    signalled = time.monotonic()
    _terminate(server, whole_group=True)
    for connection in (stuck, queued):
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 503, body
        assert "graceful timeout of 1 s" in body["message"]
        assert response.getheader("content-type") == "application/json"
        assert response.getheader("x-ms-run-function-failed") == "False"
    assert time.monotonic() - signalled < ANSWER_TIMEOUT_S
    assert server.wait_exit() == 0
    assert not _started(server, "queued")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"MODELPORT_GRACEFUL_TIMEOUT": "soon"}, "--graceful_timeout: 'soon' is not an integer"),
        (("--graceful_timeout", "-1"), {}, "--graceful_timeout: -1 is out of range"),
    ],
)
def test_graceful_timeout_is_validated(
    tmp_path: Path, modelport_only: None, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    (tmp_path / "score.py").write_text(GATED)
    result = modelport(
        "serve", "--entry_script", str(tmp_path / "score.py"), *args, rc=None, env=env, timeout=60
    )
    assert result.returncode == 1
    assert (
        f"MODELPORT_GRACEFUL_TIMEOUT / {expected}; give a whole number between 0 and 86400" in result.stderr
    )
