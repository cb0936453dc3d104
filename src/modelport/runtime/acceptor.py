"""Accepting connections on the scoring port and choosing who serves each one.

The front process peeks (``MSG_PEEK``, nothing consumed) at the first request line of every new
connection. A connection that starts with a ``/score`` request is handed over to a ready worker,
which from then on reads and answers it itself: no hop through the front process per request.
Every other connection (health probes, metrics scrapes, swagger, anything before the first
worker is ready) is served by the front process, whose ``/score`` requests go to the workers as
messages. So probes are answered even while every worker is inside ``run()``.

:meth:`Acceptor.drain` (graceful stop) accepts what is already in the listen backlog, closes the
listening sockets, so that new connections are refused, and closes accepted connections that
have sent nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from modelport.runtime.http_server import MAX_URL_BYTES, HttpProtocol
from modelport.runtime.listen import has_unread_input, set_no_delay
from modelport.runtime.pool import WorkerPool

log = logging.getLogger("modelport.runtime.acceptor")

ACCEPT_BATCH = 64
# An incomplete first line is looked at again after this delay (a level-triggered reader would
# spin on data that stays unread), at most this many times; then the front process serves it.
PEEK_RETRY_S = 0.002
PEEK_RETRIES = 500


def targets_score(request_line: bytes) -> bool:
    """Whether an HTTP request line (``POST /score?x=1 HTTP/1.1``) asks for ``/score``."""
    parts = request_line.split(b" ")
    return len(parts) == 3 and parts[1].split(b"?", 1)[0] == b"/score"


class Acceptor:
    """Accepts on the listening socket; hands ``/score`` connections over, serves the others."""

    def __init__(
        self, listeners: list[socket.socket], pool: WorkerPool, serve_here: Callable[[], HttpProtocol]
    ) -> None:
        self.listeners = listeners  # the scoring port, and the Unix socket when there is one
        self.pool = pool
        self.serve_here = serve_here
        self.loop = asyncio.get_running_loop()
        self._starting: set[asyncio.Task[Any]] = set()
        # Accepted, first request line not looked at yet: by descriptor.
        self._peeking: dict[int, socket.socket] = {}
        self.draining = False

    def start(self) -> None:
        """Begin accepting; connections of workers that exit come back through :meth:`adopt`."""
        self.pool.adopt = self.adopt
        for listener in self.listeners:
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    def adopt(self, connection: socket.socket) -> None:
        """Serve an already accepted connection as if it were new."""
        self._watch(connection)
        if self.draining:
            self._close_if_silent(connection)

    @property
    def idle(self) -> bool:
        """No accepted connection is waiting for its first look or for its protocol."""
        return not self._peeking and not self._starting

    def drain(self) -> None:
        """Stop accepting: take in the backlog (those clients connected before the stop), close the
        listening sockets, and close accepted connections that have sent nothing."""
        self.draining = True
        for listener in self.listeners:
            while self._accept(listener):
                pass
        self.close()
        for connection in list(self._peeking.values()):
            self._close_if_silent(connection)

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        for listener in self.listeners:
            if listener.fileno() >= 0:
                self.loop.remove_reader(listener.fileno())
                listener.close()

    def close_connections(self) -> None:
        """Close the connections still waiting for their first look (end of a graceful stop)."""
        for connection in list(self._peeking.values()):
            self._forget(connection)
            connection.close()

    def _watch(self, connection: socket.socket) -> None:
        self._peeking[connection.fileno()] = connection
        self.loop.add_reader(connection.fileno(), self._peek, connection, 0)

    def _forget(self, connection: socket.socket) -> None:
        self._peeking.pop(connection.fileno(), None)
        self.loop.remove_reader(connection.fileno())

    def _close_if_silent(self, connection: socket.socket) -> None:
        if not has_unread_input(connection):
            self._forget(connection)
            connection.close()

    def _accept(self, listener: socket.socket) -> bool:
        """Accept up to a batch; True when the batch was full (more may be waiting)."""
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:  # out of file descriptors, for instance: try again on the next wake-up
                log.error("accept() failed: %s", exc)
                return False
            connection.setblocking(False)
            set_no_delay(connection)
            self._watch(connection)
        return True

    def _peek(self, connection: socket.socket, retries: int) -> None:
        try:
            head = connection.recv(MAX_URL_BYTES + 2, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._forget(connection)
            connection.close()
            return
        self.loop.remove_reader(connection.fileno())
        line_end = head.find(b"\r\n")
        if head and line_end < 0 and len(head) <= MAX_URL_BYTES and retries < PEEK_RETRIES:
            fd = connection.fileno()
            self.loop.call_later(PEEK_RETRY_S, self._peek_again, fd, connection, retries + 1)
            return
        self._forget(connection)
        if head and targets_score(head[:line_end]) and self.pool.hand_over(connection):
            return
        task = self.loop.create_task(self.loop.connect_accepted_socket(self.serve_here, connection))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    def _peek_again(self, fd: int, connection: socket.socket, retries: int) -> None:
        if self._peeking.get(fd) is connection:  # not closed meanwhile
            self.loop.add_reader(fd, self._peek, connection, retries)
