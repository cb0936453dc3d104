"""Shared by the benchmarks: free ports and running ``wrk`` with its figures parsed."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def milliseconds(text: str) -> float:
    """wrk's latency text (``812.00us``, ``1.20ms``, ``2.00s``) in milliseconds."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def run_wrk(
    url: str,
    connections: int,
    duration: int,
    lua: Path,
    *,
    threads: int | None = None,
    cpus: str | None = None,
) -> dict[str, float]:
    """Run wrk (keep-alive, fixed duration) against ``url``; return requests, errors, rps, p50 and p99 (ms).

    ``cpus`` pins wrk to those cores (``taskset -c``) so that it does not share the server's.
    """
    argv = ["wrk", f"-t{threads or min(connections, 2)}", f"-c{connections}", f"-d{duration}s", "--latency"]
    argv += ["-s", str(lua), url]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    figures = {"requests": 0.0, "errors": 0.0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    for line in out.splitlines():
        words = line.split()
        if line.strip().startswith("50%"):
            figures["p50_ms"] = milliseconds(words[1])
        elif line.strip().startswith("99%"):
            figures["p99_ms"] = milliseconds(words[1])
        elif "requests in" in line:
            figures["requests"] = float(words[0])
        elif line.startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            figures["errors"] += sum(float(w.strip(",")) for w in words if w.strip(",").isdigit())
    return figures
