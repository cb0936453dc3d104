"""Azure ML's replica autoscaling (docs/frontend.md, "Autoscaling"), as a deterministic decision.

utilisation = busy ÷ (ready replicas × max concurrent requests per replica), where *busy* is the
number of requests the front end holds for the service (sent to a replica or queued), averaged
over the refresh period. Queued requests count because they are the demand that did not fit:
with in-flight alone, utilisation can never exceed 100 % and a saturated service would grow by
at most 1/target per period.

Every refresh period the owner passes a :class:`LoadSample` and the replica count it currently
runs (ready or starting). The replica count that brings utilisation under the target is
``needed = ceil(busy ÷ (max concurrent × target))``. Above the current count → scale up to it at
once. Below → scale down only when it has stayed below for ``scale_down_delay_s`` (a minute, as
in Azure ML), and then to the largest count needed during that minute. Always clamped to
``[min, max]``; a fixed ``num_replicas`` when autoscaling is off. Time comes only from the
samples, so the same samples always give the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from modelport.errors import UserErrorException

Reason = Literal["fixed", "scale_up", "scale_down", "hold", "clamped"]


@dataclass(frozen=True)
class LoadSample:
    """What the front end saw of one service at monotonic time ``at`` (``FrontEnd.load``)."""

    service: str
    at: float
    in_flight: int  # requests sent to a replica, not yet answered
    queued: int  # requests waiting for a free replica
    ready_replicas: int
    max_concurrent_per_replica: int
    busy_seconds: float  # integral of (in_flight + queued) over time since the service appeared


@dataclass(frozen=True)
class AutoscaleSettings:
    """The autoscaling knobs of one service (Azure ML's names and defaults)."""

    enabled: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    target_utilization: int = 70  # percent
    refresh_seconds: float = 1.0
    num_replicas: int = 1  # the fixed count when ``enabled`` is False
    scale_down_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise UserErrorException(
                f"autoscale_min_replicas ({self.min_replicas}) must be at least 1 and at most "
                f"autoscale_max_replicas ({self.max_replicas})."
            )
        if not 0 < self.target_utilization <= 100:
            raise UserErrorException(
                f"autoscale_target_utilization must be in 1..100, got {self.target_utilization}."
            )


@dataclass(frozen=True)
class Decision:
    """One autoscaling decision with everything it was computed from (recorded by the owner)."""

    service: str
    at: float
    desired_replicas: int
    reason: Reason
    message: str
    current_replicas: int
    ready_replicas: int
    busy: float  # mean in-flight + queued over the period
    in_flight: int
    queued: int
    max_concurrent_per_replica: int
    utilization: float  # busy ÷ (ready × max concurrent); inf when busy with no ready replica
    target_utilization: float  # fraction
    needed_replicas: int  # count that brings utilisation under the target, before clamping
    below_target_since: float | None
    settings: AutoscaleSettings

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record (``service show`` prints it)."""
        record = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "settings"}
        if math.isinf(self.utilization):
            record["utilization"] = None
        record["settings"] = dict(vars(self.settings))
        return record


class Autoscaler:
    """Decides one service's replica count from successive load samples."""

    def __init__(self, settings: AutoscaleSettings) -> None:
        self.settings = settings
        self._previous: LoadSample | None = None
        self._below_since: float | None = None
        self._peak_needed = 0
        self.last: Decision | None = None

    def decide(self, sample: LoadSample, current_replicas: int) -> Decision:
        """The replica count to run after ``sample``, given ``current_replicas`` running or starting."""
        settings = self.settings
        target = settings.target_utilization / 100.0
        busy = self._mean_busy(sample)
        capacity = sample.ready_replicas * sample.max_concurrent_per_replica
        utilization = busy / capacity if capacity else (math.inf if busy > 0 else 0.0)
        needed = math.ceil(busy / (sample.max_concurrent_per_replica * target) - 1e-9)
        low, high = settings.min_replicas, settings.max_replicas
        clamped = min(max(needed, low), high)

        reason: Reason
        if not settings.enabled:
            self._below_since = None
            desired, reason = settings.num_replicas, "fixed"
            message = f"autoscaling off: fixed at num_replicas={settings.num_replicas}"
        elif current_replicas > high:
            self._below_since = None
            desired, reason = high, "clamped"
            message = f"{current_replicas} replicas is above autoscale_max_replicas={high}"
        elif clamped > current_replicas:
            self._below_since = None
            desired, reason = clamped, "scale_up"
            message = (
                f"utilization {_percent(utilization)} above target {settings.target_utilization}%: "
                f"{needed} replicas needed"
            )
        elif clamped < current_replicas:
            if self._below_since is None:
                self._below_since, self._peak_needed = sample.at, clamped
            self._peak_needed = max(self._peak_needed, clamped)
            waited = sample.at - self._below_since
            if waited >= settings.scale_down_delay_s:
                desired, reason = self._peak_needed, "scale_down"
                message = (
                    f"below target for {waited:.0f} s (≥ {settings.scale_down_delay_s:.0f} s); "
                    f"at most {self._peak_needed} replicas needed meanwhile"
                )
                self._below_since = None
            else:
                desired, reason = current_replicas, "hold"
                message = (
                    f"{clamped} replicas would do; scaling down after "
                    f"{settings.scale_down_delay_s:.0f} s below target ({waited:.1f} s so far)"
                )
        else:
            self._below_since = None
            desired, reason = current_replicas, "hold"
            message = f"utilization {_percent(utilization)} within target {settings.target_utilization}%"

        decision = Decision(
            service=sample.service,
            at=sample.at,
            desired_replicas=desired,
            reason=reason,
            message=message,
            current_replicas=current_replicas,
            ready_replicas=sample.ready_replicas,
            busy=busy,
            in_flight=sample.in_flight,
            queued=sample.queued,
            max_concurrent_per_replica=sample.max_concurrent_per_replica,
            utilization=utilization,
            target_utilization=target,
            needed_replicas=needed,
            below_target_since=self._below_since,
            settings=settings,
        )
        self.last = decision
        return decision

    def _mean_busy(self, sample: LoadSample) -> float:
        # The mean over the period since the previous sample; the instantaneous value for the
        # first sample (or when the clock did not move).
        previous, self._previous = self._previous, sample
        if previous is None or sample.at <= previous.at or sample.busy_seconds < previous.busy_seconds:
            return float(sample.in_flight + sample.queued)
        return (sample.busy_seconds - previous.busy_seconds) / (sample.at - previous.at)


def _percent(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value * 100:.0f}%"
