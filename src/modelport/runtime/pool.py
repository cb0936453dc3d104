"""The worker processes behind the front process: start, dispatch, time out, replace.

Each worker owns one end of a Unix socket pair; the pool writes a request frame to an idle worker
and resolves the request's future with the worker's reply. Requests wait in FIFO order when every
worker is busy (as requests wait in the listen backlog of the reference server). A worker that
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
    job: _Job | None = None
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
        self.first_ready: asyncio.Future[None] | None = None
        self._workers: list[_Worker | None] = [None] * config.worker_count
        self._idle: collections.deque[_Worker] = collections.deque()
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

    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.process.pid for w in self._workers if w is not None]

    async def start(self) -> None:
        """Start every worker; they become ready on their own as their ``init()`` returns."""
        self.first_ready = asyncio.get_running_loop().create_future()
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
        job = _Job(frame, future)
        if self._idle:
            self._dispatch(self._idle.popleft(), job)
        else:
            self._waiting.append(job)
        return future

    def _dispatch(self, worker: _Worker, job: _Job) -> None:
        assert worker.transport is not None
        worker.job = job
        worker.transport.write(job.frame)
        worker.deadline = asyncio.get_running_loop().call_later(self._deadline_s, self._on_deadline, worker)

    def _release(self, worker: _Worker) -> None:
        worker.job = None
        if worker.deadline is not None:
            worker.deadline.cancel()
            worker.deadline = None
        while self._waiting:
            job = self._waiting.popleft()
            if not job.future.cancelled():
                self._dispatch(worker, job)
                return
        self._idle.append(worker)

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == wire.READY:
            _, pid, style, documents = message
            worker.ready = True
            self.style, self.documents = style, documents
            self.metrics.workers_ready.set(self.ready_count)
            log.info("Worker %d (pid %d) finished init()", worker.slot, pid)
            if self.first_ready is not None and not self.first_ready.done():
                self.first_ready.set_result(None)
            self._release(worker)
        elif kind == wire.REPLY and worker.job is not None:
            job = worker.job
            self._release(worker)
            if not job.future.done():
                job.future.set_result(message[1:])  # type: ignore[arg-type]

    def _on_deadline(self, worker: _Worker) -> None:
        job, worker.job, worker.deadline = worker.job, None, None
        log.error(
            "Worker %d (pid %d) did not answer within %.1f s; killing and replacing it",
            worker.slot,
            worker.process.pid,
            self._deadline_s,
        )
        if job is not None and not job.future.done():
            message = timeout_message(min(self.config.scoring_timeout_ms, int(self._deadline_s * 1000)))
            job.future.set_result(error_reply(500, message, run_failed=True))
        worker.process.kill()

    def _on_lost(self, worker: _Worker) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
        if worker.deadline is not None:
            worker.deadline.cancel()
        job, worker.job = worker.job, None
        was_ready, worker.ready = worker.ready, False
        self.metrics.workers_ready.set(self.ready_count)
        asyncio.get_running_loop().create_task(self._after_exit(worker, job, was_ready))

    async def _after_exit(self, worker: _Worker, job: _Job | None, was_ready: bool) -> None:
        code = await asyncio.get_running_loop().run_in_executor(None, worker.process.wait)
        if job is not None and not job.future.done():
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
            if not job.future.done():
                job.future.set_result(error_reply(503, "The server is shutting down."))
        self._waiting.clear()
