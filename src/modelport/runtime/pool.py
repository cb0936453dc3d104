"""The worker processes behind the front process: start, dispatch, hand over, time out, replace.

Each worker has three links to the front process: a Unix socket pair for messages, a second pair
that carries client connections handed over to it (``SCM_RIGHTS``), and a shared-memory
:class:`~modelport.runtime.slot.Slot`. Connections handed over are served by the worker itself;
we keep a copy of each. Requests from connections the front process serves travel as messages:
FIFO order when every worker is busy (as requests wait in the listen backlog of the reference
server), each worker getting the next one ahead of time (``PIPELINE_DEPTH``).

Failures: a worker that exits in the middle of a request has that request answered with a 502
JSON (on our copy of the connection when it was handed over) and is replaced; its idle handed-over
connections are taken back. A worker still inside ``run()`` past the hard deadline (scoring
timeout plus a grace period, or ``WORKER_TIMEOUT``) is killed and its request answered with the
timeout message. A worker that exits before it finished ``init()`` is fatal: the whole server
stops with its exit status. A worker the kernel's OOM killer took (``oom.py``) is not replaced:
its request gets the out-of-memory answer and the server drains and exits with
``oom.EXIT_STATUS``, so that the cluster sees the replica ran out of memory and restarts it.

Graceful stop: :meth:`WorkerPool.drain` replaces no worker any more and sends each ready worker
SIGTERM, on which it closes its idle connections and closes the others once answered (the same
happens when the SIGTERM reaches the whole process group); :meth:`WorkerPool.stop` then closes the
channels of idle workers, which exit, and kills those still busy at the end of the grace period,
answering their requests with a 503 JSON instead of the 502 of a crash.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.runtime import wire
from modelport.runtime.config import ServeConfig
from modelport.runtime.http_server import Request, serialize
from modelport.runtime.listen import has_unread_input
from modelport.runtime.metrics import ServerMetrics, forget_process
from modelport.runtime.oom import EXIT_STATUS, MemoryCgroup, killed_for_memory, out_of_memory_reply
from modelport.runtime.scoring import SHUTTING_DOWN_MESSAGE, Reply, error_reply, timeout_message
from modelport.runtime.slot import Slot

log = logging.getLogger("modelport.runtime.pool")

# How long past the scoring timeout a worker may take to report its own SIGALRM timeout before
# the pool kills it; covers run() code that blocks in C or swallows the timeout exception.
TIMEOUT_GRACE_S = 2.0
STOP_GRACE_S = 5.0
# Jobs sent to one worker ahead of its reply when every worker is busy: the worker finds its next
# request already in its socket when run() returns, which saves two context switches per request.
PIPELINE_DEPTH = 2
WATCH_INTERVAL_S = 0.1
CONNECTION_ID = struct.Struct("<q")


def _crash_reply(code: int) -> Reply:
    return error_reply(
        502,
        f"The scoring worker exited while handling the request (exit code {code}); it is being replaced. "
        "Check the logs for more info.",
        run_failed=True,
    )


def shutdown_reply(graceful_timeout_s: int) -> Reply:
    """The answer to a request still running when the graceful stop ran out of time.

    503 without the run-failed flag: run() did not fail, the server stopped it (a front end passes
    it on as 503, not as the 502 of a failed run()).
    """
    return error_reply(
        503,
        f"The server is shutting down and the request did not finish within the graceful timeout of "
        f"{graceful_timeout_s} s (--graceful_timeout / MODELPORT_GRACEFUL_TIMEOUT); it was stopped. "
        "Retry it.",
    )


def _answer_and_close(connection: socket.socket, reply: Reply) -> None:
    """Answer on a handed-over connection ourselves (the worker failed), then close our copy."""
    status, headers, body, failed, _run_ms = reply
    headers = [*headers, ("x-ms-run-function-failed", "True" if failed else "False")]
    try:
        connection.send(serialize(status, headers, body, keep_alive=False))
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client has gone; nothing to answer
    connection.close()


@dataclass
class _Job:
    frame: bytes
    future: asyncio.Future[Reply]


Overdue = tuple[int, int]  # (connection, run() start) of a worker found past its deadline


@dataclass(eq=False)
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    handover: socket.socket  # our end of the pair that carries client connections (SCM_RIGHTS)
    shared: Slot
    transport: asyncio.Transport | None = None
    ready: bool = False
    doomed: bool = False  # being killed: no new work
    lost: bool = False  # its channel has closed (it exited, or is exiting)
    jobs: collections.deque[_Job] = field(default_factory=collections.deque)
    deadline: asyncio.TimerHandle | None = None
    buffer: bytearray = field(default_factory=bytearray)
    # Connections handed over to this worker: our copy of each, to answer on if the worker fails.
    connections: dict[int, socket.socket] = field(default_factory=dict)
    answered: set[int] = field(default_factory=set)
    overrun_seen: Overdue | None = None  # found overdue at the last look, to be confirmed


def overrun(
    seen: Overdue | None, busy: int, started: int, now_ns: int, limit_ns: float
) -> tuple[bool, Overdue | None]:
    """Whether a worker's ``run()`` on connection ``busy`` (started at ``started``) is past the limit,
    confirmed: the same ``(busy, started)`` was already overdue at the previous look (``seen``);
    and what to pass as ``seen`` next time.

    The worker writes its slot while the front process reads it; a read that raced a write (a new
    connection with the previous start time, say) would look like a run() started long ago, and
    killing the worker for it fails a request that was fine. Such a read is never seen twice.
    """
    if not busy or not started or now_ns - started <= limit_ns:
        return False, None
    return seen == (busy, started), (busy, started)


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
    """``config.worker_count`` worker processes and the queue of requests waiting for one.

    ``on_fatal(status, drain)`` stops the server with exit ``status``, draining first or not;
    ``memory`` is the replica's memory cgroup (``MemoryCgroup.find()``, None outside one).
    """

    def __init__(
        self,
        config: ServeConfig,
        metrics: ServerMetrics,
        on_fatal: Callable[[int, bool], None],
        memory: MemoryCgroup | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.on_fatal = on_fatal
        self.memory = memory
        self._oom_kills = memory.oom_kills() if memory is not None else None
        self.style: str | None = None
        self.documents: dict[str, str] = {}
        # Resolved when the first worker finished init(); GET / waits on it.
        self.first_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._workers: list[_Worker | None] = [None] * config.worker_count
        self._idle: collections.deque[_Worker] = collections.deque()  # ready, no job
        self._spare: collections.deque[_Worker] = collections.deque()  # ready, fewer than PIPELINE_DEPTH jobs
        self._waiting: collections.deque[_Job] = collections.deque()
        self._stopping = False  # no worker is replaced any more
        self._closed = False  # stop() has run: workers still there are being killed
        self.draining = False
        self._exits: set[asyncio.Task[None]] = set()
        self._connection_ids = 0
        # Takes back connections of a worker that exited (the acceptor sets it); default: close.
        self.adopt: Callable[[socket.socket], None] = socket.socket.close
        self._deadline_s = min(config.scoring_timeout_ms / 1000.0 + TIMEOUT_GRACE_S, config.worker_timeout_s)

    @property
    def ready_count(self) -> int:
        """How many workers have returned from ``init()`` and are alive."""
        return sum(1 for w in self._workers if w is not None and w.ready)

    async def start(self) -> None:
        """Start every worker; they become ready on their own as their ``init()`` returns."""
        for index in range(self.config.worker_count):
            await self._spawn(index)
        self._watch()

    async def _spawn(self, index: int) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        handover, child_handover = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        shared = Slot.create()
        inherited = [child.fileno(), child_handover.fileno(), shared.fd]
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelport.runtime.worker", *map(str, inherited)],
                pass_fds=inherited,
                env=self.config.worker_env,
            )
        finally:
            child.close()
            child_handover.close()
        handover.setblocking(False)
        worker = _Worker(index=index, process=process, handover=handover, shared=shared)
        shared.set_ready_workers(self.ready_count)
        self._workers[index] = worker
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_unix_connection(lambda: _Channel(self, worker), sock=parent)
        worker.transport = transport
        log.info("Started worker %d (pid %d)", index, process.pid)

    def score(self, request: Request, responder: object) -> asyncio.Future[Reply]:
        """Queue one request for a worker; the future resolves with the worker's (or the pool's) reply."""
        frame = wire.encode((request.method, request.path, request.query, request.headers, request.body))
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Job(frame, future))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        # Idle workers first, so that a request goes behind another one only when all are busy.
        while self._waiting and (self._idle or self._spare):
            self._refill(self._idle.popleft() if self._idle else self._spare.popleft())

    def _refill(self, worker: _Worker) -> None:
        """Send waiting jobs to an unlisted ready worker up to the pipeline depth, then list it."""
        assert worker.transport is not None
        if worker.doomed:
            return
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
            self._publish_ready()
            log.info("Worker %d (pid %d) finished init()", worker.index, pid)
            if not self.first_ready.done():
                self.first_ready.set_result(None)
            self._refill(worker)
        elif kind == wire.CLOSED:
            connection = worker.connections.pop(message[1], None)
            if connection is not None:
                connection.close()
        elif kind == wire.REPLY and worker.jobs:
            job = worker.jobs.popleft()
            self._unlist(worker)
            if worker.jobs:
                self._arm(worker)
            else:
                self._disarm(worker)
            self._refill(worker)
            job.future.set_result(message[1:])

    def _on_deadline(self, worker: _Worker) -> None:
        worker.deadline = None
        log.error(
            "Worker %d (pid %d) did not answer within %.1f s; killing and replacing it",
            worker.index,
            worker.process.pid,
            self._deadline_s,
        )
        job = worker.jobs.popleft()
        job.future.set_result(self._timeout_reply())
        self._doom(worker)

    def _on_lost(self, worker: _Worker) -> None:
        worker.lost = True
        self._unlist(worker)
        self._disarm(worker)
        running = worker.jobs.popleft() if worker.jobs else None
        self._requeue_unstarted(worker)
        was_ready, worker.ready = worker.ready, False
        self._publish_ready()
        self._dispatch()
        task = asyncio.get_running_loop().create_task(self._after_exit(worker, running, was_ready))
        self._exits.add(task)
        task.add_done_callback(self._exits.discard)

    async def _after_exit(self, worker: _Worker, job: _Job | None, was_ready: bool) -> None:
        code = await asyncio.get_running_loop().run_in_executor(None, worker.process.wait)
        forget_process(worker.process.pid)
        busy, _started = worker.shared.busy()
        # Killed by stop() at the end of the grace period, by the OOM killer, or crashed on its own.
        stopped = self._closed
        out_of_memory = not stopped and was_ready and self._killed_for_memory(code)
        if stopped:
            reply = shutdown_reply(self.config.graceful_timeout_s)
        elif out_of_memory and self.memory is not None:
            reply = out_of_memory_reply(self.memory.limit_bytes)
        else:
            reply = _crash_reply(code)
        for connection_id, connection in worker.connections.items():
            if connection_id in worker.answered:
                connection.close()
            elif connection_id == busy or (stopped and has_unread_input(connection)):
                _answer_and_close(connection, reply)
            elif stopped:
                connection.close()
            else:
                # Idle keep-alive connections outlive their worker: served anew, as if just accepted.
                self.adopt(connection)
        worker.connections.clear()
        worker.handover.close()
        worker.shared.close()
        if job is not None:
            job.future.set_result(reply)
        if self._stopping:
            self._refuse_without_workers()
            return
        if not was_ready:
            log.error(
                "Worker %d (pid %d) exited with code %d before init() finished",
                worker.index,
                worker.process.pid,
                code,
            )
            self.on_fatal(code if code > 0 else 3, False)
            return
        if out_of_memory:
            log.error(
                "Worker %d (pid %d) was killed by the kernel's OOM killer (the replica's memory "
                "limit is %.0f MiB); stopping so that the replica is restarted and reported out of memory",
                worker.index,
                worker.process.pid,
                (self.memory.limit_bytes if self.memory else 0) / 2**20,
            )
            self.on_fatal(EXIT_STATUS, True)
            return
        log.error(
            "Worker %d (pid %d) exited with code %d; starting a replacement",
            worker.index,
            worker.process.pid,
            code,
        )
        self.metrics.worker_restarts.inc()
        await self._spawn(worker.index)

    def _killed_for_memory(self, code: int) -> bool:
        if self.memory is None:
            return False
        before, self._oom_kills = self._oom_kills, self.memory.oom_kills()
        return killed_for_memory(code, before, self._oom_kills)

    def hand_over(self, connection: socket.socket) -> bool:
        """Give a client connection to the ready worker serving the fewest; False if none can take it.

        The worker then reads and answers that connection itself; we keep a copy of the socket to
        answer on it if the worker dies or overruns the deadline in the middle of a request.
        """
        ready = [w for w in self._workers if w is not None and w.ready and not w.doomed]
        if not ready:
            return False
        worker = min(ready, key=lambda w: len(w.connections))
        self._connection_ids += 1
        connection_id = self._connection_ids
        try:
            socket.send_fds(worker.handover, [CONNECTION_ID.pack(connection_id)], [connection.fileno()])
        except OSError:
            return False
        worker.connections[connection_id] = connection
        return True

    def _doom(self, worker: _Worker) -> None:
        # No new work from now on; jobs it had not started go to the others.
        worker.doomed = True
        self._unlist(worker)
        self._requeue_unstarted(worker)
        worker.process.kill()
        self._dispatch()

    def _publish_ready(self) -> None:
        count = self.ready_count
        self.metrics.workers_ready.set(count)
        for worker in self._workers:
            if worker is not None and worker.process.poll() is None:
                worker.shared.set_ready_workers(count)

    def _watch(self) -> None:
        # run() on a handed-over connection is invisible to the job queue; its start time is in
        # the worker's slot, so a periodic look finds the ones past the deadline.
        now = time.monotonic_ns()
        for worker in self._workers:
            if worker is None or not worker.connections:
                continue
            busy, started = worker.shared.busy()
            confirmed, worker.overrun_seen = overrun(
                worker.overrun_seen, busy, started, now, self._deadline_s * 1e9
            )
            overdue = confirmed and busy not in worker.answered
            connection = worker.connections.get(busy) if overdue else None
            if connection is not None:
                log.error(
                    "Worker %d (pid %d) did not finish run() within %.1f s; killing and replacing it",
                    worker.index,
                    worker.process.pid,
                    self._deadline_s,
                )
                worker.answered.add(busy)
                _answer_and_close(connection, self._timeout_reply())
                self._doom(worker)
        if not self._closed:
            asyncio.get_running_loop().call_later(WATCH_INTERVAL_S, self._watch)

    def _timeout_reply(self) -> Reply:
        message = timeout_message(min(self.config.scoring_timeout_ms, int(self._deadline_s * 1000)))
        return error_reply(500, message, run_failed=True)

    def drain(self) -> None:
        """Begin a graceful stop: replace no worker any more and tell each ready worker to drain.

        A worker still in ``init()`` has no request and is stopped. Requests waiting for a worker
        keep waiting while one is left; ``GET /`` waiters wake up (and find the server draining).
        """
        self._stopping = True
        self.draining = True
        for worker in self._live():
            if worker.ready:
                worker.shared.set_draining()  # read when a run() in progress returns
                worker.process.send_signal(signal.SIGTERM)  # wakes an idle worker
            else:
                self._doom(worker)
        if not self.first_ready.done():
            self.first_ready.set_result(None)
        self._refuse_without_workers()

    @property
    def idle(self) -> bool:
        """No request waits, runs, or is being answered on a connection handed to a worker."""
        return not self._waiting and not any(w.jobs or w.connections for w in self._workers if w is not None)

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers if w is not None and w.process.poll() is None]

    def _refuse_without_workers(self) -> None:
        # While stopping, a request nobody can take any more is answered now, not at the deadline.
        if any(w.ready and not w.doomed for w in self._live()):
            return
        reply = error_reply(503, SHUTTING_DOWN_MESSAGE)
        while self._waiting:
            self._waiting.popleft().future.set_result(reply)

    async def stop(self) -> None:
        """Stop every worker and wait for them to exit.

        An idle ready worker exits by itself when its channel closes; one still busy (the grace
        period ran out) or still in ``init()`` is killed, and the requests it had not answered get
        :func:`shutdown_reply`. A worker that does not exit within ``STOP_GRACE_S`` is killed.
        """
        self._stopping = self._closed = True
        for worker in self._live():
            if not worker.ready or worker.jobs or worker.connections:
                worker.doomed = True
                worker.process.kill()
            elif worker.transport is not None:
                worker.transport.close()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in [w for w in self._workers if w is not None]:
            # Its channel is read to the end (the last replies and CLOSED messages) before the
            # requests it left are answered.
            while not worker.lost and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if worker.process.poll() is None:
                worker.process.kill()
            if worker.transport is not None:
                worker.transport.close()
        await asyncio.sleep(0)  # connection_lost of the channels closed just now starts their exits
        await asyncio.gather(*self._exits)
        self._refuse_without_workers()
