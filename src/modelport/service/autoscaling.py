"""How many replicas a service should run now: fixed, or the autoscaler's decision from load.

Shared by every target: the owner of a front end (local agent, in-cluster controller) asks each
refresh period and records the decisions that change the count, with their inputs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.frontend.autoscaler import Autoscaler, AutoscaleSettings, Decision, LoadSample

# Azure ML scales down after about a minute below target; tests shorten it through this variable.
SCALE_DOWN_DELAY_ENV = "MODELPORT_AUTOSCALE_SCALE_DOWN_DELAY_S"


def _with_delay_from_env(settings: AutoscaleSettings) -> AutoscaleSettings:
    delay = os.environ.get(SCALE_DOWN_DELAY_ENV)
    if delay:
        settings = AutoscaleSettings(**{**vars(settings), "scale_down_delay_s": float(delay)})
    return settings


def autoscale_settings(config: EffectiveDeploymentConfig) -> AutoscaleSettings:
    """The autoscaling knobs of a service's effective deployment configuration (the front end
    takes them as plain settings, knowing nothing of deployment configurations)."""
    return AutoscaleSettings(
        enabled=config.autoscale_enabled,
        min_replicas=config.autoscale_min_replicas,
        max_replicas=config.autoscale_max_replicas,
        target_utilization=config.autoscale_target_utilization,
        refresh_seconds=float(config.autoscale_refresh_seconds),
        num_replicas=config.num_replicas or 1,
    )


class ReplicaPlanner:
    """One service's replica count over time; keeps the last decision for ``service show``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._autoscaler: Autoscaler | None = None
        self._next_at = 0.0
        self._count: int | None = None
        self.last_decision: dict[str, Any] | None = None

    def plan(
        self, settings: AutoscaleSettings, load: LoadSample | None, current: int
    ) -> tuple[int, Decision | None]:
        """(replica count to run, the decision if it changed the count this time).

        ``settings`` come from wherever the owner keeps them (``autoscale_settings``
        for a spec, the Deployment's annotation on a cluster); ``MODELPORT_AUTOSCALE_SCALE_DOWN_DELAY_S``
        overrides their scale-down delay for every owner alike.
        """
        settings = _with_delay_from_env(settings)
        if self._autoscaler is None or self._autoscaler.settings != settings:
            self._autoscaler = Autoscaler(settings)
            self._next_at = 0.0
            self._count = None
        if not settings.enabled:
            return settings.num_replicas, None
        if self._count is None:
            self._count = settings.min_replicas
        if load is None or load.at < self._next_at:
            return self._count, None
        self._next_at = load.at + settings.refresh_seconds
        decision = self._autoscaler.decide(load, current)
        self.last_decision = {**decision.to_dict(), "time": datetime.now(UTC).isoformat(timespec="seconds")}
        changed = decision.desired_replicas != self._count
        self._count = decision.desired_replicas
        return self._count, decision if changed else None
