"""Routes and wire rules of the scoring server (docs/scoring.md, "Routes"), in the front process.

``GET /`` (``Healthy``, once a worker finished ``init()``), ``/score`` (GET, POST, OPTIONS, HEAD),
``GET /swagger.json``, plus ``/health/live``, ``/health/ready`` and ``/metrics``. The request-id
headers, their 431 limits, ``TraceId``, the server-version header and CORS are applied here.
The same application runs in the front process (``run()`` goes to a worker through the
:class:`~modelport.runtime.pool.WorkerPool`) and in each worker for the connections handed to it
(``run()`` is called in place); a :class:`Backend` hides the difference.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any, Protocol
from urllib.parse import parse_qs

from modelport.runtime.config import ServeConfig
from modelport.runtime.http_server import Request, Responder, json_error
from modelport.runtime.metrics import ServerMetrics
from modelport.runtime.scoring import SHUTTING_DOWN_MESSAGE, Reply
from modelport.runtime.swagger import ALL_VERSIONS, VERSION_ALIASES

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)
METHOD_NOT_ALLOWED = "The method is not allowed for the requested URL."
ID_LIMIT = 100
JSON_HEADERS = [("content-type", "application/json"), ("x-ms-run-function-failed", "False")]
_CONTRACT_ROUTES = {"/": ("GET", "HEAD", "OPTIONS"), "/score": ("GET", "POST", "OPTIONS", "HEAD")}
_CONTRACT_ROUTES["/swagger.json"] = _CONTRACT_ROUTES["/"]
_EXTRA_ROUTES = {"/health/live", "/health/ready", "/metrics"}
# Headers the server sets after run(); a script's copies of them are dropped.
_SERVER_SET = frozenset(
    (
        "x-request-id",
        "x-ms-request-id",
        "x-ms-client-request-id",
        "traceid",
        "access-control-allow-origin",
        "vary",
        "access-control-allow-methods",
        "access-control-allow-headers",
    )
)

# Version and variant bits of a random UUID.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random (version 4) UUID as text.

    Built from ``random.getrandbits``: request ids need to be unique, not unpredictable, and this
    costs a fraction of ``uuid.uuid4()``, which reads the kernel's random source per call.
    """
    text = f"{(random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Backend(Protocol):
    """Where ``run()`` happens and what is known about the workers."""

    style: str | None  # "plain", "schema" or "raw" once a worker loaded the script
    documents: dict[str, str]  # swagger documents by version
    first_ready: asyncio.Future[None]  # done once a worker finished init(), or when draining starts
    draining: bool  # SIGTERM received: finishing the requests in flight, taking no new work

    @property
    def ready_count(self) -> int:
        """Workers that finished ``init()``."""
        ...

    def score(self, request: Request, responder: Responder) -> asyncio.Future[Reply]:
        """Call ``run()`` for ``request``; the future may be done already."""
        ...


