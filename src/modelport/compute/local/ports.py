"""Per-service listeners of the local target: a service with a ``port`` in its deployment config is
also served at ``http://localhost:<port>/score`` (Azure ML's ``LocalWebservice``).

Each listener is the replica runtime's HTTP layer in the agent, handing every request to the
agent's own front end with the path rewritten (``/score`` → ``/api/v1/service/<name>/score``), so
that auth, queueing, timeouts, status codes and metrics are the front end's, not a second copy.
``GET /`` answers ``Healthy`` as Azure ML's local container did. A listener that closes drains
its connections (requests in flight are answered); the front end's graceful stop covers them too.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from modelport.compute.local.replica import free_port
from modelport.errors import ModelportError, UserErrorException
from modelport.frontend.server import PREFIX, FrontEnd
from modelport.runtime.http_server import ConnectionSet, Request, Responder, json_error, protocol_factory
from modelport.runtime.listen import bind
from modelport.service import store as service_store
from modelport.service.machine import this_machine

if TYPE_CHECKING:
    from modelport.workspace import Workspace

log = logging.getLogger("modelport.agent")

HOST = "127.0.0.1"
RETRY_S = 5.0  # a port held by another program is tried again this often
_ROUTES = {"/score": "score", "/swagger.json": "swagger.json"}

__all__ = ["PortListeners", "check_port", "free_port"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def check_port(workspace: Workspace, name: str, port: int) -> None:
    """Refuse a port another service of this machine or another program already uses."""
    here = (None, this_machine().id)
    for record in service_store.list_services(workspace, "local"):
        if record.spec.deployment.port == port and record.spec.name != name and record.machine_id in here:
            raise UserErrorException(
                f"port {port} is already used by service {record.spec.name}. Fix: choose another port, or "
                "leave port=None for a free one."
            )
    current = service_store.read_service(workspace, name)
    owned = current is not None and current.spec.deployment.port == port
    if not owned and not _port_is_free(port):
        raise UserErrorException(
            f"port {port} on {HOST} is in use by another program. Fix: choose another port, or leave "
            "port=None for a free one."
        )


class _ServicePort:
    """The application behind one service's port: rewrites the path and lets the front end answer."""

    def __init__(self, frontend: FrontEnd, name: str) -> None:
        self.frontend = frontend
        self.name = name

    def handle(self, request: Request, responder: Responder) -> None:
        """Route one request (called by the HTTP layer on the agent's event loop)."""
        route = _ROUTES.get(request.path)
        if route is not None:
            request.path = f"{PREFIX}{self.name}/{route}"
            self.frontend.handle(request, responder)
        elif request.path == "/" and request.method in ("GET", "HEAD"):
            responder.respond(request, 200, [("content-type", "text/plain")], b"Healthy")
        else:
            message = f"No route {request.path} on service {self.name}'s port: use /score or /swagger.json"
            responder.respond(request, 404, [("content-type", "application/json")], json_error(message))


class _Listener:
    def __init__(self, port: int, server: asyncio.Server, connections: ConnectionSet) -> None:
        self.port = port
        self.server = server
        self.connections = connections

    def close(self) -> None:
        self.server.close()
        # Keep-alive clients would otherwise keep talking to a service that is gone; requests
        # in flight are answered first.
        self.connections.drain()


class PortListeners:
    """The agent's per-service listeners, kept in line with the services' ports on every pass."""

    def __init__(self, frontend: FrontEnd) -> None:
        self.frontend = frontend
        self._listeners: dict[str, _Listener] = {}
        self._failures: dict[str, tuple[int, float, str]] = {}  # name -> (port, when, why)

    async def sync(self, wanted: dict[str, int]) -> dict[str, str]:
        """Open and close listeners so that exactly ``wanted`` (service → port) are served.

        Returns service → why its port could not be opened (retried every ``RETRY_S`` seconds).
        """
        for name, listener in list(self._listeners.items()):
            if wanted.get(name) != listener.port:
                listener.close()
                del self._listeners[name]
                log.info("closed port %d of service %s", listener.port, name)
        self._failures = {n: f for n, f in self._failures.items() if wanted.get(n) == f[0]}
        for name, port in wanted.items():
            if name in self._listeners:
                continue
            failed = self._failures.get(name)
            if failed is not None and time.monotonic() - failed[1] < RETRY_S:
                continue
            try:
                self._listeners[name] = await self._open(name, port)
            except (OSError, ModelportError) as exc:
                why = f"port {port} on {HOST} is unavailable ({exc})"
                if failed is None:
                    log.warning("service %s: %s", name, why)
                self._failures[name] = (port, time.monotonic(), why)
                continue
            self._failures.pop(name, None)
            log.info("service %s also listens on http://localhost:%d/score", name, port)
            if self.frontend.scheme == "https":
                log.warning(
                    "service %s: port %d serves plain HTTP (as LocalWebservice did); TLS is "
                    "on the front end's port only",
                    name,
                    port,
                )
        return {name: why for name, (_, _, why) in self._failures.items()}

    async def _open(self, name: str, port: int) -> _Listener:
        sock = bind(HOST, port)
        make = protocol_factory(_ServicePort(self.frontend, name), self.frontend.max_request_bytes)
        connections = ConnectionSet()
        # In both sets: this listener drains its own when it closes, the front end's stop all.
        tracked = connections.track(self.frontend.track(make))
        server = await asyncio.get_running_loop().create_server(tracked, sock=sock)
        return _Listener(port, server, connections)

    def close_all(self) -> None:
        """Stop listening on every port."""
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()

    def describe(self, name: str) -> dict[str, Any]:
        """What the service's report says about its port."""
        listener = self._listeners.get(name)
        return {"port": listener.port} if listener is not None else {}
