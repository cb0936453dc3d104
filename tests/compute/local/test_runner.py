"""The local reconcile (``ServiceRunner``) on its own: real replica processes, no agent, no workspace.

Each test drives the runner the way the agent's loop does (``reconcile`` then ``observation``,
every pass) until the observation it expects, with a deadline; preparation is a test function,
so a failed environment build or a preparation that never ends can be made on purpose.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from modelport.compute.local.agent import replica_environment
from modelport.compute.local.replica import ReplicaLaunch
from modelport.compute.local.runner import FAILED_STARTS_LIMIT, PreparationError, ServiceRunner
from modelport.config import local_deploy_configuration
from modelport.service import states
from modelport.service.deploy import with_keys
from modelport.service.driver import Observation
from modelport.service.spec import ServiceSpec, SourceRef
from modelport.service.states import ServiceError
from modelport.service.store import ServiceRecord

# The local-target suite: make test runs it again with the portable (non-Linux) paths forced.
pytestmark = pytest.mark.local_target

OK_SCORE = "def init():\n    pass\n\n\ndef run(raw):\n    return 'ok'\n"
FAILING_INIT = """
def init():
    raise RuntimeError("broken on purpose by the test")


def run(raw):
    return raw
"""
PASS_INTERVAL_S = 0.2  # the agent's loop interval (agent.LOOP_INTERVAL_S), not a readiness stand-in


def _record(generation: int, name: str = "runner-svc") -> ServiceRecord:
    spec = ServiceSpec(
        name=name,
        compute_type="local",
        compute_target="local",
        models=(),
        source=SourceRef(directory=None, entry_script="score.py", file_count=1),
        environment=None,
        deployment=with_keys(local_deploy_configuration().effective()),
        token_secret="ab" * 32,
    )
    now = datetime.now(UTC)
    return ServiceRecord(spec=spec, generation=generation, deleting=False, created_time=now, updated_time=now)


class Harness:
    """The agent's side of a runner: preparation per generation, and the events it was told."""

    def __init__(self, tmp_path: Path, scripts: dict[int, str], deploy_timeout_s: float = 600.0) -> None:
        self.tmp_path = tmp_path
        self.scripts = scripts
        self.events: list[tuple[int, str, str]] = []
        self.prepare_override: Callable[[ServiceSpec, int], Awaitable[ReplicaLaunch]] | None = None
        self.runner = ServiceRunner("runner-svc", self.prepare, self.emit, lambda _: 0, deploy_timeout_s)

    async def prepare(self, spec: ServiceSpec, generation: int) -> ReplicaLaunch:
        if self.prepare_override is not None:
            return await self.prepare_override(spec, generation)
        app = self.tmp_path / f"g{generation}"
        app.mkdir()
        (app / "score.py").write_text(self.scripts[generation])
        return ReplicaLaunch(
            python=Path(sys.executable),
            app_root=app,
            entry_script=spec.source.entry_script,
            model_dir=app / "azureml-models",
            env=replica_environment("runner-tests", spec, app),
            log_path=self.tmp_path / f"replicas-g{generation}.log",
        )

    async def emit(self, name: str, generation: int, kind: str, message: str, data: dict | None) -> None:
        self.events.append((generation, kind, message))

    async def drive(
        self,
        record: ServiceRecord,
        desired: int,
        until: Callable[[Observation], bool],
        deadline_s: float = 90,
    ) -> Observation:
        """Reconcile pass after pass until ``until(observation)``; past the deadline, fail with the last."""
        end = time.monotonic() + deadline_s
        async with httpx.AsyncClient() as client:
            while True:
                await self.runner.reconcile(record, desired, client)
                observation = self.runner.observation()
                if until(observation):
                    return observation
                if time.monotonic() > end:
                    raise AssertionError(f"no such observation within {deadline_s} s; last: {observation}")
                await asyncio.sleep(PASS_INTERVAL_S)


