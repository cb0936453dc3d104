"""The autoscaling algorithm (docs/frontend.md, "Autoscaling") with injected time (samples carry the clock),
and once fed by a real front end."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelport.errors import UserErrorException
from modelport.frontend.autoscaler import Autoscaler, AutoscaleSettings, LoadSample
from modelport.frontend.routes import ServiceRoute
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.support import Gate, ReplicaProcess, score_url, submit_post
from tests.servers import wait_until


class Feed:
    """Samples for one service at a steady load per period, with the busy integral kept consistent."""

    def __init__(self, ready: int = 1, max_concurrent: int = 1) -> None:
        self.at = 100.0
        self.busy_seconds = 0.0
        self.ready = ready
        self.max_concurrent = max_concurrent

    def step(
        self, busy: float, seconds: float = 1.0, in_flight: int | None = None, queued: int = 0
    ) -> LoadSample:
        """Advance the clock by ``seconds`` with a mean of ``busy`` requests held meanwhile."""
        self.at += seconds
        self.busy_seconds += busy * seconds
        now_in_flight = round(busy) if in_flight is None else in_flight
        return LoadSample(
            "svc", self.at, now_in_flight, queued, self.ready, self.max_concurrent, self.busy_seconds
        )


def test_scales_up_at_once_to_the_count_under_target() -> None:
    scaler = Autoscaler(AutoscaleSettings())
    feed = Feed(ready=2)
    scaler.decide(feed.step(0), current_replicas=2)
    decision = scaler.decide(feed.step(7, queued=5), current_replicas=2)
    # 7 busy at 70 % of one request per replica → 10 replicas, not 3.
    assert (decision.reason, decision.desired_replicas, decision.needed_replicas) == ("scale_up", 10, 10)
    assert decision.utilization == pytest.approx(3.5)
    assert decision.target_utilization == 0.7
    assert (decision.in_flight, decision.queued, decision.ready_replicas) == (7, 5, 2)


def test_scale_up_is_clamped_to_max_and_respects_concurrency() -> None:
    scaler = Autoscaler(AutoscaleSettings(max_replicas=4))
    feed = Feed(ready=1, max_concurrent=2)
    scaler.decide(feed.step(0), 1)
    decision = scaler.decide(feed.step(20), 1)
    assert decision.needed_replicas == math.ceil(20 / (2 * 0.7))
    assert decision.desired_replicas == 4
    under = scaler.decide(feed.step(2.8), 4)  # 2.8 ÷ (2 × 0.7) = 2 replicas: below 4, so hold
    assert (under.reason, under.desired_replicas) == ("hold", 4)


def test_at_target_holds() -> None:
    scaler = Autoscaler(AutoscaleSettings())
    feed = Feed(ready=10)
    scaler.decide(feed.step(0), 10)
    decision = scaler.decide(feed.step(7), 10)
    assert (decision.reason, decision.desired_replicas, decision.utilization) == (
        "hold",
        10,
        pytest.approx(0.7),
    )


def test_scale_down_only_after_the_delay_below_target() -> None:
    scaler = Autoscaler(AutoscaleSettings(scale_down_delay_s=60))
    feed = Feed(ready=5)
    scaler.decide(feed.step(3.5), 5)
    first_below = scaler.decide(feed.step(1), 5)
    assert (first_below.reason, first_below.desired_replicas) == ("hold", 5)
    assert first_below.below_target_since == feed.at
    for _ in range(30):
        assert scaler.decide(feed.step(1), 5).desired_replicas == 5
    spike = scaler.decide(feed.step(2.1), 5)  # still below 5 replicas' worth: the minute goes on
    assert spike.below_target_since == first_below.below_target_since
    for _ in range(28):
        assert scaler.decide(feed.step(1), 5).reason == "hold"
    down = scaler.decide(feed.step(1), 5)
    # Down to the most the minute needed (3 for the spike), not the 2 needed now.
    assert (down.reason, down.desired_replicas) == ("scale_down", 3)
    assert down.below_target_since is None


def test_load_back_at_target_restarts_the_scale_down_wait() -> None:
    scaler = Autoscaler(AutoscaleSettings(scale_down_delay_s=10))
    feed = Feed(ready=3)
    scaler.decide(feed.step(0), 3)
    for _ in range(8):
        scaler.decide(feed.step(0), 3)
    assert scaler.decide(feed.step(2.1), 3).below_target_since is None
    for _ in range(10):  # the wait counts from the first sample below target
        assert scaler.decide(feed.step(0), 3).reason == "hold"
    down = scaler.decide(feed.step(0), 3)
    assert (down.reason, down.desired_replicas) == ("scale_down", 1)  # min_replicas


def test_mean_over_the_period_not_the_instant() -> None:
    scaler = Autoscaler(AutoscaleSettings())
    feed = Feed(ready=1)
    scaler.decide(feed.step(0), 1)
    # Busy for the whole second, but idle at the instant of the sample.
    decision = scaler.decide(feed.step(1, in_flight=0), 1)
    assert decision.busy == pytest.approx(1.0)
    assert (decision.reason, decision.desired_replicas) == ("scale_up", 2)


def test_no_ready_replica_with_demand_scales_up() -> None:
    scaler = Autoscaler(AutoscaleSettings())
    feed = Feed(ready=0)
    decision = scaler.decide(feed.step(3, queued=3, in_flight=0), 1)
    assert math.isinf(decision.utilization)
    assert decision.desired_replicas == 5
    assert decision.to_dict()["utilization"] is None


def test_fixed_when_autoscaling_is_off() -> None:
    scaler = Autoscaler(AutoscaleSettings(enabled=False, num_replicas=3))
    feed = Feed(ready=3)
    for busy in (0, 30, 0):
        decision = scaler.decide(feed.step(busy), 3)
        assert (decision.reason, decision.desired_replicas) == ("fixed", 3)


def test_above_max_is_clamped_and_below_min_scales_up() -> None:
    scaler = Autoscaler(AutoscaleSettings(min_replicas=2, max_replicas=4))
    feed = Feed(ready=6)
    assert scaler.decide(feed.step(0), 6).desired_replicas == 4
    assert scaler.decide(feed.step(0), 1).desired_replicas == 2


def test_decision_record_has_every_input() -> None:
    scaler = Autoscaler(AutoscaleSettings())
    decision = scaler.decide(Feed(ready=1).step(1), 1)
    record = decision.to_dict()
    for field in (
        "desired_replicas",
        "reason",
        "message",
        "utilization",
        "in_flight",
        "queued",
        "ready_replicas",
    ):
        assert field in record
    assert record["settings"]["target_utilization"] == 70
    assert scaler.last is decision


def test_invalid_settings() -> None:
    with pytest.raises(UserErrorException, match="autoscale_min_replicas"):
        AutoscaleSettings(min_replicas=5, max_replicas=2)
    with pytest.raises(UserErrorException, match="autoscale_target_utilization"):
        AutoscaleSettings(target_utilization=0)


def test_samples_from_a_real_front_end_drive_a_decision(
    frontend: BackgroundFrontEnd,
    pair: tuple[ReplicaProcess, ReplicaProcess],
    gate: Gate,
    pool: ThreadPoolExecutor,
) -> None:
    frontend.set_routes(
        {"scaled": ServiceRoute("scaled", max_queue_wait_ms=30_000, replicas=(pair[0].target,))}
    )
    url = score_url(frontend, "scaled")
    tags = [gate.tag() for _ in range(3)]
    held = [submit_post(pool, url, {"action": "block", "tag": tag}) for tag in tags]
    wait_until(lambda: frontend.load("scaled").queued == 2, "one request in flight and two queued")
    scaler = Autoscaler(AutoscaleSettings())
    scaler.decide(frontend.load("scaled"), 1)
    start = time.monotonic()
    wait_until(lambda: time.monotonic() - start > 0.2, "a measurable period")  # the period is the input here
    decision = scaler.decide(frontend.load("scaled"), 1)
    assert decision.busy == pytest.approx(3.0, rel=0.05)
    assert (decision.in_flight, decision.queued, decision.ready_replicas) == (1, 2, 1)
    assert (decision.reason, decision.desired_replicas) == ("scale_up", 5)
    gate.release(*tags)
    assert [f.result().status_code for f in held] == [200, 200, 200]
