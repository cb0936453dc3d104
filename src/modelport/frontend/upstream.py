"""HTTP/1.1 to one replica over a pool of keep-alive connections (httptools, no client library).

A general-purpose client (httpx) costs a few hundred microseconds per request in Python, more
than the front end's whole budget; this one writes each request in one send on a reused
``TCP_NODELAY`` connection, parses the answer with httptools and reports it through a callback
(no task or future per request). Bodies are buffered: the front end has the whole request before
it forwards it, and replicas answer with a length.
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
from modelport.runtime.listen import set_no_delay, unix_address

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


class ReplicaUnreachableError(ReplicaClosedError):
    """No connection to the replica could be opened: the request was not delivered."""


class UpstreamResponse:
    """A replica's complete answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names, hop-by-hop headers already removed
        self.body = body


# Receives exactly one of: the answer, ``TimeoutError`` or :class:`ReplicaClosedError`.
Outcome = Callable[[UpstreamResponse | Exception], None]


class _Exchange:
    """One request to the replica: its bytes, deadline, retry state and where the outcome goes."""

    __slots__ = ("client", "connection", "data", "on_done", "retried", "timer")

    def __init__(self, client: ReplicaClient, data: bytes, on_done: Outcome) -> None:
        self.client = client
        self.data = data
        self.on_done: Outcome | None = on_done
        self.connection: _Connection | None = None
        self.retried = False
        self.timer: asyncio.TimerHandle | None = None

    def finish(self, outcome: UpstreamResponse | Exception) -> None:
        on_done, self.on_done = self.on_done, None
        if on_done is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        on_done(outcome)

    def expire(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.abort()  # its answer would arrive out of turn on a reused connection
        self.finish(TimeoutError())

    def opened(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self.finish(ReplicaClosedError("Connecting to the replica was cancelled"))
        elif (error := task.exception()) is not None:
            self.finish(error if isinstance(error, ReplicaClosedError) else ReplicaClosedError(repr(error)))

    def closed(self, error: ReplicaClosedError, reused: bool, received_any: bool) -> None:
        self.connection = None
        # A reused connection may have been closed by the replica while idle, just before this
        # request went out; nothing was answered, so one retry on a fresh connection is safe.
        if reused and not received_any and not self.retried and self.on_done is not None:
            self.retried = True
            self.client.connect(self)
        else:
            self.finish(error)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time."""

    def __init__(self, client: ReplicaClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.reused = False
        self.received_any = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        set_no_delay(transport.get_extra_info("socket"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            error = ReplicaClosedError("Replica closed connection before replying")
            exchange.closed(error, self.reused, self.received_any)

    @property
    def usable(self) -> bool:
        """Open and not carrying an exchange."""
        return self.transport is not None and not self.transport.is_closing() and self.exchange is None

    def send(self, exchange: _Exchange) -> None:
        """Write the exchange's request; its outcome arrives through the exchange."""
        assert self.transport is not None
        self.exchange = exchange
        exchange.connection = self
        self.received_any = False
        self._headers = []
        self._body = []
        self.transport.write(exchange.data)

    def abort(self) -> None:
        """Drop the connection, forgetting its exchange."""
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            exchange, self.exchange = self.exchange, None
            if self.transport is not None:
                self.transport.abort()
            if exchange is not None:
                exchange.finish(ReplicaClosedError("Replica sent a malformed HTTP response"))

    # -- httptools callbacks ------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key not in HOP_BY_HOP:
            self._headers.append((key, value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        exchange, self.exchange = self.exchange, None
        response = UpstreamResponse(self.parser.get_status_code(), self._headers, b"".join(self._body))
        if not self.parser.should_keep_alive():
            if self.transport is not None:
                self.transport.close()
        elif self.transport is not None:
            self.reused = True
            self.client.idle(self)
        if exchange is not None:
            exchange.connection = None
            exchange.finish(response)


class ReplicaClient:
    """Keep-alive connections to one replica's scoring server."""

    def __init__(self, base_url: str, unix_socket: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise WebserviceException(f"Replica URL {base_url!r} must be http://host:port")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._host_header = f"{self.host}:{self.port}"
        # Connections go to the Unix socket when there is one; the Host header stays the URL's.
        self._unix_path = None if unix_socket is None else unix_address(unix_socket)
        self._idle: collections.deque[_Connection] = collections.deque()
        self._closed = False

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_s: float,
        on_done: Outcome,
    ) -> None:
        """Send one request; ``on_done`` later receives the answer, ``TimeoutError`` after ``timeout_s``
        (the connection is then dropped) or :class:`ReplicaClosedError` when the replica goes away."""
        # One f-string around one joined list (no generator): this runs for every request.
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers if name not in HOP_BY_HOP])
        head = (
            f"{method} {target} HTTP/1.1\r\nhost: {self._host_header}\r\n"
            f"{fields}content-length: {len(body)}\r\n\r\n"
        )
        exchange = _Exchange(self, head.encode("latin-1") + body, on_done)
        exchange.timer = asyncio.get_running_loop().call_later(timeout_s, exchange.expire)
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                connection.send(exchange)
                return
        self.connect(exchange)

    def connect(self, exchange: _Exchange) -> None:
        """Send ``exchange`` on a new connection (opened in the background)."""
        exchange.connection = None
        asyncio.get_running_loop().create_task(self._open(exchange)).add_done_callback(exchange.opened)

    async def _open(self, exchange: _Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._unix_path is not None:
                # Connected here: uvloop's create_unix_connection(path=) rejects abstract names.
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, self._unix_path)
                except BaseException:  # cancelled too: the socket is ours until the transport has it
                    sock.close()
                    raise
                _, connection = await loop.create_unix_connection(lambda: _Connection(self), sock=sock)
            else:
                _, connection = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise ReplicaUnreachableError(f"Replica refused the connection ({exc.strerror or exc})") from exc
        if exchange.on_done is None:  # timed out meanwhile
            self.idle(connection)
        else:
            connection.send(exchange)

    def idle(self, connection: _Connection) -> None:
        """Keep ``connection`` for the next request (or close it if this client is closed)."""
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
