"""One scoring or swagger request on its way through the front end: admitted, forwarded, answered.

Event-driven rather than a coroutine per request: the balancer calls back with a replica slot
(at once, or when the queue moves), the replica client calls back with the outcome, and the
answer is written from there. This keeps the front end's own cost per request to a few tens
of microseconds, which is what the 0.5 ms budget of issue 4 leaves to Python.
"""

from __future__ import annotations

import time

import orjson

from modelport.frontend.balancer import Overloaded, Replica, ServiceBalancer
from modelport.frontend.metrics import FrontEndMetrics
from modelport.frontend.upstream import ReplicaUnreachableError, UpstreamResponse
from modelport.runtime.http_server import Request, Responder

JSON = (("content-type", "application/json"),)
# Answers the front end writes itself echo these, so that clients can correlate them.
ID_HEADERS = frozenset(("x-request-id", "x-ms-request-id", "x-ms-client-request-id"))


def answer_error(
    metrics: FrontEndMetrics,
    request: Request,
    responder: Responder,
    service: str,
    status: int,
    message: str,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Write an answer of the front end's own (JSON ``{"message": ...}``) and count it."""
    headers = [
        *JSON,
        *((name, value) for name, value in request.headers if name in ID_HEADERS),
        *extra_headers,
    ]
    if status == 401:
        headers.append(("www-authenticate", "Bearer"))
    responder.respond(request, status, headers, orjson.dumps({"message": message}))
    metrics.answered(service, status, time.perf_counter() - request.received)


class Call:
    """A request admitted past routing and auth; :meth:`start` sends it on its way."""

    __slots__ = ("balancer", "headers", "metrics", "replica", "request", "responder", "retries", "target")

    def __init__(
        self,
        request: Request,
        responder: Responder,
        balancer: ServiceBalancer,
        target: str,
        headers: list[tuple[str, str]],
        metrics: FrontEndMetrics,
    ) -> None:
        self.request = request
        self.responder = responder
        self.balancer = balancer
        self.target = target  # path and query on the replica
        self.headers = headers  # what the replica gets (the credential already removed)
        self.metrics = metrics
        self.replica: Replica | None = None
        self.retries = 0

    def start(self) -> None:
        """Ask for a replica slot; the rest follows from the callbacks."""
        self.balancer.admit(self._admitted)

    def _admitted(self, outcome: Replica | Overloaded) -> None:
        route = self.balancer.route
        if isinstance(outcome, Overloaded):
            self._fail(503, outcome.message)
            return
        self.replica = outcome
        request = self.request
        self.metrics.waited(route.name, time.perf_counter() - request.received)
        outcome.client.request(
            request.method,
            self.target,
            self.headers,
            request.body,
            route.scoring_timeout_ms / 1000.0,
            self._answered,
        )

    def _answered(self, outcome: UpstreamResponse | Exception) -> None:
        assert self.replica is not None
        if isinstance(outcome, ReplicaUnreachableError):
            # Never delivered, so another replica may take it (each at most once).
            self.balancer.unreachable(self.replica)
            if self.retries < len(self.balancer.replicas) - 1:
                self.retries += 1
                self.balancer.admit(self._admitted)
                return
        else:
            self.balancer.release(self.replica)
        if isinstance(outcome, UpstreamResponse):
            status = outcome.status
            if status >= 500 and _run_failed(outcome.headers):
                status = 502  # run() failed: Azure ML v1's router answered 502 with the replica's body
            self.responder.respond(self.request, status, outcome.headers, outcome.body)
            self.metrics.answered(
                self.balancer.route.name, status, time.perf_counter() - self.request.received
            )
        elif isinstance(outcome, TimeoutError):
            timeout = self.balancer.route.scoring_timeout_ms
            self._fail(504, f"Scoring timeout after {timeout} ms (scoring_timeout_ms)")
        else:
            self._fail(502, str(outcome))

    def _fail(self, status: int, message: str) -> None:
        answer_error(self.metrics, self.request, self.responder, self.balancer.route.name, status, message)


def _run_failed(headers: list[tuple[str, str]]) -> bool:
    return any(name == "x-ms-run-function-failed" and value.lower() == "true" for name, value in headers)
