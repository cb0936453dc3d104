"""Prometheus metrics of one replica, served at ``GET /metrics``.

Requests are answered both by the front process and by workers (on connections handed to them),
so the metrics use prometheus-client's multi-process mode: each process writes its values to
memory-mapped files in one folder (``PROMETHEUS_MULTIPROC_DIR``, created by the front process
before anything imports prometheus-client) and any process renders the sum.
"""

from __future__ import annotations

import os
from typing import Any

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_ROUTES = frozenset(("/", "/score", "/swagger.json", "/health/live", "/health/ready", "/metrics"))
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


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
        self._answered: dict[tuple[str, int], tuple[Any, Any]] = {}

    def answered(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (label children cached: this is per request)."""
        children = self._answered.get((route, status))
        if children is None:
            label = route if route in KNOWN_ROUTES else "other"
            children = (self.requests.labels(label, str(status)), self.latency.labels(label))
            self._answered[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The metrics of every process of the replica in Prometheus' text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self._registry)


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process that exited (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