class ScoringApp:
    """Answers requests for one replica; :class:`~modelport.runtime.http_server.HttpProtocol` calls it."""

    def __init__(self, config: ServeConfig, backend: Backend, metrics: ServerMetrics) -> None:
        self.config = config
        self.backend = backend
        self.metrics = metrics
        self._cors_any = "*" in config.cors_origins
        self._cors = frozenset(config.cors_origins)

    # -- entry --------------------------------------------------------------------------------
    def handle(self, request: Request, responder: Responder) -> None:
        """Route ``request`` and answer it through ``responder`` (now or when a worker replies)."""
        path = request.path
        allowed = _CONTRACT_ROUTES.get(path)
        if allowed is None:
            if path in _EXTRA_ROUTES and request.method in ("GET", "HEAD"):
                self._extra(request, responder)
            else:
                status, message = (405, METHOD_NOT_ALLOWED) if path in _EXTRA_ROUTES else (404, NOT_FOUND)
                self._send(request, responder, path, status, list(JSON_HEADERS), json_error(message))
            return
        if request.method not in allowed:
            self._send(request, responder, path, 405, list(JSON_HEADERS), json_error(METHOD_NOT_ALLOWED))
            return
        ids = self._id_headers(request)
        if isinstance(ids, tuple):
            status, headers, body = ids
            self._send(request, responder, path, status, headers, body)
            return
        if path == "/score":
            self._score(request, responder, ids)
        else:
            self._when_ready(request, responder, ids)

    def _send(
        self,
        request: Request,
        responder: Responder,
        route: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        responder.respond(request, status, headers, body)
        self.metrics.answered(route, status, time.perf_counter() - request.received)

    # -- ids, CORS, common headers -------------------------------------------------------------
    def _id_headers(
        self, request: Request
    ) -> list[tuple[str, str]] | tuple[int, list[tuple[str, str]], bytes]:
        header = request.header_map().get
        request_id = header("x-request-id")
        ms_id = header("x-ms-request-id")
        client_id = header("x-ms-client-request-id")
        if request_id is not None and len(request_id) > ID_LIMIT:
            return 431, self._common([]), json_error(f"x-request-id must not exceed {ID_LIMIT} characters")
        own_id = request_id or new_request_id()
        if (ms_id is not None and len(ms_id) > ID_LIMIT) or (
            client_id is not None and len(client_id) > ID_LIMIT
        ):
            headers = self._common([("x-request-id", own_id)])
            message = f"x-ms-request-id and x-ms-client-request-id must not exceed {ID_LIMIT} characters"
            return 431, headers, json_error(message)
        ids = [("x-request-id", own_id), ("x-ms-request-id", ms_id or client_id or own_id)]
        if client_id or ms_id:
            ids.append(("x-ms-client-request-id", client_id or ms_id or ""))
        trace = header("traceid")
        if trace is not None:
            ids.append(("TraceId", trace))
        origin = header("origin")
        if origin is not None and (self._cors_any or origin in self._cors):
            ids.append(("Access-Control-Allow-Origin", "*" if self._cors_any else origin))
            ids.append(("Vary", "Origin"))
            if request.method == "OPTIONS" and header("access-control-request-method"):
                ids.append(("Access-Control-Allow-Methods", "GET, POST"))
                wanted = header("access-control-request-headers")
                if wanted:
                    ids.append(("Access-Control-Allow-Headers", wanted))
        return ids

    def _common(self, ids: list[tuple[str, str]]) -> list[tuple[str, str]]:
        headers = [*JSON_HEADERS]
        if self.config.server_version is not None:
            headers.append(("x-ms-server-version", self.config.server_version))
        headers.extend(ids)
        return headers

    def _finish(
        self,
        ids: list[tuple[str, str]],
        reply_headers: list[tuple[str, str]],
        failed: bool | None,
        run_ms: float,
    ) -> list[tuple[str, str]]:
        """Reply headers plus run flags, server version and ids (``failed`` None: no run flag)."""
        headers = list(reply_headers)
        if failed is not None:
            headers.append(("x-ms-run-function-failed", "True" if failed else "False"))
        if run_ms >= 0:
            headers.append(("x-ms-run-fn-exec-ms", f"{run_ms:.3f}"))
        if self.config.server_version is not None:
            headers.append(("x-ms-server-version", self.config.server_version))
        # Set last, so that a script's own headers cannot replace the ids (as in the reference).
        return [h for h in headers if h[0].lower() not in _SERVER_SET] + ids

    # -- /score -------------------------------------------------------------------------------
    def _score(self, request: Request, responder: Responder, ids: list[tuple[str, str]]) -> None:
        style = self.backend.style
        if style is not None and style != "raw" and request.method in ("OPTIONS", "HEAD"):
            status, body = (
                (200, b"") if request.method == "OPTIONS" else (405, json_error("Method not allowed"))
            )
            content = "text/html; charset=utf-8" if status == 200 else "application/json"
            self._send(
                request,
                responder,
                "/score",
                status,
                self._finish(ids, [("content-type", content)], False, -1.0),
                body,
            )
            return
        future = self.backend.score(request, responder)
        if future.done():
            self._scored(request, responder, ids, future)
        else:
            self.metrics.in_flight.inc()
            future.add_done_callback(lambda done: self._waited(request, responder, ids, done))

    def _waited(
        self, request: Request, responder: Responder, ids: list[tuple[str, str]], done: asyncio.Future[Reply]
    ) -> None:
        self.metrics.in_flight.dec()
        self._scored(request, responder, ids, done)

    def _scored(
        self, request: Request, responder: Responder, ids: list[tuple[str, str]], done: asyncio.Future[Reply]
    ) -> None:
        status, headers, body, failed, run_ms = done.result()
        if run_ms >= 0:
            self.metrics.ran(run_ms / 1000.0)
        self._send(request, responder, "/score", status, self._finish(ids, headers, failed, run_ms), body)

    # -- / and /swagger.json ----------------------------------------------------------------------
    def _when_ready(self, request: Request, responder: Responder, ids: list[tuple[str, str]]) -> None:
        # Like the reference, these wait (rather than fail) while the first init() runs.
        first = self.backend.first_ready
        if not first.done():
            first.add_done_callback(lambda _: self._when_ready(request, responder, ids))
            return
        if self.backend.draining and not self.backend.ready_count:
            headers = self._finish(ids, list(JSON_HEADERS), None, -1.0)
            self._send(request, responder, request.path, 503, headers, json_error(SHUTTING_DOWN_MESSAGE))
        elif request.path == "/":
            headers = self._finish(ids, [("content-type", "text/html; charset=utf-8")], None, -1.0)
            self._send(request, responder, "/", 200, headers, b"Healthy")
        else:
            self._swagger(request, responder, ids)

    def _swagger(self, request: Request, responder: Responder, ids: list[tuple[str, str]]) -> None:
        asked = parse_qs(request.query.decode("latin-1")).get("version", ["2"])[0]
        version = VERSION_ALIASES.get(asked)
        documents = self.backend.documents
        if version is None:
            status = 404
            body = json_error(
                f"Swagger version [{asked}] is not valid. Supported versions: [{', '.join(ALL_VERSIONS)}]."
            )
        elif version not in documents:
            status = 404
            body = json_error(
                f"Swagger version [{asked}] is not supported for the scoring script. Supported swagger "
                f"versions: [{', '.join(documents)}]."
            )
        else:
            status, body = 200, documents[version].encode("utf-8")
        self._send(
            request,
            responder,
            "/swagger.json",
            status,
            self._finish(ids, [("content-type", "application/json")], False, -1.0),
            body,
        )

    # -- /health/*, /metrics -------------------------------------------------------------------
    def _extra(self, request: Request, responder: Responder) -> None:
        if request.path == "/metrics":
            headers = [("content-type", self.metrics.content_type)]
            self._send(request, responder, "/metrics", 200, headers, self.metrics.render())
            return
        ready = self.backend.ready_count
        state: dict[str, Any] = {"workers": self.config.worker_count, "workers_ready": ready}
        if request.path == "/health/live":
            status, state["status"] = 200, "live"
        elif self.backend.draining:
            status, state["status"] = 503, "draining"
            state["message"] = (
                "The server is shutting down: it finishes the requests in flight and takes no new ones."
            )
        elif ready >= self.config.worker_count:
            status, state["status"] = 200, "ready"
        else:
            status, state["status"] = 503, "not ready"
            state["message"] = (
                f"{ready} of {self.config.worker_count} workers have finished init(); "
                "not ready for traffic yet."
            )
        self._send(
            request,
            responder,
            request.path,
            status,
            [("content-type", "application/json")],
            json.dumps(state).encode(),
        )