def _run(harness: Harness, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await scenario()
        finally:
            await harness.runner.stop_all()

    asyncio.run(main())


def _healthy_at(generation: int) -> Callable[[Observation], bool]:
    return lambda o: o.generation == generation and o.state == states.HEALTHY


def test_a_generation_becomes_healthy_with_the_desired_replicas(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {1: OK_SCORE})

    async def scenario() -> None:
        seen = await harness.drive(_record(1), 2, _healthy_at(1))
        assert seen.desired_replicas == 2 and seen.ready_replicas == 2
        assert [r.state for r in seen.replicas] == ["ready", "ready"]
        assert {r.generation for r in seen.replicas} == {1}
        assert len(harness.runner.routes()) == 2

    _run(harness, scenario)
    assert (1, "operation", "Starting replicas") in harness.events


def test_a_new_generation_takes_traffic_only_once_ready_then_the_old_replicas_stop(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {1: OK_SCORE, 2: OK_SCORE})

    async def scenario() -> None:
        await harness.drive(_record(1), 1, _healthy_at(1))
        old = {route.replica_id for route in harness.runner.routes()}
        first = await harness.drive(_record(2), 1, lambda o: o.generation == 2)
        assert first.state == states.TRANSITIONING
        assert {route.replica_id for route in harness.runner.routes()} == old  # still the old replica
        await harness.drive(_record(2), 1, _healthy_at(2))
        gone = await harness.drive(_record(2), 1, lambda o: {r.generation for r in o.replicas} == {2})
        assert not old & {route.replica_id for route in harness.runner.routes()}
        assert gone.ready_replicas == 1

    _run(harness, scenario)


def test_a_failed_preparation_fails_the_generation_with_its_error(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {})

    async def refuse(spec: ServiceSpec, generation: int) -> ReplicaLaunch:
        error = ServiceError(code=states.ENVIRONMENT_BUILD_FAILED, message="no such package (on purpose)")
        raise PreparationError(error)

    harness.prepare_override = refuse

    async def scenario() -> None:
        seen = await harness.drive(_record(1), 1, lambda o: o.state == states.FAILED)
        assert seen.error is not None and seen.error.code == states.ENVIRONMENT_BUILD_FAILED
        assert seen.replicas == ()

    _run(harness, scenario)


def test_an_init_that_raises_fails_the_rollout_after_repeated_starts(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {1: FAILING_INIT})

    async def scenario() -> None:
        seen = await harness.drive(_record(1), 1, lambda o: o.state == states.FAILED)
        assert seen.error is not None and seen.error.code == states.ENTRY_SCRIPT_INIT_FAILED
        assert "broken on purpose" in seen.error.details[-1].message  # the replica's traceback
        assert seen.extras["restarts"] >= FAILED_STARTS_LIMIT

    _run(harness, scenario)


def test_a_rollout_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {}, deploy_timeout_s=0.5)

    async def forever(spec: ServiceSpec, generation: int) -> ReplicaLaunch:
        await asyncio.Event().wait()  # an environment build that never ends
        raise AssertionError("unreachable")

    harness.prepare_override = forever

    async def scenario() -> None:
        seen = await harness.drive(_record(1), 1, lambda o: o.state != states.TRANSITIONING)
        assert seen.state == states.UNHEALTHY
        assert seen.error is not None and seen.error.code == states.DEPLOYMENT_TIMED_OUT

    _run(harness, scenario)


def test_a_replica_that_dies_is_restarted_and_the_service_is_healthy_again(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {1: OK_SCORE})

    async def scenario() -> None:
        seen = await harness.drive(_record(1), 1, _healthy_at(1))
        (victim,) = seen.replicas
        os.killpg(int(victim.extras["pid"]), signal.SIGKILL)
        back = await harness.drive(
            _record(1),
            1,
            lambda o: (
                o.state == states.HEALTHY and [r.id for r in o.replicas if r.state == "ready"] != [victim.id]
            ),
        )
        assert back.extras["restarts"] == 1
        assert victim.id not in {r.id for r in back.replicas}

    _run(harness, scenario)


def test_a_frozen_replica_is_killed_by_liveness_only_after_the_initial_delay(tmp_path: Path) -> None:
    """The replica's processes are stopped (SIGSTOP), so its liveness GET / times out; the runner
    kills it after failure_threshold misses, and never probes before initial_delay_seconds from
    the replica's start, as the kubelet does."""
    harness = Harness(tmp_path, {1: OK_SCORE})
    probes = {"period_seconds": 1, "timeout_seconds": 1, "failure_threshold": 2, "initial_delay_seconds": 6}
    record = _record(1)
    record = replace(
        record,
        spec=record.spec.model_copy(update={"deployment": record.spec.deployment.model_copy(update=probes)}),
    )

    async def scenario() -> None:
        started = time.monotonic()
        seen = await harness.drive(record, 1, _healthy_at(1))
        (victim,) = seen.replicas
        os.killpg(int(victim.extras["pid"]), signal.SIGSTOP)
        await harness.drive(record, 1, lambda o: o.extras["restarts"] == 1, deadline_s=120)
        assert time.monotonic() - started >= probes["initial_delay_seconds"]

    _run(harness, scenario)
    assert any("LivenessProbeFailed" in message for _, kind, message in harness.events if kind == "replica")


def test_readiness_needs_success_threshold_answers_in_a_row(tmp_path: Path) -> None:
    """A replica whose /health/ready is served by a loopback server of the test (no process of its
    own: only the probe is exercised) becomes ready at the third 200 in a row, not before."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from modelport.compute.local.replica import Replica

    answers = [200, 503, 200, 200, 200]

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answers.pop(0))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    Thread(target=server.serve_forever, daemon=True).start()
    launch = ReplicaLaunch(
        python=Path(sys.executable),
        app_root=tmp_path,
        entry_script="score.py",
        model_dir=tmp_path,
        env={},
        log_path=tmp_path / "log",
    )
    replica = Replica("probe-only", 1, launch, port=server.server_address[1])

    async def probe() -> list[bool]:
        async with httpx.AsyncClient() as client:
            return [await replica.check_ready(client, success_threshold=3) for _ in range(5)]

    try:
        assert asyncio.run(probe()) == [False, False, False, False, True]
    finally:
        server.shutdown()
        server.server_close()
    assert replica.state == "ready"
