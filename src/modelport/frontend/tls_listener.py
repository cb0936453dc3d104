"""The front end's HTTPS listener: TLS with a replaceable certificate, plain HTTP answered clearly.

``loop.create_server(ssl=...)`` would answer a plain-HTTP client with a dropped connection and
fix the certificate for the server's life. This listener accepts itself and looks at each
connection's first byte (without reading it): a TLS handshake record (0x16) gets a TLS
connection with the context current at that moment, so :meth:`TlsListener.set_context` rotates
the certificate for new handshakes while open connections keep theirs, and nothing is dropped;
anything else gets one ``400`` JSON answer saying to use ``https://`` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

import orjson

from modelport.runtime.http_server import HttpProtocol
from modelport.runtime.listen import set_no_delay

log = logging.getLogger("modelport.frontend")

TLS_HANDSHAKE = 0x16  # the content type of a TLS record that starts a handshake
FIRST_BYTE_TIMEOUT_S = 10.0  # a client that connects and says nothing is let go
HANDSHAKE_TIMEOUT_S = 10.0
_READ_CHUNK = 65536


def plain_http_answer(port: int) -> bytes:
    """What a plain-HTTP client gets on the TLS port: 400 and how to reach the front end."""
    body = orjson.dumps(
        {
            "message": f"This port serves HTTPS only; plain HTTP is refused. Fix: use https:// "
            f"(e.g. https://<cname or address>:{port}/api/v1/service/<name>/score)."
        }
    )
    head = (
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class TlsListener:
    """Accepts on a listening socket and serves TLS connections with ``factory``'s protocols."""

    def __init__(
        self, sock: socket.socket, factory: Callable[[], HttpProtocol], context: ssl.SSLContext
    ) -> None:
        self._sock = sock
        self._factory = factory
        self.context = context
        self._port = int(sock.getsockname()[1])
        self._sorting: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin accepting (on the running loop)."""
        self._sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    def set_context(self, context: ssl.SSLContext) -> None:
        """Serve handshakes that start from now on with ``context``; open connections keep theirs."""
        self.context = context

    def close(self) -> None:
        """Stop accepting; connections not yet sorted into TLS or plain are closed."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        for task in list(self._sorting):
            task.cancel()
        self._sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: keep serving the connections already open
                log.warning("front end accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._sort(conn))
            self._sorting.add(task)
            task.add_done_callback(self._sorting.discard)

    async def _sort(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        set_no_delay(conn)  # before the handshake too: its flights are small writes
        handed_over = False
        try:
            first = await asyncio.wait_for(_peek(loop, conn), FIRST_BYTE_TIMEOUT_S)
            if first and first[0] == TLS_HANDSHAKE:
                handed_over = True  # the transport owns the socket from here, even if the handshake fails
                await loop.connect_accepted_socket(
                    self._factory, conn, ssl=self.context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S
                )
            elif first:
                await _refuse_plain(loop, conn, plain_http_answer(self._port))
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.debug("front end connection dropped before its first request: %s", exc)
        finally:
            if not handed_over:
                conn.close()


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first byte the client sent, left unread for the TLS layer (empty: it closed)."""
    readable: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    return conn.recv(1, socket.MSG_PEEK)


async def _refuse_plain(loop: asyncio.AbstractEventLoop, conn: socket.socket, answer: bytes) -> None:
    # Read what arrived first: closing a socket with unread input sends a reset, which could
    # reach the client before the answer does and hide it.
    with contextlib.suppress(BlockingIOError):
        while conn.recv(_READ_CHUNK):
            pass
    await loop.sock_sendall(conn, answer)
    conn.shutdown(socket.SHUT_WR)
