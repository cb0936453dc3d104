"""Autoscaling on the local target: a load step adds replicas, quiet removes them, decisions recorded."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from modelport import Model
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.service import store as service_store
from modelport.service.autoscaling import SCALE_DOWN_DELAY_ENV
from tests.servers import wait_until

BUSY_SCORE = textwrap.dedent(
    """
    import time

    def init():
        pass

    def run(raw_data):
        time.sleep(0.5)  # each request keeps a replica busy for half a second
        return "ok"
    """
)


@pytest.fixture(scope="module", autouse=True)
def quick_scale_down() -> Iterator[None]:
    """Scale down after 3 s below target instead of a minute (set before the module's agent starts)."""
    os.environ[SCALE_DOWN_DELAY_ENV] = "3"
    yield
    os.environ.pop(SCALE_DOWN_DELAY_ENV, None)


def _ready(service) -> int:
    service.update_deployment_state()
    return sum(1 for r in service.observed.get("replicas", []) if r["state"] == "ready")


def test_load_step_scales_up_then_down_and_every_decision_is_recorded(local_ws, write_source) -> None:
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(BUSY_SCORE)))
    deployment = local_deploy_configuration(
        auth_enabled=False,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=3,
        autoscale_refresh_seconds=1,
        max_request_wait_time=2000,
    )
    service = Model.deploy(local_ws, "elastic", [], config, deployment)
    service.wait_for_deployment(timeout_sec=120)
    assert _ready(service) == 1
    uri = service.scoring_uri
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline:
                http.post(uri, content="x")

    workers = [threading.Thread(target=client) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: _ready(service) >= 2, "a second replica serving under load", 60)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    up = service_store.read_events(local_ws, "elastic", kinds=["autoscale"])
    assert up and up[0].data["reason"] == "scale_up"
    decision = up[0].data
    assert decision["current_replicas"] == 1 and decision["desired_replicas"] >= 2
    assert decision["busy"] > 0.7 and decision["settings"]["max_replicas"] == 3  # inputs recorded
    assert service.observed["autoscale"]["service"] == "elastic"  # the last decision, for `service show`

    wait_until(lambda: _ready(service) == 1, "scale-down to the minimum once quiet", 60)
    reasons = [e.data["reason"] for e in service_store.read_events(local_ws, "elastic", kinds=["autoscale"])]
    assert reasons[-1] == "scale_down"
    service.delete()


def test_autoscaling_off_keeps_num_replicas(local_ws, write_source) -> None:
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(BUSY_SCORE)))
    service = Model.deploy(
        local_ws, "fixed", [], config, local_deploy_configuration(auth_enabled=False, num_replicas=2)
    )
    service.wait_for_deployment(timeout_sec=120)
    wait_until(lambda: _ready(service) == 2, "two replicas", 60)
    assert service_store.read_events(local_ws, "fixed", kinds=["autoscale"]) == []
    service.delete()
