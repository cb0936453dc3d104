"""Connection handling beyond the reference: keep-alive, TCP_NODELAY, pipelining, size limits, metrics."""

from __future__ import annotations

import ctypes
import os
import socket

import pytest

from tests.runtime.conftest import Server, ServerFactory

pytestmark = pytest.mark.usefixtures("modelport_only")

_SYS_PIDFD_GETFD = 438  # Linux >= 5.6, same number on every architecture


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` complete HTTP responses (Content-Length framed) from ``sock``."""
    data = b""
    responses: list[bytes] = []
    while len(responses) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").lower()
            length = int(head.split("content-length: ", 1)[1].split("\r\n", 1)[0])
            end = head_end + 4 + length
            if len(data) >= end:
                responses.append(data[:end])
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(responses)} responses"
        data += chunk
    return responses


def _request(body: bytes, extra: str = "") -> bytes:
    return f"POST /score HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_keep_alive_and_pipelining(plain_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(_request(b"one") + _request(b"two") + _request(b"three"))
        replies = _read_responses(sock, 3)
        for reply, body in zip(replies, (b"one", b"two", b"three"), strict=True):
            assert b'"got": "' + body + b'"' in reply
        assert not any(b"connection: close" in reply.lower() for reply in replies)
        sock.sendall(_request(b"four", "Connection: close\r\n"))
        last = _read_responses(sock, 1)[0]
        assert b"connection: close" in last.lower()
        assert sock.recv(1) == b""


def _server_side_socket(server_pid: int, client: socket.socket) -> socket.socket:
    # Borrow the server's accepted socket (pidfd_getfd) to read its options from the outside.
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(server_pid)
    try:
        wanted = client.getsockname()
        for name in os.listdir(f"/proc/{server_pid}/fd"):
            if not os.readlink(f"/proc/{server_pid}/fd/{name}").startswith("socket:"):
                continue
            fd = libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                pytest.skip(f"pidfd_getfd not permitted here (errno {ctypes.get_errno()})")
            candidate = socket.socket(fileno=fd)
            try:
                if candidate.type == socket.SOCK_STREAM and candidate.getpeername() == wanted:
                    return candidate
            except OSError:
                pass
            candidate.close()
    finally:
        os.close(pidfd)
    pytest.fail("the server's end of the connection was not found")


def test_accepted_sockets_have_tcp_nodelay(plain_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(_request(b"x"))
        _read_responses(sock, 1)
        with _server_side_socket(plain_server.process.pid, sock) as server_end:
            assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_body_over_the_limit_is_413_json(factory: ServerFactory) -> None:
    server = factory.start("plain", args=("--max_request_bytes", "1000"))
    client = server.client()
    assert client.post("/score", content=b"a" * 1000).status_code == 200
    reply = client.post("/score", content=b"a" * 1001)
    assert reply.status_code == 413
    assert "--max_request_bytes" in reply.json()["message"]
    chunked = client.post("/score", content=iter([b"a" * 600, b"a" * 600]))
    assert chunked.status_code == 413


def test_too_many_headers_is_431_json(plain_server: Server) -> None:
    headers = {f"x-h{i}": "v" for i in range(101)}
    reply = plain_server.client().post("/score", content=b"x", headers=headers)
    assert reply.status_code == 431
    assert "header fields" in reply.json()["message"]


def test_malformed_request_is_400_json(plain_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = _read_responses(sock, 1)[0]
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b'{"message": "Malformed HTTP request' in reply


def test_expect_100_continue(plain_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hi")
        assert b'"got": "hi"' in _read_responses(sock, 1)[0]


def test_metrics_count_requests_and_run_time(plain_server: Server) -> None:
    client = plain_server.client()
    client.post("/score", content=b"x")
    client.get("/nothing-here")
    text = client.get("/metrics").text
    assert 'modelport_requests_total{code="200",route="/score"}' in text
    assert 'modelport_requests_total{code="404",route="other"}' in text
    assert "modelport_request_duration_seconds_bucket" in text
    assert "modelport_run_duration_seconds_count" in text
    assert "modelport_requests_in_flight 0.0" in text
    assert "modelport_workers_ready 1.0" in text


def test_rejection_waits_for_the_requests_before_it(factory: ServerFactory) -> None:
    server = factory.start("plain", args=("--max_request_bytes", "100"))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_request(b"first") + _request(b"x" * 200))
        first, rejected = _read_responses(sock, 2)
        assert b'"got": "first"' in first
        assert rejected.startswith(b"HTTP/1.1 413 ")
        assert sock.recv(1) == b""


def test_many_pipelined_requests_are_all_answered_in_order(plain_server: Server) -> None:
    bodies = [f"n{i}".encode() for i in range(60)]
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(b"".join(_request(body) for body in bodies))
        replies = _read_responses(sock, len(bodies))
    for reply, body in zip(replies, bodies, strict=True):
        assert b'"got": "' + body + b'"' in reply


def test_request_line_sent_in_pieces(plain_server: Server) -> None:
    # The front process looks at the first line before choosing who serves the connection.
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # two segments, whatever the timing
        sock.sendall(b"POST /sc")
        sock.sendall(_request(b"split")[len(b"POST /sc") :])
        assert b'"got": "split"' in _read_responses(sock, 1)[0]
