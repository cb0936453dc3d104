"""Prometheus metrics of one front end, per service, in a registry of the front end's own.

Counters and histograms are updated per request (label children cached, since label lookup is
the expensive part); the gauges (in flight, queued, ready replicas) are read from the balancers
when scraped, so that keeping them costs nothing per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelport.frontend.autoscaler import LoadSample

UNKNOWN_SERVICE = "(unknown)"
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class _LoadCollector(Collector):
    def __init__(self, samples: Callable[[], Iterable[LoadSample]]) -> None:
        self._samples = samples

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "modelport_frontend_in_flight",
            "Requests sent to a replica and not yet answered.",
            labels=["service"],
        )
        queued = GaugeMetricFamily(
            "modelport_frontend_queued", "Requests waiting for a free replica.", labels=["service"]
        )
        ready = GaugeMetricFamily(
            "modelport_frontend_ready_replicas", "Ready replicas in the routing table.", labels=["service"]
        )
        for sample in self._samples():
            in_flight.add_metric([sample.service], sample.in_flight)
            queued.add_metric([sample.service], sample.queued)
            ready.add_metric([sample.service], sample.ready_replicas)
        yield from (in_flight, queued, ready)


class FrontEndMetrics:
    """Requests by code, latency and queue time per service, plus the load gauges."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, samples: Callable[[], Iterable[LoadSample]]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "modelport_frontend_requests",
            "Requests answered by the front end, by service and status code.",
            ["service", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "modelport_frontend_request_duration_seconds",
            "Time from a complete request to its answer being written, by service.",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._queue = Histogram(
            "modelport_frontend_queue_seconds",
            "Time a request waited for a free replica (0 when one was free), by service.",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LoadCollector(samples))
        self._answered: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._queued: dict[str, Histogram] = {}

    def answered(self, service: str, status: int, seconds: float) -> None:
        """Count one answer of ``service`` and its latency."""
        children = self._answered.get((service, status))
        if children is None:
            children = (self._requests.labels(service, str(status)), self._latency.labels(service))
            self._answered[(service, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def waited(self, service: str, seconds: float) -> None:
        """Record how long a request of ``service`` waited for a replica."""
        child = self._queued.get(service)
        if child is None:
            child = self._queued[service] = self._queue.labels(service)
        child.observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)
