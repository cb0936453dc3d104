"""HTTP/1.1 on the front process: parsing (httptools), limits, keep-alive, writing responses.

Every accepted socket gets ``TCP_NODELAY`` and every response goes out in one ``write`` (status
line, headers and body joined first): a response split over two sends waits about 40 ms behind
the client's delayed ACK on keep-alive connections. Requests on one connection are answered in
order (pipelining works). Limits answer in JSON: body larger than the configured maximum → 413,
more than 100 header fields or a field over 8190 bytes → 431, a request line over 8190 bytes → 414,
unparsable input → 400; these close the connection since the rest of the stream cannot be trusted.

Draining (graceful shutdown): a :class:`ConnectionSet` reaches every open connection of a server;
a connection told to drain closes at once when no request is in progress on it, and otherwise
answers the requests it has already received, the last one with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import collections
import http
import json
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Protocol, cast

import httptools

from modelport.runtime.listen import has_unread_input, set_no_delay

MAX_HEADERS = 100
MAX_FIELD_BYTES = 8190
MAX_URL_BYTES = 8190
# Pipelined requests parsed ahead of their turn; beyond this the connection stops reading.
MAX_PENDING = 16


class Request:
    """One complete HTTP request as the application sees it."""

    __slots__ = ("_map", "body", "headers", "keep_alive", "method", "path", "query", "received")

    def __init__(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: list[tuple[str, str]],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lower-case names, latin-1 decoded, in arrival order
        self.body = body
        self.keep_alive = keep_alive
        self.received = time.perf_counter()
        self._map: dict[str, str] | None = None

    def header_map(self) -> dict[str, str]:
        """Headers by lower-case name (the last value of a repeated header)."""
        if self._map is None:
            self._map = dict(self.headers)
        return self._map


class Responder(Protocol):
    """What the application calls to answer a request."""

    connection_id: int  # non-zero on a connection handed over to a worker

    def respond(self, request: Request, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...


class Application(Protocol):
    """The request handler behind the HTTP layer."""

    def handle(self, request: Request, responder: Responder) -> None: ...


_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <code> <reason>\\r\\n``, cached."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode("latin-1")
        _STATUS_LINES[status] = line
    return line


def serialize(
    status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool, head_only: bool = False
) -> bytes:
    """The complete response as one bytes object (without the body for a HEAD request)."""
    head = "".join([f"{name}: {value}\r\n" for name, value in headers])
    tail = f"content-length: {len(body)}\r\n" + ("\r\n" if keep_alive else "connection: close\r\n\r\n")
    return b"".join((status_line(status), (head + tail).encode("latin-1"), b"" if head_only else body))


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(message: str) -> bytes:
    """The body of every error answer: ``{"message": ...}``."""
    return json.dumps({"message": message}).encode("utf-8")


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(
        self,
        app: Application,
        max_body: int,
        connection_id: int = 0,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.connection_id = connection_id  # non-zero on a connection the front process handed over
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: collections.deque[Request] = collections.deque()
        self.busy = False
        self.in_progress: Request | None = None  # the request the application is answering
        self._receiving = False  # between the first byte of a request and its end
        self._draining = False
        self._dispatching = False
        self._paused = False
        self._rejection: bytes | None = None
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_size = 0

    # -- connection -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement its interface.
        self.transport = cast(asyncio.Transport, transport)
        set_no_delay(transport.get_extra_info("socket"))

    @property
    def active(self) -> bool:
        """Whether a request is being received, answered or waiting its turn on this connection."""
        return self.busy or self._receiving or bool(self.pending)

    def drain(self) -> None:
        """Take no new request: close now if idle, else after answering what has been received.

        Before ``connection_made`` it only marks the connection: its first request is on its way.
        """
        self._draining = True
        transport = self.transport
        # A request that arrived but was not read yet is answered, not cut off by the close.
        if (
            transport is not None
            and not self.active
            and not has_unread_input(transport.get_extra_info("socket"))
        ):
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pending.clear()
        if self._on_lost is not None:
            self._on_lost()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._reject(cause.status, cause.message)
            else:
                raise
        except httptools.HttpParserUpgrade:
            self._reject(400, "Protocol upgrades are not supported.")
        except httptools.HttpParserError as exc:
            self._reject(400, f"Malformed HTTP request: {exc}")

    def _reject(self, status: int, message: str) -> None:
        # Answered after the requests before it (pipelining keeps order), then the connection closes.
        headers = [("content-type", "application/json"), ("x-ms-run-function-failed", "False")]
        self._rejection = serialize(status, headers, json_error(message), keep_alive=False)
        if self.transport is not None:
            self.transport.pause_reading()
        if not self.busy and not self.pending:
            self._close_with_rejection()

    def _close_with_rejection(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and self._rejection is not None:
            self.transport.write(self._rejection)
            self.transport.close()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._receiving = True
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL_BYTES:
            raise _Reject(414, f"The request line is longer than {MAX_URL_BYTES} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) >= MAX_HEADERS:
            raise _Reject(431, f"The request has more than {MAX_HEADERS} header fields.")
        if len(name) + len(value) > MAX_FIELD_BYTES:
            raise _Reject(
                431,
                f"The header field {name[:64].decode('latin-1')!r} is longer than {MAX_FIELD_BYTES} bytes.",
            )
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        # One pass, first occurrence of each (on every request, so no generator per field looked up).
        length = expect = None
        for name, value in self._headers:
            if name == "content-length":
                length = value if length is None else length
            elif name == "expect":
                expect = value if expect is None else expect
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise _Reject(413, self._too_large_message())
        idle = not self.busy and not self.pending
        if expect is not None and expect.lower() == "100-continue" and idle and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.max_body:
            raise _Reject(413, self._too_large_message())
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        raw = self._url
        if raw[:1] == b"/" and b"?" not in raw and b"#" not in raw:
            path, query = raw, b""  # the usual origin-form target: parse_url would return it as is
        else:
            url = httptools.parse_url(raw)
            path, query = url.path, url.query or b""
        request = Request(
            self.parser.get_method().decode("latin-1"),
            path.decode("latin-1"),
            query,
            self._headers,
            b"".join(self._body),
            self.parser.should_keep_alive(),
        )
        self.pending.append(request)
        if len(self.pending) >= MAX_PENDING and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        if not self.busy:
            self._next()

    def _too_large_message(self) -> str:
        return (
            f"The request body is larger than the limit of {self.max_body} bytes; "
            "raise --max_request_bytes / MODELPORT_MAX_REQUEST_BYTES to accept it."
        )

    # -- answering ------------------------------------------------------------------------------
    def _next(self) -> None:
        # A loop, not recursion: synchronous answers to pipelined requests come back through
        # respond() while this loop runs.
        self._dispatching = True
        try:
            while self.pending and not self.busy:
                self.busy = True
                self.in_progress = self.pending.popleft()
                self.app.handle(self.in_progress, self)
        finally:
            self._dispatching = False
        resumable = self._rejection is None and len(self.pending) < MAX_PENDING // 2
        if self._paused and resumable and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def respond(self, request: Request, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Write the answer to ``request`` in one send; close or go on with the next request."""
        transport = self.transport
        self.busy = False
        if request is self.in_progress:
            self.in_progress = None
        if transport is None or transport.is_closing():
            return
        # While draining, the last request received is answered with "Connection: close".
        keep_alive = request.keep_alive and not (self._draining and not self.pending and not self._receiving)
        transport.write(serialize(status, headers, body, keep_alive, request.method == "HEAD"))
        if not keep_alive:
            transport.close()
            return
        if self.pending and not self._dispatching:
            self._next()
        elif not self.pending and self._rejection is not None:
            self._close_with_rejection()


