"""Graceful stop of the front end over real sockets: requests in flight are answered, none dropped.

``FrontEnd.stop`` is what the in-cluster front end and the local agent run on SIGTERM (the
in-cluster process's signal handling is tested on the testbed, tests/compute/kubernetes). Requests are held in
``run()`` by the gate, so that they are in flight when the stop begins.
"""

from __future__ import annotations

import http.client
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelport.frontend.routes import ServiceRoute
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.support import Gate, ReplicaProcess
from tests.servers import wait_until

Pair = tuple[ReplicaProcess, ReplicaProcess]
ANSWER_TIMEOUT_S = 60.0


def _routes(name: str, *replicas: ReplicaProcess) -> dict[str, ServiceRoute]:
    targets = tuple(r.target for r in replicas)
    return {
        name: ServiceRoute(name, replicas=targets, max_concurrent_per_replica=4, max_queue_wait_ms=60_000)
    }


def _send(frontend: BackgroundFrontEnd, service: str, payload: object) -> http.client.HTTPConnection:
    """Send one scoring request on a new connection; returns once the bytes are sent."""
    connection = http.client.HTTPConnection("127.0.0.1", frontend.port, timeout=ANSWER_TIMEOUT_S)
    connection.request("POST", f"/api/v1/service/{service}/score", body=json.dumps(payload))
    return connection


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _pipelined_health_check(frontend: BackgroundFrontEnd, service: str, tag: str) -> socket.socket:
    # A blocked request with GET / pipelined behind it: GET / is answered after the stop began.
    sock = socket.create_connection(("127.0.0.1", frontend.port), timeout=ANSWER_TIMEOUT_S)
    body = json.dumps({"action": "block", "tag": tag}).encode()
    head = f"POST /api/v1/service/{service}/score HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body + b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("connections", [1, 8])
def test_stop_answers_every_request_in_flight(
    pair: Pair, gate: Gate, pool: ThreadPoolExecutor, connections: int
) -> None:
    running = BackgroundFrontEnd().start()
    running.set_routes(_routes("draining", *pair))
    idle = http.client.HTTPConnection("127.0.0.1", running.port, timeout=ANSWER_TIMEOUT_S)
    idle.request("GET", "/")
    assert idle.getresponse().read()  # keep-alive, idle from here on
    tags = [gate.tag() for _ in range(connections)]
    sent = [_send(running, "draining", {"action": "block", "tag": tag}) for tag in tags]
    probe_tag = gate.tag()
    probe = _pipelined_health_check(running, "draining", probe_tag)
    gate.wait_started(tags[0])

    def received() -> bool:
        load = running.load("draining")
        return load.in_flight + load.queued == connections + 1

    # Eight run() at a time over the two replicas; with nine requests one waits in the queue.
    wait_until(received, "every request to reach the front end")

    stopping = pool.submit(running.stop, ANSWER_TIMEOUT_S)
    wait_until(lambda: _refused(running.port), "the front end to stop accepting connections")
    assert idle.sock is not None and idle.sock.recv(1) == b"", "the idle keep-alive connection stays open"
    assert not stopping.done()

    gate.release(*tags, probe_tag)
    for tag, connection in zip(tags, sent, strict=True):
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["released"] is True, tag
        assert response.getheader("connection") == "close"
    answers = _read_all(probe).split(b"HTTP/1.1 ")
    assert answers[1].startswith(b"200 ")
    assert answers[2].startswith(b"503 ") and b'"status":"Draining"' in answers[2]
    assert b"connection: close" in answers[2].lower()
    stopping.result(timeout=ANSWER_TIMEOUT_S)


def test_request_longer_than_the_grace_period_gets_a_json_503(
    pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    running = BackgroundFrontEnd().start()
    running.set_routes(_routes("late", pair[0]))
    tag = gate.tag()
    stuck = _send(running, "late", {"action": "block", "tag": tag})
    gate.wait_started(tag)
    try:
        running.stop(0.5)
        response = stuck.getresponse()
        body = json.loads(response.read())
        assert response.status == 503, body
        assert "graceful timeout of 0.5 s" in body["message"]
        assert response.getheader("content-type") == "application/json"
    finally:
        gate.release(tag)
