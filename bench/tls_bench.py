"""TLS cost on the front end: new connections (handshake) and keep-alive requests, HTTPS beside HTTP.

Two front-end processes (uvloop, as the local agent runs it) on loopback, one plain and one with
a development certificate (EC P-256, made by openssl); the client is this process (``http.client``
over a ``ssl`` socket, one request at a time), asking ``GET /``, which the front end answers
itself, so what differs between the two is TLS alone. Printed: p50 and p99 per new connection
(connect, handshake, one request, close) and per keep-alive request, the HTTPS/HTTP ratios and
the p50 added. Both ends' TLS work is in the figures (the client's share is about half).
Goal (issue 14, point 6): at most 0.3 ms p50 added per keep-alive request on loopback.

Usage: ``python bench/tls_bench.py [--connections 300] [--requests 3000] [--out FILE.json]``.
Internal: ``--serve PORT [CERT KEY]`` runs one front end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wrk import free_port

READY_DEADLINE_S = 60.0


def serve(port: int, cert: str | None, key: str | None) -> None:
    """Run one front end until killed."""
    import asyncio

    import uvloop

    from modelport.frontend import tls
    from modelport.frontend.server import FrontEnd

    async def main() -> None:
        context = tls.server_context(Path(cert), Path(key)) if cert and key else None
        frontend = FrontEnd("127.0.0.1", port, tls=context)
        await frontend.start()
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def _connection(port: int, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    if context is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)


def _get(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/")
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise RuntimeError(f"GET / answered {answer.status}")


def new_connections(port: int, context: ssl.SSLContext | None, count: int) -> list[float]:
    """Seconds per connect + handshake + one request + close."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        connection = _connection(port, context)
        _get(connection)
        connection.close()
        times.append(time.perf_counter() - start)
    return times


def keep_alive(port: int, context: ssl.SSLContext | None, count: int) -> list[float]:
    """Seconds per request on one kept-alive connection (after a warm-up request)."""
    connection = _connection(port, context)
    _get(connection)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        _get(connection)
        times.append(time.perf_counter() - start)
    connection.close()
    return times


def _wait_ready(port: int, context: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            new_connections(port, context, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _quantiles(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100)
    return {"p50_ms": statistics.median(times) * 1000, "p99_ms": cuts[98] * 1000}


def measure(connections: int, requests: int) -> dict[str, dict[str, dict[str, float]]]:
    """Start both front ends, measure, stop them."""
    from modelport.frontend.tls import make_self_signed

    with tempfile.TemporaryDirectory() as folder:
        cert, key = make_self_signed(Path(folder), "localhost")
        client = ssl.create_default_context(cafile=str(cert))
        client.check_hostname = False  # the certificate names localhost; the bench dials 127.0.0.1
        ports = {"http": free_port(), "https": free_port()}
        processes = [
            subprocess.Popen([sys.executable, __file__, "--serve", str(ports["http"])]),
            subprocess.Popen([sys.executable, __file__, "--serve", str(ports["https"]), str(cert), str(key)]),
        ]
        try:
            contexts = {"http": None, "https": client}
            for scheme, port in ports.items():
                _wait_ready(port, contexts[scheme])
            return {
                scheme: {
                    "new_connection": _quantiles(new_connections(port, contexts[scheme], connections)),
                    "keep_alive": _quantiles(keep_alive(port, contexts[scheme], requests)),
                }
                for scheme, port in ports.items()
            }
        finally:
            for process in processes:
                process.kill()
                process.wait()


def main() -> None:
    """Measure and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", nargs="+")
    args = parser.parse_args()
    if args.serve:
        port, *pair = args.serve
        serve(int(port), *(pair or (None, None)))
        return
    results = measure(args.connections, args.requests)
    for kind in ("new_connection", "keep_alive"):
        plain, secure = results["http"][kind], results["https"][kind]
        print(
            f"{kind:15s} http p50 {plain['p50_ms']:.3f} ms p99 {plain['p99_ms']:.3f} ms | "
            f"https p50 {secure['p50_ms']:.3f} ms p99 {secure['p99_ms']:.3f} ms | "
            f"ratio p50 {secure['p50_ms'] / plain['p50_ms']:.2f}x, "
            f"added p50 {secure['p50_ms'] - plain['p50_ms']:.3f} ms"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
