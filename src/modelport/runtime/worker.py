"""A worker process: imports the entry script, runs ``init()`` once, then answers scoring requests.

Started by the front process as ``python -m modelport.runtime.worker <channel> <handover> <slot>``
(inherited file descriptors): ``channel`` carries request frames from connections the front
process keeps, and the worker's messages back; ``handover`` brings client connections (with
``SCM_RIGHTS``) that the worker then serves itself, HTTP included, with the same application as
the front process; ``slot`` is the shared memory of :mod:`modelport.runtime.slot`. Settings arrive
as environment variables resolved by the front process.

Everything runs on one event loop in the main thread: one ``run()`` at a time, and ``SIGALRM`` can
interrupt a ``run()`` that exceeds the scoring timeout. Exit status 3 (as Azure ML's server) when
the script cannot be loaded or ``init()`` raises; the traceback goes to the log first.

SIGTERM does not stop a worker, wherever it comes from (the front process, or a ``kill`` of the
whole process group): it drains, answering ``/health/ready`` with 503, closing its idle
connections and closing the others once their requests are answered. It exits when the front
process closes its channel, so the front process alone decides when the requests in flight have
had their time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import uvloop

from modelport.runtime import logs, wire
from modelport.runtime.app import ScoringApp
from modelport.runtime.config import ServeConfig, ServeFlags, WorkerSettings, load_config
from modelport.runtime.entry_script import load_entry_script
from modelport.runtime.http_server import ConnectionSet, HttpProtocol, Request, Responder
from modelport.runtime.metrics import ServerMetrics
from modelport.runtime.scoring import Reply, Scorer
from modelport.runtime.slot import Slot
from modelport.runtime.swagger import build_documents

log = logging.getLogger("modelport.runtime.worker")

EXIT_BOOT_FAILED = 3
SHIMS_DIR = Path(__file__).with_name("shims")
CONNECTION_ID = struct.Struct("<q")


def _prepare_sys_path(settings: WorkerSettings) -> None:
    # The Azure import paths (azureml.core.model, azureml.contrib.services, ...) resolve to our
    # shims in workers only; they are never visible to ordinary users of the modelport package.
    sys.path.insert(0, str(SHIMS_DIR))
    for extra in (settings.app_root, settings.source_directory):
        if extra is not None and str(extra) not in sys.path:
            sys.path.append(str(extra))


class InPlaceBackend:
    """The :class:`~modelport.runtime.app.Backend` of a worker: ``run()`` is called right here."""

    def __init__(
        self,
        scorer: Scorer,
        style: str,
        documents: dict[str, str],
        slot: Slot,
        drain: Callable[[], None],
    ) -> None:
        self.scorer = scorer
        self.drain = drain
        self.style: str | None = style
        self.documents = documents
        self.slot = slot
        self.draining = False
        self.first_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_ready.set_result(None)

    @property
    def ready_count(self) -> int:
        """Ready workers, as the front process last published."""
        return self.slot.ready_workers

    def score(self, request: Request, responder: Responder) -> asyncio.Future[Reply]:
        """Call ``run()`` now; the slot tells the front process which connection waits on it."""
        self.slot.begin(responder.connection_id)
        try:
            reply = self.scorer.handle(
                request.method, request.path, request.query, request.headers, request.body
            )
        finally:
            self.slot.end()
        if self.slot.draining and not self.draining:
            self.drain()  # before the answer is written, so that it says "Connection: close"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        future.set_result(reply)
        return future


class _FrontChannel(asyncio.Protocol):
    """Request frames from the front process in, replies out; EOF means the front has gone."""

    def __init__(self, scorer: Scorer, closed: asyncio.Future[None]) -> None:
        self.scorer = scorer
        self.closed = closed
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= wire.HEADER_SIZE and self.transport is not None:
            end = wire.HEADER_SIZE + wire.frame_length(bytes(buffer[: wire.HEADER_SIZE]))
            if len(buffer) < end:
                return
            method, path, query, headers, body = wire.decode(bytes(buffer[wire.HEADER_SIZE : end]))
            del buffer[:end]
            reply = self.scorer.handle(method, path, query, headers, body)
            self.transport.write(wire.encode((wire.REPLY, *reply)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ShutdownRequest:
    """Remembers a SIGTERM that arrives before the event loop runs (during ``init()``)."""

    def __init__(self) -> None:
        self.requested = False

    def note(self, _signum: int, _frame: object) -> None:
        """Signal handler: note the request, and go on (a worker never dies of SIGTERM)."""
        self.requested = True


def serve(
    channel: socket.socket,
    handover: socket.socket,
    slot: Slot,
    settings: WorkerSettings,
    shutdown: ShutdownRequest,
) -> int:
    """Load the script, run ``init()``, announce readiness, then serve until the front process goes."""
    _prepare_sys_path(settings)
    try:
        script = load_entry_script(settings.entry_script)
    except BaseException:
        log.exception("Failed to load the entry script %s", settings.entry_script or "main.py")
        return EXIT_BOOT_FAILED
    try:
        script.init()
    except BaseException:
        log.exception("User's init function failed")
        _log_model_dir()
        return EXIT_BOOT_FAILED
    documents = build_documents(script.run, settings.identity, settings.app_root)
    scorer = Scorer(script, timeout_ms=settings.scoring_timeout_ms, numpy_json=settings.numpy_json)
    config = load_config(ServeFlags(), os.environ)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(channel, handover, slot, scorer, script.style.value, documents, config, shutdown))
    return 0


async def _serve(
    channel: socket.socket,
    handover: socket.socket,
    slot: Slot,
    scorer: Scorer,
    style: str,
    documents: dict[str, str],
    config: ServeConfig,
    shutdown: ShutdownRequest,
) -> None:
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_unix_connection(lambda: _FrontChannel(scorer, closed), sock=channel)
    connections = ConnectionSet()
    starting: set[asyncio.Task[Any]] = set()

    def drain() -> None:
        if not backend.draining:
            log.info("Worker with pid %d draining: finishing its requests in flight", os.getpid())
        backend.draining = True
        connections.drain()

    backend = InPlaceBackend(scorer, style, documents, slot, drain)
    app = ScoringApp(config, backend, ServerMetrics())

    def take_connection() -> None:
        try:
            message, fds, _flags, _address = socket.recv_fds(handover, CONNECTION_ID.size, 1)
        except BlockingIOError:
            return
        if not message:
            loop.remove_reader(handover.fileno())
            return
        connection_id = CONNECTION_ID.unpack(message)[0]

        def lost() -> None:
            if not transport.is_closing():
                transport.write(wire.encode((wire.CLOSED, connection_id)))

        def protocol() -> HttpProtocol:
            return connections.add(HttpProtocol(app, config.max_request_bytes, connection_id, lost))

        client = socket.socket(fileno=fds[0])
        task = loop.create_task(loop.connect_accepted_socket(protocol, client))
        starting.add(task)
        task.add_done_callback(starting.discard)

    handover.setblocking(False)
    loop.add_reader(handover.fileno(), take_connection)
    loop.add_signal_handler(signal.SIGTERM, drain)
    if shutdown.requested:
        drain()
    transport.write(wire.encode((wire.READY, os.getpid(), style, documents)))
    log.info("Worker with pid %d ready for serving traffic", os.getpid())
    await closed


def _log_model_dir() -> None:
    # The usual cause of an init() failure is a model path guess that does not match the layout.
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir or not os.path.isdir(model_dir):
        log.error("AZUREML_MODEL_DIR=%r is not a folder", model_dir)
        return
    lines = []
    for root, _dirs, files in os.walk(model_dir):
        lines.append(root)
        lines.extend(f"  {name}" for name in files)
        if len(lines) > 200:
            break
    log.error("Contents of AZUREML_MODEL_DIR (first 200 lines):\n%s", "\n".join(lines[:200]))


def main(argv: list[str]) -> int:
    """Entry point of a worker process: ``argv[1:4]`` are the inherited descriptors."""
    # Ctrl-C in a terminal, and a kill of the process group, reach every worker too; the front
    # process decides when workers stop (see the module's docstring).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shutdown = ShutdownRequest()
    signal.signal(signal.SIGTERM, shutdown.note)
    settings = WorkerSettings.from_environ(os.environ)
    logs.configure(settings.log_level)
    channel = socket.socket(fileno=int(argv[1]))
    handover = socket.socket(fileno=int(argv[2]))
    slot = Slot(int(argv[3]))
    try:
        return serve(channel, handover, slot, settings, shutdown)
    finally:
        channel.close()
        handover.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
