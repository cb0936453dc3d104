"""Prometheus metrics of one replica, served at ``GET /metrics``.

Kept in the front process, which sees every request, so that no multi-process aggregation is
needed; ``run()`` durations come from the workers' replies.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

KNOWN_ROUTES = frozenset(("/", "/score", "/swagger.json", "/health/live", "/health/ready", "/metrics"))
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServerMetrics:
    """The replica's metrics, in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelport_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Time from a complete request to its response being written, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelport_requests_in_flight",
            "Scoring requests received and not yet answered.",
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "modelport_run_duration_seconds",
            "Time spent inside the entry script's run().",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.workers_ready = Gauge(
            "modelport_workers_ready", "Worker processes whose init() returned.", registry=self.registry
        )
        self.worker_restarts = Counter(
            "modelport_worker_restarts",
            "Worker processes replaced after they exited.",
            registry=self.registry,
        )

        self._answered: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

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
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)
