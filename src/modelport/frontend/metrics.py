"""Prometheus metrics of one front end, per service, in a registry of the front end's own.

Counts are plain integers updated on the event loop (the only thread that touches them), and
turned into Prometheus families when scraped: prometheus-client's own metric objects take a lock
and walk their buckets on every update, several microseconds per request that the front end's
budget does not have. The gauges (in flight, queued, ready replicas) are read from the balancers
at scrape time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from modelport.frontend.autoscaler import LoadSample

UNKNOWN_SERVICE = "(unknown)"
BUCKETS = (
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


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # Buckets are "less than or equal": the first bound >= the value.
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class _ServiceCounts:
    __slots__ = ("codes", "latency", "queue")

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}
        self.latency = _Histogram()
        self.queue = _Histogram()


class FrontEndMetrics(Collector):
    """Requests by code, latency and queue time per service, plus the load gauges."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, samples: Callable[[], Iterable[LoadSample]]) -> None:
        self._samples = samples
        self._services: dict[str, _ServiceCounts] = {}
        self._keys: dict[tuple[str, str, str], int] = {}  # (service, key name, outcome) -> count
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def _counts(self, service: str) -> _ServiceCounts:
        counts = self._services.get(service)
        if counts is None:
            counts = self._services[service] = _ServiceCounts()
        return counts

    def answered(self, service: str, status: int, seconds: float) -> None:
        """Count one answer of ``service`` and its latency."""
        counts = self._counts(service)
        counts.codes[status] = counts.codes.get(status, 0) + 1
        counts.latency.observe(seconds)

    def waited(self, service: str, seconds: float) -> None:
        """Record how long a request of ``service`` waited for a replica."""
        self._counts(service).queue.observe(seconds)

    def key_request(self, service: str, key: str, outcome: str) -> None:
        """Count one request of a named key by what its limits said (``admitted``, ``rate_limited``,
        ``quota_exceeded``); labelled with the key's name, never its value."""
        label = (service, key, outcome)
        self._keys[label] = self._keys.get(label, 0) + 1

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """The families, built from the counts now (called by the registry when scraped)."""
        requests = CounterMetricFamily(
            "modelport_frontend_requests",
            "Requests answered by the front end, by service and status code.",
            labels=["service", "code"],
        )
        latency = HistogramMetricFamily(
            "modelport_frontend_request_duration_seconds",
            "Time from a complete request to its answer being written, by service.",
            labels=["service"],
        )
        queue = HistogramMetricFamily(
            "modelport_frontend_queue_seconds",
            "Time a request waited for a free replica (0 when one was free), by service.",
            labels=["service"],
        )
        for service, counts in list(self._services.items()):
            for code, count in list(counts.codes.items()):
                requests.add_metric([service, str(code)], count)
            latency.add_metric([service], counts.latency.cumulative(), counts.latency.total)
            queue.add_metric([service], counts.queue.cumulative(), counts.queue.total)
        keys = CounterMetricFamily(
            "modelport_frontend_key_requests",
            "Requests that carried a named key, by service, key name and outcome of its limits.",
            labels=["service", "key", "outcome"],
        )
        for (service, key, outcome), count in list(self._keys.items()):
            keys.add_metric([service, key, outcome], count)
        yield from (requests, latency, queue, keys)
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
