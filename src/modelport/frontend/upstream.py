"""HTTP/1.1 to one replica over a pool of keep-alive connections (httptools, no client library).

A general-purpose client (httpx) costs a few hundred microseconds per request in Python, which
alone would exceed the front end's budget; this one writes each request in one send on a reused
``TCP_NODELAY`` connection and parses the answer with httptools. Bodies are buffered: the front
end has the whole request before it forwards it, and replicas answer with a length.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

from modelport.errors import WebserviceException

# Never forwarded in either direction: they describe one connection, not the message.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    )
)


class ReplicaClosedError(WebserviceException):
    """The replica closed the connection (or refused it) before its answer was complete."""


class UpstreamResponse:
    """A replica's complete answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names, hop-by-hop headers already removed
        self.body = body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self, release: Callable[[_Connection], None]) -> None:
        self._release = release
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[UpstreamResponse] | None = None
        self.received_any = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ReplicaClosedError("Replica closed connection before replying"))

    @property
    def usable(self) -> bool:
        """Open and not carrying a request."""
        return self.transport is not None and not self.transport.is_closing() and self.waiter is None

    def send(self, data: bytes, waiter: asyncio.Future[UpstreamResponse]) -> None:
        """Write one request; ``waiter`` receives the answer."""
        assert self.transport is not None
        self.waiter = waiter
        self.received_any = False
        self._headers = []
        self._body = []
        self.transport.write(data)

    def abort(self) -> None:
        """Drop the connection (its answer is no longer wanted)."""
        self.waiter = None
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_exception(ReplicaClosedError("Replica sent a malformed HTTP response"))
            if self.transport is not None:
                self.transport.abort()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key not in HOP_BY_HOP:
            self._headers.append((key, value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        response = UpstreamResponse(self.parser.get_status_code(), self._headers, b"".join(self._body))
        if not self.parser.should_keep_alive():
            if self.transport is not None:
                self.transport.close()
        elif self.transport is not None:
            self._release(self)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)


class ReplicaClient:
    """Keep-alive connections to one replica's scoring server."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise WebserviceException(f"Replica URL {base_url!r} must be http://host:port")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._host_header = f"{self.host}:{self.port}"
        self._idle: collections.deque[_Connection] = collections.deque()
        self._closed = False

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, timeout_s: float
    ) -> UpstreamResponse:
        """Send one request and return the answer.

        Raises ``TimeoutError`` after ``timeout_s`` (the connection is then dropped, since its
        answer would arrive out of turn) and :class:`ReplicaClosedError` when the replica goes away.
        """
        head = [f"{method} {target} HTTP/1.1\r\nhost: {self._host_header}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers if name not in HOP_BY_HOP)
        head.append(f"content-length: {len(body)}\r\n\r\n")
        data = "".join(head).encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        connection, reused = await self._connection(timeout_s)
        try:
            return await self._exchange(loop, connection, data, deadline)
        except ReplicaClosedError:
            # A reused connection may have been closed by the replica while idle, just before
            # this request went out; nothing was answered, so one retry on a fresh connection is
            # safe. A fresh connection failing is the replica's fault.
            if not reused or connection.received_any:
                raise
        connection, _ = await self._connection(max(deadline - loop.time(), 0.001), fresh=True)
        return await self._exchange(loop, connection, data, deadline)

    async def _connection(self, timeout_s: float, fresh: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self._release), self.host, self.port
                )
        except OSError as exc:
            raise ReplicaClosedError(f"Replica refused the connection ({exc.strerror or exc})") from exc
        return protocol, False

    @staticmethod
    async def _exchange(
        loop: asyncio.AbstractEventLoop, connection: _Connection, data: bytes, deadline: float
    ) -> UpstreamResponse:
        waiter: asyncio.Future[UpstreamResponse] = loop.create_future()
        connection.send(data, waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            connection.abort()
            raise
        finally:
            timer.cancel()

    def _release(self, connection: _Connection) -> None:
        if self._closed and connection.transport is not None:
            connection.transport.close()
        else:
            self._idle.append(connection)

    def close(self) -> None:
        """Close the idle connections now and the others when their request is answered."""
        self._closed = True
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()


def _expire(waiter: asyncio.Future[UpstreamResponse]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