def protocol_factory(app: Application, max_body: int) -> Callable[[], HttpProtocol]:
    """A factory for ``loop.create_server``."""
    return lambda: HttpProtocol(app, max_body)


class ConnectionSet:
    """The open connections of a server, so that a shutdown can drain the keep-alive ones.

    ``Server.close()`` only stops accepting; connections already open would keep taking requests.
    """

    def __init__(self) -> None:
        self._connections: weakref.WeakSet[HttpProtocol] = weakref.WeakSet()
        self.draining = False

    def track(self, factory: Callable[[], HttpProtocol]) -> Callable[[], HttpProtocol]:
        """``factory`` whose connections are tracked (and drain from the start once draining)."""

        def tracked() -> HttpProtocol:
            return self.add(factory())

        return tracked

    def add(self, connection: HttpProtocol) -> HttpProtocol:
        """Track ``connection``; one added while draining closes after its first answer."""
        self._connections.add(connection)
        if self.draining:
            connection.drain()
        return connection

    def __iter__(self) -> Iterator[HttpProtocol]:
        return iter([c for c in self._connections if c.transport is not None])

    def drain(self) -> None:
        """Drain every open connection (see :meth:`HttpProtocol.drain`) and those added later."""
        self.draining = True
        for connection in self:
            connection.drain()

    def close(self) -> None:
        """Close every open connection now."""
        for connection in self:
            if connection.transport is not None:
                connection.transport.close()
