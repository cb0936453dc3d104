"""The load reports between front-end replicas (``load_reports.py``): pure, with an injected clock."""

from __future__ import annotations

import pytest

from modelport.compute.kubernetes import load_reports as lr
from modelport.frontend.autoscaler import Autoscaler, AutoscaleSettings, LoadSample


def sample(at: float, in_flight: int, queued: int, busy_seconds: float, service: str = "svc") -> LoadSample:
    return LoadSample(service, at, in_flight, queued, 1, 4, busy_seconds)


def test_a_report_carries_the_mean_busy_since_the_previous_one() -> None:
    local = lr.LocalLoad()
    first = local.reports([sample(10.0, 2, 1, 0.0)])
    assert first == {"svc": lr.Report(2, 1, 3.0)}  # no previous sample: the instantaneous figure
    second = local.reports([sample(12.0, 0, 0, 5.0)])
    assert second == {"svc": lr.Report(0, 0, 2.5)}  # 5 busy seconds over 2 s, though idle now
    # A restarted balancer (integral reset) falls back to the instantaneous figure.
    assert local.reports([sample(13.0, 1, 0, 0.5)]) == {"svc": lr.Report(1, 0, 1.0)}


def test_reports_round_trip_and_bad_text_is_named() -> None:
    reports = {"a": lr.Report(1, 2, 0.333), "b": lr.Report(0, 0, 0.0)}
    assert lr.decode(lr.encode(reports)) == reports
    for bad in ("nope", '{"a": [1]}', '["a"]', '{"a": ["x", 1, 2]}'):
        with pytest.raises(ValueError, match="not a load report"):
            lr.decode(bad)


def test_only_reports_rewritten_within_the_staleness_bound_count() -> None:
    others = {
        "fresh": lr.Seen("7", 100.0, {"svc": lr.Report(1, 0, 1.0)}),
        "stale": lr.Seen("3", 100.0 - lr.STALE_S, {"svc": lr.Report(5, 0, 5.0)}),
    }
    assert lr.fresh(others, 100.0 + lr.STALE_S - 0.01) == [others["fresh"].reports]


def test_combined_load_adds_the_others_and_keeps_busy_seconds_monotonic() -> None:
    combiner = lr.LoadCombiner()
    first = combiner.combine(sample(0.0, 1, 0, 0.0), [lr.Report(2, 1, 3.0)])
    assert (first.in_flight, first.queued, first.busy_seconds) == (3, 1, 0.0)
    # One second later the others were busy 3 on average: 3 busy seconds join the leader's own 1.
    second = combiner.combine(sample(1.0, 1, 0, 1.0), [lr.Report(2, 1, 3.0)])
    assert second.busy_seconds == pytest.approx(4.0)
    # A replica's report vanishes (stale or gone): the integral does not go back.
    third = combiner.combine(sample(2.0, 1, 0, 2.0), [])
    assert third.busy_seconds == pytest.approx(5.0) and third.in_flight == 1


def test_the_leader_plans_from_the_load_of_every_front_end() -> None:
    # Three front ends each hold 2 requests of a service whose replicas take 4 at a time: alone,
    # the leader sees 2 (50 %, within the 70 % target); combined it sees 6, which needs 3 replicas.
    settings = AutoscaleSettings(min_replicas=1, max_replicas=5)
    alone, together = Autoscaler(settings), Autoscaler(settings)
    combiner, local = lr.LoadCombiner(), [lr.LocalLoad(), lr.LocalLoad()]
    for second in range(3):
        at = float(second)
        own = sample(at, 2, 0, 2.0 * at)
        others = [load.reports([sample(at, 2, 0, 2.0 * at)])["svc"] for load in local]
        lone = alone.decide(own, 1)
        joint = together.decide(combiner.combine(own, others), 1)
    assert lone.desired_replicas == 1
    assert joint.desired_replicas == 3 and joint.busy == pytest.approx(6.0)
