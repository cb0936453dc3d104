"""The target contract's pure parts: the driver registry and the stored form of an observation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelport.errors import ComputeTargetException
from modelport.service import states
from modelport.service.driver import Observation, ReplicaObservation, driver_for
from modelport.service.states import ServiceError
from modelport.service.store import ServiceStatus


def test_an_unknown_compute_type_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(
        ComputeTargetException, match=r"'aci' is not supported; use one of: kubernetes, local"
    ):
        driver_for("aci", "somewhere")


def test_the_local_driver_is_built_for_its_type() -> None:
    assert driver_for("local", "local").compute_type == "local"


def test_an_observation_survives_its_stored_form() -> None:
    observation = Observation(
        generation=3,
        state=states.UNHEALTHY,
        error=ServiceError(code=states.CRASH_LOOP_BACK_OFF, message="restarting"),
        desired_replicas=2,
        ready_replicas=1,
        replicas=(ReplicaObservation(id="svc-g3-r1", generation=3, state="ready", extras={"pid": 12}),),
        auth_digest="abc",
        extras={"restarts": 4},
    )
    detail = observation.detail()
    assert detail["replicas"] == [{"id": "svc-g3-r1", "generation": 3, "state": "ready", "pid": 12}]
    status = ServiceStatus(3, observation.state, observation.error, detail, datetime.now(UTC))
    assert Observation.from_status(status) == observation
