"""Reconciling one local service: its generations, replicas, rollouts, restarts and observed state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelport.compute.local.replica import Replica, ReplicaLaunch, log_tail
from modelport.frontend.routes import ReplicaTarget
from modelport.service import states
from modelport.service.driver import Observation, ReplicaObservation
from modelport.service.spec import ServiceSpec
from modelport.service.states import ErrorDetail, ServiceError
from modelport.service.store import ServiceRecord

log = logging.getLogger("modelport.agent")

RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# Consecutive failed starts (never ready) after which a rollout is declared failed.
FAILED_STARTS_LIMIT = 2
DRAIN_TIMEOUT_S = 30.0
DEFAULT_DEPLOY_TIMEOUT_S = 600.0

Prepare = Callable[[ServiceSpec, int], Coroutine[Any, Any, ReplicaLaunch]]
Emit = Callable[[str, int, str, str, dict[str, Any] | None], Awaitable[None]]


class PreparationError(Exception):
    """Getting a generation ready to run failed (environment build, model download)."""

    def __init__(self, error: ServiceError, log_text: str = "") -> None:
        super().__init__(error.message)
        self.error = error
        self.log_text = log_text


@dataclass
class Rollout:
    """One generation of the service being prepared, rolled out, or served."""

    generation: int
    spec: ServiceSpec
    first_seen: float = field(default_factory=time.monotonic)
    launch: ReplicaLaunch | None = None
    error: ServiceError | None = None
    task: asyncio.Task[ReplicaLaunch] | None = None
    completed: bool = False
    failed_starts: int = 0
    restarts: int = 0
    next_start_at: float = 0.0
    last_failure: ServiceError | None = None


class ServiceRunner:
    """Owns the replicas of one service inside the local agent."""

    def __init__(
        self,
        name: str,
        prepare: Prepare,
        emit: Emit,
        in_flight: Callable[[str], int],
        deploy_timeout_s: float = DEFAULT_DEPLOY_TIMEOUT_S,
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._prepare = prepare
        self._emit = emit
        self._in_flight = in_flight
        self._deploy_timeout_s = deploy_timeout_s
        self._on_exit = on_exit
        self._watchers: set[asyncio.Task[None]] = set()
        self.rollout: Rollout | None = None
        self.serving: Rollout | None = None  # the generation traffic goes to
        self.replicas: list[Replica] = []
        self._draining: list[tuple[Replica, float, int]] = []  # replica, deadline, pass it started in
        self._pass = 0
        self._last_live_check = 0.0
        self._counter = 0
        self.desired = 0

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, record: ServiceRecord, desired: int, client: httpx.AsyncClient) -> None:
        """Move the service one step towards ``record`` with ``desired`` replicas."""
        self._pass += 1
        self.desired = desired
        if self.rollout is None or record.generation != self.rollout.generation:
            await self._begin(record)
        rollout = self.rollout
        assert rollout is not None
        if rollout.launch is None and rollout.error is None:
            await self._collect_preparation(rollout)
        if rollout.launch is None:
            return
        await self._collect_exits(rollout)
        await self._check_readiness(client, rollout.spec.deployment.success_threshold)
        self._check_memory()
        await self._check_liveness(client, rollout.spec)
        await self._start_missing(rollout)
        await self._scale_down(rollout)
        await self._complete_rollout(rollout)
        await self._finish_draining()

    async def _begin(self, record: ServiceRecord) -> None:
        previous = self.rollout
        if previous is not None and previous.task is not None and not previous.task.done():
            previous.task.cancel()
        self.rollout = Rollout(record.generation, record.spec)
        self.rollout.task = asyncio.create_task(self._prepare(record.spec, record.generation))
        await self._emit(
            self.name, record.generation, "operation", "Preparing environment, models and code", None
        )

    async def _collect_preparation(self, rollout: Rollout) -> None:
        task = rollout.task
        if task is None or not task.done():
            return
        try:
            rollout.launch = task.result()
        except PreparationError as exc:
            rollout.error = exc.error
            await self._emit(self.name, rollout.generation, "error", exc.error.message, exc.error.to_dict())
            return
        except Exception as exc:  # an unexpected failure must still become a visible state
            log.exception("preparing %s generation %d failed", self.name, rollout.generation)
            rollout.error = ServiceError(
                code=states.DEPLOYMENT_FAILED, message=f"Preparing the service failed: {exc}"
            )
            await self._emit(self.name, rollout.generation, "error", rollout.error.message, None)
            return
        await self._emit(self.name, rollout.generation, "operation", "Starting replicas", None)

    def _of(self, generation: int) -> list[Replica]:
        return [r for r in self.replicas if r.generation == generation]

    async def _collect_exits(self, rollout: Rollout) -> None:
        for replica in list(self.replicas):
            if replica.state == "stopping" or not replica.poll_exit():
                continue
            self.replicas.remove(replica)
            failure = self._failure_of(replica)
            owner = rollout if replica.generation == rollout.generation else self.serving
            if owner is not None:
                owner.restarts += 1
                if not replica.ever_ready:
                    owner.failed_starts += 1
                owner.last_failure = failure
                delay = RESTART_BACKOFF_S[min(owner.restarts - 1, len(RESTART_BACKOFF_S) - 1)]
                owner.next_start_at = time.monotonic() + delay
            await self._emit(self.name, replica.generation, "replica", failure.message, failure.to_dict())

    async def _watch(self, replica: Replica) -> None:
        # A replica that dies must leave the routing table at once, not at the next pass: until
        # then the front end would send it requests that can only fail.
        assert replica.process is not None
        await replica.process.wait()
        if replica.poll_exit():
            self._on_exit()

    def _failure_of(self, replica: Replica) -> ServiceError:
        tail = log_tail(replica.launch.log_path)
        evidence = ErrorDetail(code="LogTail", message=tail.strip() or "(no output)")
        if replica.exit_reason == "OOMKilled":
            limit = replica.launch.memory_limit_bytes or 0
            return ServiceError(
                code=states.OOM_KILLED,
                message=f"Replica {replica.replica_id} used more than its memory limit "
                f"({limit / 2**30:.2f} GB) and was killed. Fix: raise memory_gb_limit, or make the model "
                "use less memory.",
                details=(evidence,),
            )
        if not replica.ever_ready:
            return ServiceError(
                code=states.ENTRY_SCRIPT_INIT_FAILED,
                message=f"Replica {replica.replica_id} exited with code {replica.exit_code} before it was "
                "ready: the entry script's init() failed or the script could not be loaded. The traceback "
                "is in the details and in get_logs().",
                details=(evidence,),
            )
        reason = replica.exit_reason or f"exit code {replica.exit_code}"
        return ServiceError(
            code=states.CRASH_LOOP_BACK_OFF,
            message=f"Replica {replica.replica_id} stopped unexpectedly ({reason}) and is being restarted.",
            details=(evidence,),
        )

    async def _check_readiness(self, client: httpx.AsyncClient, success_threshold: int) -> None:
        starting = [r for r in self.replicas if r.state == "starting"]
        results = await asyncio.gather(*(r.check_ready(client, success_threshold) for r in starting))
        for replica, ready in zip(starting, results, strict=True):
            if ready:
                owner = (
                    self.rollout if self.rollout and replica.generation == self.rollout.generation else None
                )
                if owner is not None:
                    owner.failed_starts = 0
                await self._emit(
                    self.name, replica.generation, "replica", f"Replica {replica.replica_id} is ready", None
                )

    def _check_memory(self) -> None:
        for replica in self.replicas:
            replica.check_memory()

    async def _check_liveness(self, client: httpx.AsyncClient, spec: ServiceSpec) -> None:
        config = spec.deployment
        now = time.monotonic()
        if now - self._last_live_check < config.period_seconds:
            return
        self._last_live_check = now
        # As the kubelet does: no liveness probe before initial_delay_seconds from the replica's start.
        ready = [
            r
            for r in self.replicas
            if r.state == "ready" and now - r.started_at >= config.initial_delay_seconds
        ]
        await asyncio.gather(
            *(r.check_live(client, float(config.timeout_seconds), config.failure_threshold) for r in ready)
        )

    async def _start_missing(self, rollout: Rollout) -> None:
        assert rollout.launch is not None
        target = self.desired
        running = [r for r in self._of(rollout.generation) if r.state in ("starting", "ready")]
        if len(running) >= target or time.monotonic() < rollout.next_start_at:
            return
        for _ in range(target - len(running)):
            self._counter += 1
            replica = Replica(
                f"{self.name}-g{rollout.generation}-r{self._counter}", rollout.generation, rollout.launch
            )
            await replica.start()
            self.replicas.append(replica)
            watcher = asyncio.create_task(self._watch(replica))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
            await self._emit(
                self.name,
                rollout.generation,
                "replica",
                f"Started replica {replica.replica_id} (pid {replica.pid})",
                None,
            )

    async def _scale_down(self, rollout: Rollout) -> None:
        if not rollout.completed:
            return
        current = [r for r in self._of(rollout.generation) if r.state in ("starting", "ready")]
        excess = len(current) - self.desired
        # Starting replicas go first, then the most recently started ready ones.
        for replica in sorted(current, key=lambda r: (r.state == "ready", -r.started_at))[: max(0, excess)]:
            self._drain(replica)

    def _drain(self, replica: Replica) -> None:
        replica.state = "stopping"
        self._draining.append((replica, time.monotonic() + DRAIN_TIMEOUT_S, self._pass))

    async def _complete_rollout(self, rollout: Rollout) -> None:
        if rollout.completed:
            return
        ready = [r for r in self._of(rollout.generation) if r.state == "ready"]
        if len(ready) < max(1, self.desired):
            return
        rollout.completed = True
        previous, self.serving = self.serving, rollout
        if previous is not None and previous is not rollout:
            for replica in self._of(previous.generation):
                if replica.state in ("starting", "ready"):
                    self._drain(replica)

    async def _finish_draining(self) -> None:
        still: list[tuple[Replica, float, int]] = []
        for replica, deadline, started in self._draining:
            # The owner pushes the new routing table after each pass: until a pass has gone by,
            # the front end may still send this replica new requests, so "0 in flight" means nothing.
            routed_away = self._pass > started
            if (routed_away and self._in_flight(replica.replica_id) == 0) or time.monotonic() > deadline:
                await replica.stop()
                with contextlib.suppress(ValueError):
                    self.replicas.remove(replica)
            else:
                still.append((replica, deadline, started))
        self._draining = still

    # ------------------------------------------------------------------ reporting
    def current_count(self) -> int:
        """Replicas of the newest generation that run or are starting (the autoscaler's "current")."""
        if self.rollout is None:
            return 0
        return sum(1 for r in self._of(self.rollout.generation) if r.state in ("starting", "ready"))

    def routes(self) -> tuple[ReplicaTarget, ...]:
        """Ready replicas that receive traffic: the serving generation's, or the rollout's once done."""
        generations = {g.generation for g in (self.serving, self.rollout) if g is not None and g.completed}
        if self.serving is None or not self.serving.completed:
            generations = {self.rollout.generation} if self.rollout else set()
        return tuple(
            ReplicaTarget(r.replica_id, r.base_url, r.unix_socket)
            for r in self.replicas
            if r.state == "ready" and r.generation in generations
        )

    def observation(self) -> Observation:
        """What the runner knows now: the generation, its state and error, the replicas."""
        generation, state, error = self._state()
        return Observation(
            generation=generation,
            state=state,
            error=error,
            desired_replicas=self.desired,
            ready_replicas=len(self.routes()),
            replicas=tuple(ReplicaObservation.from_json(r.describe()) for r in self.replicas),
            extras={"restarts": self.rollout.restarts if self.rollout else 0},
        )

    def _state(self) -> tuple[int, str, ServiceError | None]:
        """(observed generation, state, error)."""
        rollout = self.rollout
        if rollout is None:
            return 0, states.TRANSITIONING, None
        if rollout.error is not None:
            return rollout.generation, states.FAILED, rollout.error
        ready = [r for r in self._of(rollout.generation) if r.state == "ready"]
        if rollout.failed_starts >= FAILED_STARTS_LIMIT and not ready:
            error = self._crash_loop_error(rollout)
            return rollout.generation, (states.UNHEALTHY if rollout.completed else states.FAILED), error
        if rollout.completed:
            if ready:
                return rollout.generation, states.HEALTHY, None
            return rollout.generation, states.UNHEALTHY, rollout.last_failure
        if time.monotonic() - rollout.first_seen > self._deploy_timeout_s:
            return (
                rollout.generation,
                states.UNHEALTHY,
                ServiceError(
                    code=states.DEPLOYMENT_TIMED_OUT,
                    status_code=504,
                    message=f"Timed out waiting for the local deployment to complete after "
                    f"{self._deploy_timeout_s:.0f} s: {len(ready)} of {max(1, self.desired)} replicas ready.",
                ),
            )
        return rollout.generation, states.TRANSITIONING, None

    def _crash_loop_error(self, rollout: Rollout) -> ServiceError:
        cause = rollout.last_failure
        loop_detail = ErrorDetail(
            code=states.CRASH_LOOP_BACK_OFF,
            message=f"The replica was restarted {rollout.restarts} time(s) and never became ready.",
        )
        if cause is None:
            return ServiceError(
                code=states.CRASH_LOOP_BACK_OFF, message=loop_detail.message, details=(loop_detail,)
            )
        return cause.model_copy(update={"details": (loop_detail, *cause.details)})

    async def stop_all(self) -> None:
        """Stop every replica (service deleted, or the agent shutting down)."""
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*(r.stop() for r in self.replicas))
        self.replicas.clear()
        self._draining.clear()
        if self.rollout is not None and self.rollout.task is not None:
            self.rollout.task.cancel()


def remove_tree(path: Path) -> None:
    """Remove a generation's materialised files (ignoring what is already gone)."""
    shutil.rmtree(path, ignore_errors=True)
