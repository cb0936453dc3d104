"""The front end's HTTP server: routes, auth, admission, forwarding and status codes.

Routes: ``GET|POST|OPTIONS /api/v1/service/<name>/score``, ``GET /api/v1/service/<name>/swagger.json``
(from a replica, without auth, as in Azure ML), ``GET /`` (the front end's health) and
``GET /metrics``. The HTTP/1.1 layer is the replica runtime's (httptools on the owner's event
loop, one send per response, ``TCP_NODELAY``, the same body limit); replicas are reached over
keep-alive pools (:mod:`modelport.frontend.upstream`). Status codes follow
docs/frontend.md, "Status codes": 401 auth, 404 unknown service, 405 method, 503 no replica or
overloaded, 504 scoring timeout, 502 when ``run()`` failed (replica 5xx with
``x-ms-run-function-failed: True``, its body passed on) or the replica dropped the connection.

Graceful stop (:meth:`FrontEnd.stop`): ``GET /`` answers 503, the port stops accepting, idle
keep-alive connections close, and the requests in flight (queued ones included) get the grace
period to be answered, each with ``Connection: close``; any still unanswered then gets a 503 JSON.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator, Mapping

import orjson

from modelport.frontend.auth import Authenticator
from modelport.frontend.autoscaler import LoadSample
from modelport.frontend.balancer import Replica, ServiceBalancer
from modelport.frontend.forward import JSON, Call, answer_error
from modelport.frontend.limits import KeyLimiters
from modelport.frontend.metrics import UNKNOWN_SERVICE, FrontEndMetrics
from modelport.frontend.routes import NamedKey, ServiceRoute
from modelport.frontend.tls_listener import TlsListener
from modelport.runtime.config import DEFAULT_MAX_REQUEST_BYTES
from modelport.runtime.http_server import ConnectionSet, HttpProtocol, Request, Responder, protocol_factory
from modelport.runtime.listen import bind

PREFIX = "/api/v1/service/"
STOP_GRACE_S = 5.0
STOP_POLL_S = 0.01  # how often stop() looks whether the requests in flight have finished
DRAINING = "Draining"
_METHODS = {"score": frozenset(("GET", "POST", "OPTIONS")), "swagger.json": frozenset(("GET",))}


class FrontEnd:
    """The router in front of a target's replicas; runs on its owner's event loop.

    The owner calls :meth:`start`, pushes the routing table with :meth:`set_routes` whenever it
    changes, reads :meth:`in_flight` to know when a replica taken out of the table has drained,
    and :meth:`load` once per refresh period to feed the autoscaler.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._tls = tls
        self._tls_listener: TlsListener | None = None
        self._requested_port = port
        self.max_request_bytes = max_request_bytes
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._services: dict[str, ServiceBalancer] = {}
        self._replicas: dict[str, Replica] = {}
        self._auth = Authenticator()
        self._limiters = KeyLimiters()
        self.clock: Callable[[], float] = time.time  # the key limiters' (tests replace it)
        # Client connections, so that stop() can drain keep-alive ones (Server.close() does not).
        self._connections = ConnectionSet()
        self.draining = False
        self.metrics = FrontEndMetrics(self._samples)

    # -- owner API -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the front end listens on (known after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("FrontEnd.port is known only after start()")
        return self._port

    @property
    def scheme(self) -> str:
        """``https`` when the front end serves TLS, else ``http``."""
        return "https" if self._tls is not None else "http"

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0: any free port); raises ``UserErrorException`` if taken.

        With a TLS context, only TLS is served on the port (see :mod:`modelport.frontend.tls_listener`).
        """
        sock = bind(self.host, self._requested_port)
        factory = self.track(protocol_factory(self, self.max_request_bytes))
        if self._tls is not None:
            self._tls_listener = TlsListener(sock, factory, self._tls)
            self._tls_listener.start()
        else:
            self._server = await asyncio.get_running_loop().create_server(factory, sock=sock)
        self._port = int(sock.getsockname()[1])

    def set_tls(self, context: ssl.SSLContext) -> None:
        """Serve new handshakes with ``context`` (a replaced certificate); open connections keep theirs.

        Only for a front end started with TLS: switching a port between HTTP and HTTPS is a restart.
        """
        if self._tls_listener is None:
            raise RuntimeError("FrontEnd.set_tls needs a front end started with tls=")
        self._tls = context
        self._tls_listener.set_context(context)

    def track(self, factory: Callable[[], HttpProtocol]) -> Callable[[], HttpProtocol]:
        """``factory`` whose client connections :meth:`stop` drains (the owner's other listeners use it)."""
        return self._connections.track(factory)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop gracefully: not ready, no new connections, idle keep-alive ones closed; requests in
        flight (queued ones included) get up to ``grace_s`` to be answered, then a 503 JSON; then
        every client and replica connection is closed."""
        self.draining = True
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._tls_listener is not None:
            self._tls_listener.close()
            self._tls_listener = None
        self._connections.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while any(c.active for c in self._connections) and loop.time() < deadline:
            await asyncio.sleep(STOP_POLL_S)
        message = (
            f"The front end is shutting down and the request did not finish within its graceful "
            f"timeout of {grace_s:g} s; retry it."
        )
        for connection in self._connections:
            request = connection.in_progress
            if request is not None:
                answer_error(self.metrics, request, connection, _service_of(request.path), 503, message)
        for balancer in self._services.values():
            balancer.close()
        self._connections.close()
        for replica in self._replicas.values():
            replica.client.close()

    def set_routes(self, routes: Mapping[str, ServiceRoute]) -> None:
        """Replace the whole routing table (call on the front end's event loop).

        Replicas missing from the new table get no new requests; their requests in flight finish
        and :meth:`in_flight` counts them down to 0. Replicas are identified by ``replica_id``;
        one whose address (``base_url``, ``unix_socket``) changed is a new replica.
        """
        replicas: dict[str, Replica] = {}
        chosen: dict[str, list[Replica]] = {}
        for name, route in routes.items():
            chosen[name] = []
            for target in route.replicas:
                replica = self._replicas.get(target.replica_id)
                if replica is None or replica.target != target:
                    replica = Replica(target)
                replicas[target.replica_id] = replica
                chosen[name].append(replica)
        for replica_id, replica in self._replicas.items():
            if replicas.get(replica_id) is not replica:
                if replica.in_flight:
                    replicas.setdefault(replica_id, replica)  # still draining: keep it countable
                else:
                    replica.client.close()
        for name, balancer in self._services.items():
            if name not in routes:
                balancer.close()
        self._limiters.configure(
            {(name, key.name): key.limits for name, route in routes.items() for key in route.auth.named_keys}
        )
        previous = self._services
        self._replicas = replicas
        self._services = {
            name: previous.get(name) or ServiceBalancer(route, chosen[name]) for name, route in routes.items()
        }
        # After the swap, so that queued requests are granted replicas of the new table.
        for name, route in routes.items():
            if name in previous:
                previous[name].update(route, chosen[name])

    def in_flight(self, replica_id: str) -> int:
        """Requests sent to ``replica_id`` and not yet answered (0 for an unknown replica)."""
        replica = self._replicas.get(replica_id)
        return replica.in_flight if replica is not None else 0

    def load(self, service: str) -> LoadSample:
        """The load of ``service`` now (zeros for a service not in the table)."""
        balancer = self._services.get(service)
        if balancer is None:
            return LoadSample(service, time.monotonic(), 0, 0, 0, 1, 0.0)
        return balancer.load()

    def _samples(self) -> Iterator[LoadSample]:
        for balancer in list(self._services.values()):
            yield balancer.load()

    # -- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request, responder: Responder) -> None:
        """Route one request (called by the HTTP layer on the event loop)."""
        path = request.path
        if path.startswith(PREFIX):
            name, _, rest = path[len(PREFIX) :].partition("/")
            balancer = self._services.get(name)
            methods = _METHODS.get(rest)
            if balancer is not None and methods is not None and request.method in methods:
                self._forward(request, responder, balancer, rest)
                return
            if methods is None:
                service, status, message = UNKNOWN_SERVICE, 404, f"No route {path} on this front end"
            elif balancer is None:
                service, status, message = UNKNOWN_SERVICE, 404, f"Service {name} not found"
            else:
                service, status, message = name, 405, "The method is not allowed for the requested URL."
            answer_error(self.metrics, request, responder, service, status, message)
        elif path == "/" and request.method in ("GET", "HEAD"):
            status, state = (503, DRAINING) if self.draining else (200, "Healthy")
            body = orjson.dumps({"status": state, "services": len(self._services)})
            responder.respond(request, status, list(JSON), body)
        elif path == "/metrics" and request.method == "GET":
            responder.respond(
                request, 200, [("content-type", self.metrics.content_type)], self.metrics.render()
            )
        else:
            message = f"No route {path} on this front end"
            answer_error(self.metrics, request, responder, UNKNOWN_SERVICE, 404, message)

    def _forward(self, request: Request, responder: Responder, balancer: ServiceBalancer, rest: str) -> None:
        route = balancer.route
        headers = request.headers
        if rest == "score" and route.auth.mode != "none":
            fields = request.header_map()
            # A CORS preflight carries no credentials by design; everything else must.
            if not (request.method == "OPTIONS" and "access-control-request-method" in fields):
                verdict = self._auth.check(route.name, route.auth, fields.get("authorization"))
                if isinstance(verdict, str):
                    answer_error(self.metrics, request, responder, route.name, 401, verdict)
                    return
                if isinstance(verdict, NamedKey) and not self._admit_key(
                    request, responder, route.name, verdict
                ):
                    return
                # The credential is the front end's business, not the entry script's.
                headers = [field for field in headers if field[0] != "authorization"]
        target = "/" + rest + ("?" + request.query.decode("latin-1") if request.query else "")
        Call(request, responder, balancer, target, headers, self.metrics).start()

    def _admit_key(self, request: Request, responder: Responder, service: str, key: NamedKey) -> bool:
        """Count a named key's request against its limits; answer 429 with ``Retry-After`` when over."""
        admission = self._limiters.admit(service, key.name, self.clock())
        self.metrics.key_request(service, key.name, admission.outcome)
        if not admission.admitted:
            retry = (("retry-after", str(admission.retry_after_s)),)
            answer_error(self.metrics, request, responder, service, 429, admission.message, retry)
        return admission.admitted


def _service_of(path: str) -> str:
    """The service a request path names (for metrics), or the label of requests that name none."""
    if path.startswith(PREFIX):
        return path[len(PREFIX) :].partition("/")[0] or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE
