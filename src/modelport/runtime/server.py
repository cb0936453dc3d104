"""The front process of ``modelport serve``: listening sockets, the worker pool, shutdown.

It binds the port before the workers start, so that requests sent during a slow ``init()`` wait
instead of being refused (as with the reference server), then starts the workers. Returns the
process exit status: 0 after SIGTERM/SIGINT, the failing worker's status (3 for a failed
``init()``) when a worker cannot boot.

SIGTERM or SIGINT starts a graceful stop (a drain): ``/health/ready`` answers 503 at once, the
scoring port stops accepting (a separate health port keeps answering, so probes see the 503),
idle keep-alive connections are closed, and the requests in flight get up to
``--graceful_timeout`` seconds to finish, each answered with ``Connection: close``; requests still
running then get a 503 JSON. Workers do not stop on the SIGTERM that a process-group ``kill`` or a
terminal's Ctrl-C also sends them: they drain, and exit when the front process lets them go.
A second SIGINT (Ctrl-C again) cuts the grace period short; a repeated SIGTERM does not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import NoReturn

import uvloop

from modelport.errors import ModelportError
from modelport.runtime import lifeline, logs
from modelport.runtime.acceptor import Acceptor
from modelport.runtime.app import ScoringApp
from modelport.runtime.config import ServeConfig, ServeFlags, load_config
from modelport.runtime.http_server import ConnectionSet, protocol_factory
from modelport.runtime.listen import bind, bind_unix, remove_unix_socket
from modelport.runtime.metrics import MULTIPROC_VARIABLE, ServerMetrics
from modelport.runtime.oom import MemoryCgroup
from modelport.runtime.pool import WorkerPool

log = logging.getLogger("modelport.runtime.server")
FLAGS_VARIABLE = "MODELPORT_SERVE_FLAGS"
DRAIN_POLL_S = 0.01  # how often a drain looks whether the requests in flight have finished


def exec_server(flags: ServeFlags) -> NoReturn:
    """Replace this process by a fresh interpreter that runs only the server.

    The CLI process has imported every command's modules; the front process stays lean (memory,
    and nothing in it that the scoring path does not use). Same pid, so signals and process
    supervisors keep working.
    """
    env = {**os.environ, FLAGS_VARIABLE: json.dumps(dataclasses.asdict(flags))}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "modelport.runtime.server"], env)


def main() -> int:
    """Entry point after :func:`exec_server`: read the flags back, resolve them again, serve."""
    flags = ServeFlags(**json.loads(os.environ.pop(FLAGS_VARIABLE)))
    try:
        return run(load_config(flags))
    except ModelportError as exc:
        # Same one-line form as the CLI's errors (this process replaced the CLI).
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1


def run(config: ServeConfig) -> int:
    """Serve until stopped; return the exit status."""
    logs.configure(config.log_level)
    sockets = [bind(config.host, config.port)]
    if config.unix_socket is not None:
        # From here on the socket file is ours, and removed however the server ends.
        sockets.append(bind_unix(config.unix_socket))
    try:
        if config.health_port is not None:
            sockets.append(bind(config.host, config.health_port))
        metrics_dir = tempfile.mkdtemp(prefix="modelport-metrics-")
        # Before anything imports prometheus-client, in this process and (through the environment)
        # in the workers: it chooses its multi-process value class at import time.
        os.environ[MULTIPROC_VARIABLE] = config.worker_env[MULTIPROC_VARIABLE] = metrics_dir
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(_serve(config, sockets))
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    finally:
        if config.unix_socket is not None:
            remove_unix_socket(config.unix_socket)


async def _serve(config: ServeConfig, sockets: list[socket.socket]) -> int:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[int] = loop.create_future()
    signalled: list[int] = []
    drain_first: list[bool] = []  # a signal or an OOM kill drains; a worker failing init() does not
    cut_short = asyncio.Event()

    def finish(code: int, drain: bool) -> None:
        if not finished.done():
            drain_first.append(drain)
            finished.set_result(code)

    def on_signal(signum: int) -> None:
        signalled.append(signum)
        if len(signalled) == 1:
            finish(0, True)
        elif signum == signal.SIGINT:
            cut_short.set()  # Ctrl-C again: the person at the terminal does not want to wait
        else:
            log.info("Already stopping; the requests in flight get the rest of the graceful timeout")

    if config.parent_fd is not None:
        lifeline.watch(loop, config.parent_fd)
    metrics = ServerMetrics()
    pool = WorkerPool(config, metrics, on_fatal=finish, memory=MemoryCgroup.find())
    app = ScoringApp(config, pool, metrics)
    connections = ConnectionSet()
    factory = connections.track(protocol_factory(app, config.max_request_bytes))
    scoring = sockets[:2] if config.unix_socket is not None else sockets[:1]
    acceptor = Acceptor(scoring, pool, factory)
    acceptor.start()
    servers = [await loop.create_server(factory, sock=s) for s in sockets[len(scoring) :]]
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    _banner(config, sockets)
    for warning in config.warnings:
        log.warning("%s", warning)
    await pool.start()
    code = await finished
    if drain_first[0]:
        await _drain(config, pool, acceptor, connections, cut_short)
    log.info("Stopping (exit status %d)", code)
    acceptor.close()
    for server in servers:
        server.close()
    await pool.stop()
    await asyncio.sleep(0)  # the answers of requests the pool just gave up on go out
    acceptor.close_connections()
    connections.close()
    return code


async def _drain(
    config: ServeConfig,
    pool: WorkerPool,
    acceptor: Acceptor,
    connections: ConnectionSet,
    cut_short: asyncio.Event,
) -> None:
    """Take no new work and let the requests in flight finish, for up to the graceful timeout."""
    log.info(
        "Stopping gracefully: not ready, no new connections; requests in flight get up to %d s",
        config.graceful_timeout_s,
    )
    pool.drain()
    acceptor.drain()
    connections.drain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.graceful_timeout_s
    while not (pool.idle and acceptor.idle and not any(c.active for c in connections)):
        if loop.time() >= deadline or cut_short.is_set():
            log.warning("Requests still in flight at the end of the graceful timeout are answered 503")
            return
        await asyncio.sleep(DRAIN_POLL_S)
    log.info("Every request in flight has been answered")


def _banner(config: ServeConfig, sockets: list[socket.socket]) -> None:
    env = config.worker_env
    addresses = ", ".join(_address(s) for s in sockets)
    log.info(
        "modelport scoring server listening at %s\n"
        "  entry script: %s\n  model dir: %s\n  workers: %d\n  scoring timeout: %d ms\n"
        "  max request body: %d bytes\n  CORS origins: %s\n"
        "  routes: GET / (liveness+readiness), GET|POST|OPTIONS /score, GET /swagger.json, "
        "GET /health/live, GET /health/ready, GET /metrics",
        addresses,
        env.get("AZUREML_ENTRY_SCRIPT", "main.py from sys.path"),
        env.get("AZUREML_MODEL_DIR", "(AZUREML_MODEL_DIR not set)"),
        config.worker_count,
        config.scoring_timeout_ms,
        config.max_request_bytes,
        ", ".join(config.cors_origins) or "(none)",
    )


def _address(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        readable = "@" + name[1:].decode() if isinstance(name, bytes) else name
        return f"unix:{readable}"
    return "http://{}:{}".format(*sock.getsockname()[:2])


if __name__ == "__main__":
    sys.exit(main())
