"""The front process of ``modelport serve``: listening sockets, the worker pool, shutdown.

It binds the port before the workers start, so that requests sent during a slow ``init()`` wait
instead of being refused (as with the reference server), then starts the workers. Returns the
process exit status: 0 after SIGTERM/SIGINT, the failing worker's status (3 for a failed
``init()``) when a worker cannot boot.
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
from modelport.runtime import logs
from modelport.runtime.acceptor import Acceptor
from modelport.runtime.app import ScoringApp
from modelport.runtime.config import ServeConfig, ServeFlags, load_config
from modelport.runtime.http_server import protocol_factory
from modelport.runtime.listen import bind, bind_unix, remove_unix_socket
from modelport.runtime.metrics import MULTIPROC_VARIABLE, ServerMetrics
from modelport.runtime.pool import WorkerPool

log = logging.getLogger("modelport.runtime.server")
FLAGS_VARIABLE = "MODELPORT_SERVE_FLAGS"


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

    def finish(code: int) -> None:
        if not finished.done():
            finished.set_result(code)

    metrics = ServerMetrics()
    pool = WorkerPool(config, metrics, on_fatal=finish)
    app = ScoringApp(config, pool, metrics)
    factory = protocol_factory(app, config.max_request_bytes)
    scoring = sockets[:2] if config.unix_socket is not None else sockets[:1]
    acceptor = Acceptor(scoring, pool, factory)
    acceptor.start()
    servers = [await loop.create_server(factory, sock=s) for s in sockets[len(scoring) :]]
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, finish, 0)
    _banner(config, sockets)
    for warning in config.warnings:
        log.warning("%s", warning)
    await pool.start()
    code = await finished
    log.info("Stopping (exit status %d)", code)
    acceptor.close()
    for server in servers:
        server.close()
    await pool.stop()
    return code


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
