"""The worker processes behind the front process: start, dispatch, time out, replace.

Each worker owns one end of a Unix socket pair; the pool writes a request frame to an idle worker
and resolves the request's future with the worker's reply. Requests wait in FIFO order when every
worker is busy (as requests wait in the listen backlog of the reference server); then each worker
also gets the next request ahead of time (``PIPELINE_DEPTH``). A worker that
exits while handling a request turns that request into a 502 JSON answer and is replaced; a
worker that stays silent past the hard deadline (scoring timeout plus a grace period, or
``WORKER_TIMEOUT``) is killed, its request answered with the timeout message, and replaced. A
worker that exits before it finished ``init()`` is fatal: the whole server stops with its code.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.runtime import wire
from modelport.runtime.config import ServeConfig
from modelport.runtime.metrics import ServerMetrics
from modelport.runtime.scoring import Reply, error_reply, timeout_message

log = logging.getLogger("modelport.runtime.pool")

# How long past the scoring timeout a worker may take to report its own SIGALRM timeout before
# the pool kills it; covers run() code that blocks in C or swallows the timeout exception.
TIMEOUT_GRACE_S = 2.0
STOP_GRACE_S = 5.0
# Jobs sent to one worker ahead of its reply when every worker is busy: the worker finds its next
# request already in its socket when run() returns, which saves two context switches per request.
PIPELINE_DEPTH = 2


@dataclass
class _Job:
    frame: bytes
    future: asyncio.Future[Reply]


@dataclass(eq=False)
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    transport: asyncio.Transport | None = None
    ready: bool = False
    jobs: collections.deque[_Job] = field(default_factory=collections.deque)
    deadline: asyncio.TimerHandle | None = None
    buffer: bytearray = field(default_factory=bytearray)


class _Channel(asyncio.Protocol):
    """Reads frames from one worker and hands complete messages to the pool."""

    def __init__(self, pool: WorkerPool, worker: _Worker) -> None:
        self.pool = pool
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        buffer = self.worker.buffer
        buffer += data
        while len(buffer) >= wire.HEADER_SIZE:
            end = wire.HEADER_SIZE + wire.frame_length(bytes(buffer[: wire.HEADER_SIZE]))
            if len(buffer) < end:
                return
            message = wire.decode(bytes(buffer[wire.HEADER_SIZE : end]))
            del buffer[:end]
            self.pool._on_message(self.worker, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool._on_lost(self.worker)


class WorkerPool:
    """``config.worker_count`` worker processes and the queue of requests waiting for one."""

    def __init__(self, config: ServeConfig, metrics: ServerMetrics, on_fatal: Callable[[int], None]) -> None:
        self.config = config
        self.metrics = metrics
        self.on_fatal = on_fatal
        self.style: str | None = None
        self.documents: dict[str, str] = {}
        # Resolved when the first worker finished init(); GET / waits on it.
        self.first_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._workers: list[_Worker | None] = [None] * config.worker_count
        self._idle: collections.deque[_Worker] = collections.deque()  # ready, no job
        self._spare: collections.deque[_Worker] = collections.deque()  # ready, fewer than PIPELINE_DEPTH jobs
        self._waiting: collections.deque[_Job] = collections.deque()
        self._stopping = False
        self._deadline_s = min(config.scoring_timeout_ms / 1000.0 + TIMEOUT_GRACE_S, config.worker_timeout_s)

    @property
    def ready_count(self) -> int:
        """How many workers have returned from ``init()`` and are alive."""
        return sum(1 for w in self._workers if w is not None and w.ready)

    @property
    def all_ready(self) -> bool:
        """Whether every worker slot holds a worker that finished ``init()``."""
        return self.ready_count == self.config.worker_count

    async def start(self) -> None:
        """Start every worker; they become ready on their own as their ``init()`` returns."""
        for slot in range(self.config.worker_count):
            await self._spawn(slot)

    async def _spawn(self, slot: int) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelport.runtime.worker", str(child.fileno())],
                pass_fds=[child.fileno()],
                env=self.config.worker_env,
            )
        finally:
            child.close()
        worker = _Worker(slot=slot, process=process)
        self._workers[slot] = worker
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_unix_connection(lambda: _Channel(self, worker), sock=parent)
        worker.transport = transport
        log.info("Started worker %d (pid %d)", slot, process.pid)

    def submit(self, frame: bytes) -> asyncio.Future[Reply]:
        """Queue one encoded request; the future resolves with the worker's (or the pool's) reply."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Job(frame, future))
        self._drain()
        return future

    def _drain(self) -> None:
        # Idle workers first, so that a request goes behind another one only when all are busy.
        while self._waiting and (self._idle or self._spare):
            self._refill(self._idle.popleft() if self._idle else self._spare.popleft())

    def _refill(self, worker: _Worker) -> None:
        """Send waiting jobs to an unlisted ready worker up to the pipeline depth, then list it."""
        assert worker.transport is not None
        while self._waiting and len(worker.jobs) < PIPELINE_DEPTH:
            job = self._waiting.popleft()
            worker.jobs.append(job)
            worker.transport.write(job.frame)
            if len(worker.jobs) == 1:
                self._arm(worker)
        if not worker.jobs:
            self._idle.append(worker)
        elif len(worker.jobs) < PIPELINE_DEPTH:
            self._spare.append(worker)

    def _unlist(self, worker: _Worker) -> None:
        for listing in (self._idle, self._spare):
            if worker in listing:
                listing.remove(worker)

    def _arm(self, worker: _Worker) -> None:
        # The deadline covers the job at the head, the one the worker is running.
        self._disarm(worker)
        worker.deadline = asyncio.get_running_loop().call_later(self._deadline_s, self._on_deadline, worker)

    def _disarm(self, worker: _Worker) -> None:
        if worker.deadline is not None:
            worker.deadline.cancel()
            worker.deadline = None

    def _requeue_unstarted(self, worker: _Worker) -> None:
        # Jobs behind the head were never read by the worker: they go first to another worker.
        self._waiting.extendleft(reversed(worker.jobs))
        worker.jobs.clear()

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == wire.READY:
            _, pid, style, documents = message
            worker.ready = True
            self.style, self.documents = style, documents
            self.metrics.workers_ready.set(self.ready_count)
            log.info("Worker %d (pid %d) finished init()", worker.slot, pid)
            if not self.first_ready.done():
                self.first_ready.set_result(None)
            self._refill(worker)
        elif kind == wire.REPLY and worker.jobs:
            job = worker.jobs.popleft()
            self._unlist(worker)
            if worker.jobs:
                self._arm(worker)
            else:
                self._disarm(worker)
            self._refill(worker)
            job.future.set_result(message[1:])  # type: ignore[arg-type]

    def _on_deadline(self, worker: _Worker) -> None:
        worker.deadline = None
        log.error(
            "Worker %d (pid %d) did not answer within %.1f s; killing and replacing it",
            worker.slot,
            worker.process.pid,
            self._deadline_s,
        )
        self._unlist(worker)
        job = worker.jobs.popleft()
        self._requeue_unstarted(worker)
        message = timeout_message(min(self.config.scoring_timeout_ms, int(self._deadline_s * 1000)))
        job.future.set_result(error_reply(500, message, run_failed=True))
        worker.process.kill()
        self._drain()

    def _on_lost(self, worker: _Worker) -> None:
        self._unlist(worker)
        self._disarm(worker)
        running = worker.jobs.popleft() if worker.jobs else None
        self._requeue_unstarted(worker)
        was_ready, worker.ready = worker.ready, False
        self.metrics.workers_ready.set(self.ready_count)
        self._drain()
        asyncio.get_running_loop().create_task(self._after_exit(worker, running, was_ready))

    async def _after_exit(self, worker: _Worker, job: _Job | None, was_ready: bool) -> None:
        code = await asyncio.get_running_loop().run_in_executor(None, worker.process.wait)
        if job is not None:
            job.future.set_result(
                error_reply(
                    502,
                    f"The scoring worker exited while handling the request (exit code {code}); "
                    "it is being replaced. Check the logs for more info.",
                    run_failed=True,
                )
            )
        if self._stopping:
            return
        if not was_ready:
            log.error(
                "Worker %d (pid %d) exited with code %d before init() finished",
                worker.slot,
                worker.process.pid,
                code,
            )
            self.on_fatal(code if code > 0 else 3)
            return
        log.error(
            "Worker %d (pid %d) exited with code %d; starting a replacement",
            worker.slot,
            worker.process.pid,
            code,
        )
        self.metrics.worker_restarts.inc()
        await self._spawn(worker.slot)

    async def stop(self) -> None:
        """Terminate every worker (SIGTERM, then SIGKILL after a grace period)."""
        self._stopping = True
        processes = [w.process for w in self._workers if w is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process.poll() is None:
                process.kill()
                process.wait()
        for worker in self._workers:
            if worker is not None and worker.transport is not None:
                worker.transport.close()
        for job in self._waiting:
            job.future.set_result(error_reply(503, "The server is shutting down."))
        self._waiting.clear()
