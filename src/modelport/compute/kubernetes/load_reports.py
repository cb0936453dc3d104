"""The load every front-end replica reports, and how the leader adds it to its own.

Behind the front end's Service each replica sees a share of a service's requests, so the leader
(``election.py``) cannot plan from its own :class:`~modelport.frontend.autoscaler.LoadSample`
alone. Each replica therefore writes, every ``REPORT_S``, one small report per service — its
requests in flight, queued, and its mean busy (in flight + queued) since its previous report —
into an annotation of its own Lease (``frontend_leader.LoadReporter``); the leader reads all of
them and adds the others' figures to its own sample (:class:`LoadCombiner`).

The leader keeps the others' busy time as its own running integral (mean busy × time since the
last combination), so that the combined ``busy_seconds`` never jumps when a replica appears or
goes: the autoscaler's mean over a period stays the mean of what was reported during it.

Staleness: a report is at most ``REPORT_S`` old when written, plus the leader's read period
(``REPORT_S``). A report that has not changed for ``STALE_S`` by the leader's clock (its writer
died or lost the API) is left out, so a dead replica's load counts for at most ``STALE_S``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from modelport.frontend.autoscaler import LoadSample

REPORT_S = 1.0
STALE_S = 3.0
FORGOTTEN_S = 60.0  # a report unchanged this long is deleted (its replica is gone for good)


@dataclass(frozen=True)
class Report:
    """One replica's load of one service."""

    in_flight: int
    queued: int
    mean_busy: float  # mean in flight + queued since the replica's previous report


def encode(reports: Mapping[str, Report]) -> str:
    """The annotation text: ``{service: [in_flight, queued, mean_busy]}``."""
    return json.dumps(
        {name: [r.in_flight, r.queued, round(r.mean_busy, 3)] for name, r in sorted(reports.items())},
        separators=(",", ":"),
    )


def decode(text: str) -> dict[str, Report]:
    """Reports from an annotation; raises ``ValueError`` naming what is wrong."""
    try:
        raw = json.loads(text)
        return {str(name): Report(int(v[0]), int(v[1]), float(v[2])) for name, v in raw.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a load report ({type(exc).__name__}: {exc}): {text[:80]!r}") from None


class LocalLoad:
    """Turns this replica's successive samples into reports (mean busy between two reports)."""

    def __init__(self) -> None:
        self._previous: dict[str, LoadSample] = {}

    def reports(self, samples: Iterable[LoadSample]) -> dict[str, Report]:
        """The report of each service in ``samples`` (taken now)."""
        result = {}
        current = {sample.service: sample for sample in samples}
        for name, sample in current.items():
            before = self._previous.get(name)
            busy = float(sample.in_flight + sample.queued)
            if before is not None and sample.at > before.at and sample.busy_seconds >= before.busy_seconds:
                busy = (sample.busy_seconds - before.busy_seconds) / (sample.at - before.at)
            result[name] = Report(sample.in_flight, sample.queued, busy)
        self._previous = current
        return result


@dataclass(frozen=True)
class Seen:
    """Another replica's reports as the leader last read them, unchanged since ``since``."""

    version: str  # changes with every write of the report
    since: float
    reports: Mapping[str, Report]


def fresh(others: Mapping[str, Seen], now: float) -> list[Mapping[str, Report]]:
    """The reports written within ``STALE_S`` (by the reader's clock)."""
    return [s.reports for s in others.values() if now - s.since < STALE_S]


class LoadCombiner:
    """One service's load as all front-end replicas see it: the leader's sample plus the others' reports."""

    def __init__(self) -> None:
        self._others_busy_s = 0.0
        self._last_at: float | None = None

    def combine(self, own: LoadSample, others: Iterable[Report]) -> LoadSample:
        """``own`` with the others' in-flight and queued requests and busy time added."""
        others = list(others)
        mean = sum(r.mean_busy for r in others)
        if self._last_at is not None and own.at > self._last_at:
            self._others_busy_s += mean * (own.at - self._last_at)
        self._last_at = own.at
        return replace(
            own,
            in_flight=own.in_flight + sum(r.in_flight for r in others),
            queued=own.queued + sum(r.queued for r in others),
            busy_seconds=own.busy_seconds + self._others_busy_s,
        )
