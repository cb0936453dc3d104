"""A front end on its own thread and uvloop event loop, for tests, benchmarks and tools.

Owners that have an event loop (the local agent) run :class:`~modelport.frontend.server.FrontEnd`
on it directly; this wrapper gives the same operations to synchronous code, each executed on
the front end's loop so that the table swap stays atomic with respect to requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

import uvloop

from modelport.frontend.autoscaler import LoadSample
from modelport.frontend.routes import ServiceRoute
from modelport.frontend.server import STOP_GRACE_S, FrontEnd

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0


class BackgroundFrontEnd:
    """``with BackgroundFrontEnd() as fe: fe.set_routes(...); httpx.post(fe.url + ...)``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.frontend = FrontEnd(host, port, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The listening port."""
        return self.frontend.port

    @property
    def url(self) -> str:
        """``http://host:port`` of the front end (``https://`` when it serves TLS)."""
        return f"{self.frontend.scheme}://{self.frontend.host}:{self.port}"

    def start(self) -> BackgroundFrontEnd:
        """Start the loop thread and listen; returns when the port accepts connections."""
        loop = uvloop.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="modelport-frontend", daemon=True)
        self._thread.start()
        self._run(self.frontend.start())
        return self

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the front end (see :meth:`FrontEnd.stop`) and its thread."""
        if self._loop is None or self._thread is None:
            return
        self._run(self.frontend.stop(grace_s))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self._loop.close()
        self._loop = self._thread = None

    def set_routes(self, routes: Mapping[str, ServiceRoute]) -> None:
        """:meth:`FrontEnd.set_routes`, on the front end's loop."""
        self.call(self.frontend.set_routes, dict(routes))

    def in_flight(self, replica_id: str) -> int:
        """:meth:`FrontEnd.in_flight`, on the front end's loop."""
        return self.call(self.frontend.in_flight, replica_id)

    def load(self, service: str) -> LoadSample:
        """:meth:`FrontEnd.load`, on the front end's loop."""
        return self.call(self.frontend.load, service)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the front end's loop and return its result."""

        async def invoke() -> T:
            return function(*args)

        return self._run(invoke())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("BackgroundFrontEnd is not started")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT_S)

    def __enter__(self) -> BackgroundFrontEnd:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
