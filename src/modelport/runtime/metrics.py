"""Prometheus metrics of one replica, served at ``GET /metrics``.

Requests are answered both by the front process and by workers (on connections handed to them),
so the metrics use prometheus-client's multi-process mode: each process writes its values to
memory-mapped files in one folder (``PROMETHEUS_MULTIPROC_DIR``, created by the front process
before anything imports prometheus-client) and any process renders the sum. Per-request counts
are gathered in plain Python and written to the files in batches (every ``FLUSH_INTERVAL_S`` and
before rendering): a multi-process write takes a lock and a ``getpid()`` each time, which per
request cost more than the rest of the HTTP handling.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from typing import Any

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_ROUTES = frozenset(("/", "/score", "/swagger.json", "/health/live", "/health/ready", "/metrics"))
FLUSH_INTERVAL_S = 0.25
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TALLY_SIZE = 2 + len(_LATENCY_BUCKETS) + 1


class ServerMetrics:
    """The replica's metrics as seen from one process (values shared through the metrics folder)."""

    def __init__(self) -> None:
        if not os.environ.get(MULTIPROC_VARIABLE):
            raise RuntimeError(f"{MULTIPROC_VARIABLE} must be set before the metrics are created")
        # Imported here: prometheus-client picks its multi-process value class at import time.
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.multiprocess import MultiProcessCollector

        self.content_type = CONTENT_TYPE_LATEST
        self._registry = CollectorRegistry()
        MultiProcessCollector(self._registry)
        self.requests = Counter(
            "modelport_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=None,
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Time from a complete request to its response being written, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.in_flight = Gauge(
            "modelport_requests_in_flight",
            "Scoring requests received and not yet answered.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.run_seconds = Histogram(
            "modelport_run_duration_seconds",
            "Time spent inside the entry script's run().",
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.workers_ready = Gauge(
            "modelport_workers_ready",
            "Worker processes whose init() returned.",
            registry=None,
            multiprocess_mode="livemax",
        )
        self.worker_restarts = Counter(
            "modelport_worker_restarts", "Worker processes replaced after they exited.", registry=None
        )
        # (route, status) -> [count, latency sum, bucket counts (the last one: +Inf)], and run() times.
        self._answered: dict[tuple[str, int], list[float]] = {}
        self._runs: list[float] = [0.0] * _TALLY_SIZE
        self._flusher: asyncio.TimerHandle | None = None

    def answered(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        tally = self._answered.get((route, status))
        if tally is None:
            tally = self._answered[(route, status)] = [0.0] * _TALLY_SIZE
        tally[0] += 1
        tally[1] += seconds
        tally[2 + bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self._schedule()

    def ran(self, seconds: float) -> None:
        """Record the duration of one run() call."""
        runs = self._runs
        runs[0] += 1
        runs[1] += seconds
        runs[2 + bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self._schedule()

    def _schedule(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Write the gathered counts to the shared files."""
        self._flusher = None
        for (route, status), tally in self._answered.items():
            if tally[0]:
                label = route if route in KNOWN_ROUTES else "other"
                self.requests.labels(label, str(status)).inc(tally[0])
                _add_to_histogram(self.latency.labels(label), tally[1], tally[2:])
                tally[:] = [0.0] * len(tally)
        if self._runs[0]:
            _add_to_histogram(self.run_seconds, self._runs[1], self._runs[2:])
            self._runs = [0.0] * len(self._runs)

    def render(self) -> bytes:
        """The metrics of every process of the replica in Prometheus' text exposition format."""
        from prometheus_client import generate_latest

        self.flush()
        return generate_latest(self._registry)


def _add_to_histogram(histogram: Any, total: float, bucket_counts: list[float]) -> None:
    # prometheus-client has no way to add many observations at once; its per-bucket values are
    # the same objects observe() increments (stable since 0.4).
    histogram._sum.inc(total)
    for value, count in zip(histogram._buckets, bucket_counts, strict=True):
        if count:
            value.inc(count)


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process that exited (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
