"""``--unix_socket``: the scoring server's second listener, for a front end on the same machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

import httpx
import pytest

from modelport.host import current as current_host
from tests.runtime.conftest import SCRIPTS_DIR, ServerFactory, free_port
from tests.runtime.test_config import _serve
from tests.servers import wait_until

pytestmark = pytest.mark.usefixtures("modelport_only")


def _unix_client(address: str) -> httpx.Client:
    # httpx passes the address to socket.connect as is: a leading NUL names an abstract socket.
    path = "\0" + address[1:] if address.startswith("@") else address
    return httpx.Client(transport=httpx.HTTPTransport(uds=path), base_url="http://replica", timeout=30)


LINUX_ONLY = pytest.mark.skipif(
    not current_host().linux_features, reason="abstract Unix socket names are Linux's"
)


@LINUX_ONLY
def test_scoring_and_probes_over_an_abstract_socket(factory: ServerFactory) -> None:
    name = f"@modelport-test-{os.getpid()}-abstract"
    server = factory.start("plain", args=("--unix_socket", name))
    with _unix_client(name) as client:
        # Several requests on one connection: the /score connection is handed to a worker.
        for n in range(3):
            reply = client.post("/score", content=f"body-{n}")
            assert reply.status_code == 200, reply.text
            assert f"body-{n}" in reply.text
        assert client.get("/health/ready").status_code == 200
    assert server.client().post("/score", content=b"tcp").status_code == 200
    assert f"unix:{name}" in server.log()


def test_socket_file_replaces_a_stale_one_and_is_removed_on_stop(
    factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "replica.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a killed server leaves
    server = factory.start("plain", args=("--unix_socket", str(path)))
    with _unix_client(str(path)) as client:
        assert client.post("/score", content=b"x").status_code == 200
    os.killpg(server.process.pid, signal.SIGTERM)
    assert server.wait_exit() == 0
    wait_until(lambda: not path.exists(), "the socket file to be removed")


def test_unusable_socket_addresses_are_clear_errors(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    shutil.copy(SCRIPTS_DIR / "plain.py", script)
    env = {"AML_APP_ROOT": str(tmp_path)}
    serve = ("--entry_script", str(script), "--port", str(free_port()))
    regular = tmp_path / "not-a-socket"
    regular.write_text("data")
    result = _serve(*serve, "--unix_socket", str(regular), env=env)
    assert result.returncode == 1
    assert f"--unix_socket: {regular} exists and is not a socket" in result.stderr
    assert regular.read_text() == "data"  # never removed
    too_long = "/tmp/" + "x" * 120
    result = _serve("--entry_script", str(script), "--unix_socket", too_long, env=env)
    assert result.returncode == 1
    assert "MODELPORT_UNIX_SOCKET / --unix_socket" in result.stderr and "a shorter path" in result.stderr
    if not current_host().linux_features:
        return  # the rest uses an abstract name
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as taken:
        name = f"@modelport-test-{os.getpid()}-taken"
        taken.bind("\0" + name[1:])
        taken.listen()
        result = _serve(*serve, "--unix_socket", name, env=env)
    assert result.returncode == 1
    assert f"--unix_socket: {name} is already in use" in result.stderr
