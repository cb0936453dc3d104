"""Listening sockets of the scoring server and the front end: a TCP port, or a Unix socket.

Both give one-line errors naming the flag and the fix when the address cannot be used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import Any

from modelport.errors import UserErrorException

BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return _listen(sock, (host, port), f"--port / --host: {host}:{port}", "port")


def set_no_delay(sock: Any) -> None:
    """``TCP_NODELAY`` on a TCP socket (a Unix socket has no Nagle delay to switch off).

    ``sock`` is a socket or the socket-like object an event loop transport hands out.
    """
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def has_unread_input(sock: Any) -> bool:
    """Whether bytes the peer sent wait unread in ``sock`` (a socket or a transport's socket-like object).

    Looked at through a duplicate descriptor, since a transport's socket-like object cannot
    ``recv``. A drain uses it to tell an idle keep-alive connection from one whose next request
    has arrived but not been read yet.
    """
    if sock is None:
        return False
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as duplicate:
            return bool(duplicate.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # nothing to read (EAGAIN), or the connection is already gone
        return False


def unix_address(name: str) -> str:
    """The ``bind``/``connect`` address of a Unix socket name: ``@name`` is Linux's abstract namespace."""
    return "\0" + name[1:] if name.startswith("@") else name


def bind_unix(name: str) -> socket.socket:
    """A listening Unix socket at ``name``: a file path, or ``@name`` for Linux's abstract namespace.

    A socket file that refuses connections (its server died) is replaced; a live one, or any other
    kind of file at the path, is an error.
    """
    if not name.startswith("@"):
        _remove_stale(name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    return _listen(sock, unix_address(name), f"--unix_socket: {name}", "name")


def remove_unix_socket(name: str) -> None:
    """Remove the socket file of ``name`` (nothing to do for an abstract name)."""
    if not name.startswith("@"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _remove_stale(path: str) -> None:
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise UserErrorException(f"--unix_socket: {path} exists and is not a socket; pick another path.")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            refused = probe.connect_ex(path) == errno.ECONNREFUSED
        if refused:  # nobody listens: a file left by a server that died
            os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserErrorException(
            f"--unix_socket: {path} cannot be used ({exc.strerror or exc}); pick another path."
        ) from exc


def _listen(sock: socket.socket, address: str | tuple[str, int], what: str, other: str) -> socket.socket:
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        in_use = exc.errno == errno.EADDRINUSE
        reason = "is already in use" if in_use else f"cannot be bound ({exc.strerror or exc})"
        raise UserErrorException(f"{what} {reason}; stop the other server or pick another {other}.") from exc
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock
