"""The local agent: one background process per workspace and machine that runs its local services.

It runs only the local services deployed from its own machine (:mod:`.machine`); on a shared
workspace database, another machine's agent runs the others. It owns the front end's listener
and the replica processes, reconciles each of its services towards its desired state in the
workspace store, and writes what it observes back. Holding
``agent.lock`` (flock) for its whole life makes it the only agent of the workspace on this
machine; if it is killed (even with SIGKILL) its replicas die with it, and the next agent
brings every service back from the store.

Run as ``python -m modelport.compute.local.agent``; the workspace comes from environment
variables set by :mod:`modelport.compute.local.driver` (so that no secret shows in ``ps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvloop

from modelport.compute.local import tls_store
from modelport.compute.local.cgroups import find_cpu_limiter
from modelport.compute.local.limits import unenforced_limits
from modelport.compute.local.paths import LocalPaths
from modelport.compute.local.ports import PortListeners
from modelport.compute.local.replica import ReplicaLaunch, free_port
from modelport.compute.local.runner import (
    DEFAULT_DEPLOY_TIMEOUT_S,
    PreparationError,
    ServiceRunner,
    remove_tree,
)
from modelport.errors import ModelportError
from modelport.frontend.routes import ServiceRoute, auth_policy, service_route
from modelport.frontend.server import FrontEnd
from modelport.host import current as current_host
from modelport.registry.environment import Environment
from modelport.registry.model import Model
from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S
from modelport.service import replica_contract, states
from modelport.service import store as service_store
from modelport.service.autoscaling import ReplicaPlanner, autoscale_settings
from modelport.service.driver import Observation, record_observation
from modelport.service.machine import agent_setting, frontend_port_setting, this_machine
from modelport.service.spec import ServiceSpec
from modelport.service.states import ErrorDetail, ServiceError
from modelport.workspace import Workspace
from modelport.workspace.config import WorkspaceLocation

if TYPE_CHECKING:
    from modelport.compute.envbuild import EnvironmentBuilder

log = logging.getLogger("modelport.agent")

LOOP_INTERVAL_S = 0.2
HEARTBEAT_INTERVAL_S = 2.0
ENV_NAME = "MODELPORT_AGENT_WORKSPACE"  # JSON: name, metadata_url, artifact_url, storage_options
GIB = 1024**3
# How long a rollout may take before the service is reported Unhealthy with DeploymentTimedOut.
DEPLOY_TIMEOUT_ENV = "MODELPORT_LOCAL_DEPLOY_TIMEOUT_S"


class LocalAgent:
    """Reconciles the workspace's local services and serves them through one front end."""

    def __init__(self, workspace: Workspace, paths: LocalPaths) -> None:
        self.ws = workspace
        self.paths = paths
        self.machine = this_machine()
        self.host = current_host()
        self.cpu_limiter = find_cpu_limiter(self.host)
        self.deploy_timeout_s = float(os.environ.get(DEPLOY_TIMEOUT_ENV, DEFAULT_DEPLOY_TIMEOUT_S))
        # Created on first need: most services reuse a built environment.
        self._builder: EnvironmentBuilder | None = None
        self.runners: dict[str, ServiceRunner] = {}
        self.records: dict[str, service_store.ServiceRecord] = {}
        self.planners: dict[str, ReplicaPlanner] = {}
        self.frontend: FrontEnd | None = None
        self._tls: dict[str, Any] | None = None  # the served certificate's public part, announced
        self._reloads: set[asyncio.Task[None]] = set()
        self._reported: dict[str, Observation] = {}
        self._routes: dict[str, ServiceRoute] = {}
        self.ports: PortListeners | None = None
        self._port_errors: dict[str, str] = {}
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ life
    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then stop every replica."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        # `modelport local start --ssl-...` on a running agent: a new certificate, no restart.
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self.frontend = await self._start_frontend()
        self.ports = PortListeners(self.frontend)
        await asyncio.to_thread(self._forget_stale_observations)
        await asyncio.to_thread(self._announce)
        last_heartbeat = 0.0
        async with httpx.AsyncClient() as client:
            while not self._stopping.is_set():
                try:
                    await self._reconcile_all(client)
                except Exception:  # one bad pass must not kill every service
                    log.exception("reconcile pass failed")
                if time.monotonic() - last_heartbeat > HEARTBEAT_INTERVAL_S:
                    last_heartbeat = time.monotonic()
                    await asyncio.to_thread(self._announce)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), LOOP_INTERVAL_S)
        log.info("stopping: %d service(s)", len(self.runners))
        # Front end first: its requests in flight are answered by replicas still running, and
        # the replicas are stopped once nothing is sent to them any more.
        if self.ports is not None:
            self.ports.close_all()
        await self.frontend.stop(DEFAULT_GRACEFUL_TIMEOUT_S)
        await asyncio.gather(*(runner.stop_all() for runner in self.runners.values()))

    async def _start_frontend(self) -> FrontEnd:
        port_setting = frontend_port_setting(self.machine.id)
        port = await asyncio.to_thread(service_store.get_setting, self.ws, port_setting)
        installed = tls_store.installed(self.paths)
        context = None
        if installed is not None:
            # A pair that went bad since it was installed (expired) stops the agent with the reason,
            # rather than serving the keys over plain HTTP.
            context, info = installed.context()
            self._tls = installed.public(info)
        for candidate in (port, None):
            chosen = int(candidate) if candidate else free_port()
            frontend = FrontEnd(host="127.0.0.1", port=chosen, tls=context)
            try:
                await frontend.start()
            except (OSError, ModelportError) as exc:
                log.warning("front end port %s unavailable (%s); choosing another", chosen, exc)
                continue
            if frontend.port != port:
                await asyncio.to_thread(service_store.set_setting, self.ws, port_setting, frontend.port)
            log.info("front end listening on %s://127.0.0.1:%d", frontend.scheme, frontend.port)
            return frontend
        raise RuntimeError("no port for the front end")

    def _forget_stale_observations(self) -> None:
        # What a previous agent reported died with its replicas: until this agent has seen a
        # service's replicas ready again, the service is Transitioning, not Healthy.
        for record in self._own_services():
            if not record.deleting:
                service_store.write_status(
                    self.ws,
                    record.spec.name,
                    observed_generation=0,
                    state=states.TRANSITIONING,
                    error=None,
                    detail={"note": "the local agent restarted; replicas are starting again"},
                )

    def _own_services(self) -> list[service_store.ServiceRecord]:
        """This machine's local services; one that belongs to no machine yet (deployed before
        machines were recorded) is claimed, so that exactly one agent runs it."""
        own = []
        for record in service_store.list_services(self.ws, "local"):
            if record.machine_id is None and service_store.claim_service(
                self.ws, record.spec.name, self.machine.id, self.machine.name
            ):
                record = replace(record, machine_id=self.machine.id, machine_name=self.machine.name)
            if record.machine_id == self.machine.id:
                own.append(record)
        return own

    def _announce(self) -> None:
        assert self.frontend is not None
        service_store.set_setting(
            self.ws,
            agent_setting(self.machine.id),
            {
                "pid": os.getpid(),
                "port": self.frontend.port,
                "host": self.machine.name,
                "machineId": self.machine.id,
                "heartbeat": datetime.now(UTC).isoformat(),
                "stateDir": str(self.paths.root),
                "tls": self._tls,
            },
        )

    def _on_sighup(self) -> None:
        # The loop keeps only a weak reference to a task: hold it until it is done.
        task = asyncio.get_running_loop().create_task(self._reload_tls())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_tls(self) -> None:
        """Serve new handshakes with the pair installed now; connections open keep theirs."""
        installed = tls_store.installed(self.paths)
        if self.frontend is None or installed is None or self.frontend.scheme != "https":
            log.warning("SIGHUP: no certificate to reload (switching HTTP/HTTPS needs an agent restart)")
            return
        try:
            context, info = installed.context()
        except ModelportError as exc:
            log.error("SIGHUP: certificate not reloaded, the previous one stays: %s", exc)
            return
        self.frontend.set_tls(context)
        self._tls = installed.public(info)
        log.info("front end certificate replaced (sha256 %s)", info.sha256)
        await asyncio.to_thread(self._announce)

    # ------------------------------------------------------------------ reconcile
    async def _reconcile_all(self, client: httpx.AsyncClient) -> None:
        assert self.frontend is not None
        records = await asyncio.to_thread(self._own_services)
        present = {r.spec.name for r in records}
        for name in list(self.runners):
            if name not in present:  # removed behind our back: stop what runs
                await self._forget(name)
        assert self.ports is not None
        # Opened before the replicas are ready, so that Healthy means "answering on its port" too.
        self._port_errors = await self.ports.sync(
            {
                r.spec.name: r.spec.deployment.port
                for r in records
                if r.spec.deployment.port is not None and not r.deleting
            }
        )
        for record in records:
            name = record.spec.name
            if record.deleting:
                await self._delete(name)
                continue
            runner = self.runners.get(name)
            if runner is None:
                runner = self.runners[name] = ServiceRunner(
                    name,
                    self._prepare,
                    self._emit,
                    self.frontend.in_flight,
                    self.deploy_timeout_s,
                    self._push_routes,
                )
                self.planners[name] = ReplicaPlanner(name)
            self.records[name] = record
            desired, decision = self.planners[name].plan(
                autoscale_settings(record.spec.deployment),
                self.frontend.load(name),
                runner.current_count(),
            )
            if decision is not None:
                await self._emit(name, record.generation, "autoscale", decision.message, decision.to_dict())
            await runner.reconcile(record, desired, client)
            # Routes first: once the store says a generation is Healthy, the front end must already
            # send requests to it (a caller that waited for Healthy gets the new code at once).
            self._push_routes()
            await self._report(record, runner)
        self._push_routes()

    def _push_routes(self) -> None:
        """Give the front end the current routing table (unchanged tables are not pushed)."""
        assert self.frontend is not None
        routes = {name: self._route(name) for name in self.runners if name in self.records}
        if routes != self._routes:
            self._routes = routes
            self.frontend.set_routes(routes)

    def _route(self, name: str) -> ServiceRoute:
        # Auth and admission follow the newest desired state at once (a regenerated key must stop
        # working immediately); the replicas are whichever generation currently serves.
        return route_for(self.records[name].spec, self.runners[name].routes())

    async def _report(self, record: service_store.ServiceRecord, runner: ServiceRunner) -> None:
        name = record.spec.name
        observation = runner.observation()
        extras = dict(observation.extras)
        planner = self.planners[name]
        if planner.last_decision is not None:
            extras["autoscale"] = planner.last_decision
        if self.frontend is not None:
            extras["frontendPort"] = self.frontend.port
        if self.ports is not None:
            extras.update(self.ports.describe(name))
        if name in self._port_errors:
            extras["portError"] = self._port_errors[name]
        unenforced = unenforced_limits(record.spec.deployment, self.host, self.cpu_limiter)
        if unenforced:
            extras["limitsNotEnforced"] = list(unenforced)
        observation = observation.model_copy(
            update={"auth_digest": record.spec.auth_digest, "extras": extras}
        )
        previous = self._reported.get(name)
        if previous == observation:
            return
        self._reported[name] = observation
        await asyncio.to_thread(record_observation, self.ws, name, observation, previous)

    async def _delete(self, name: str) -> None:
        await self._forget(name)
        await asyncio.to_thread(service_store.remove_service, self.ws, name)
        await asyncio.to_thread(remove_tree, self.paths.service_dir(name))
        log.info("deleted service %s", name)

    async def _forget(self, name: str) -> None:
        runner = self.runners.pop(name, None)
        self.planners.pop(name, None)
        self.records.pop(name, None)
        self._reported.pop(name, None)
        if runner is not None:
            # Out of the table first, so that the draining replicas get no new request.
            self._push_routes()
            await runner.stop_all()

    async def _emit(
        self, name: str, generation: int, kind: str, message: str, data: dict[str, Any] | None
    ) -> None:
        log.info("%s g%d %s: %s", name, generation, kind, message.splitlines()[0] if message else "")
        await asyncio.to_thread(service_store.add_event, self.ws, name, generation, kind, message, data)

    # ------------------------------------------------------------------ preparation
    async def _prepare(self, spec: ServiceSpec, generation: int) -> ReplicaLaunch:
        return await asyncio.to_thread(self._prepare_sync, spec, generation)

    def _prepare_sync(self, spec: ServiceSpec, generation: int) -> ReplicaLaunch:
        build_log = self.paths.build_log(spec.name, generation)
        build_log.parent.mkdir(parents=True, exist_ok=True)
        with open(build_log, "w", encoding="utf-8") as handle:

            def say(line: str) -> None:
                handle.write(line.rstrip("\n") + "\n")
                handle.flush()
                service_store.add_event(self.ws, spec.name, generation, "build", line.rstrip("\n"))

            app_root = self.paths.generation_dir(spec.name, generation)
            for warning in unenforced_limits(spec.deployment, self.host, self.cpu_limiter):
                say(f"Warning: {warning}")
            python = self._python_for(spec, say)
            self._materialise(spec, generation, app_root, say)
        memory_limit = spec.deployment.memory_gb_limit
        cpu_limit = spec.deployment.cpu_cores_limit
        return ReplicaLaunch(
            python=python,
            app_root=app_root,
            entry_script=spec.source.entry_script,
            model_dir=app_root / replica_contract.model_dir(spec.models),
            env=replica_environment(self.ws.name, spec, app_root),
            log_path=self.paths.log_dir(spec.name) / f"replicas-g{generation}.log",
            memory_limit_bytes=int(memory_limit * GIB) if memory_limit else None,
            cpu_limit_cores=cpu_limit,
            cpu_limiter=self.cpu_limiter,
            socket_dir=self.paths.sockets,
        )

    def _python_for(self, spec: ServiceSpec, say: Any) -> Path:
        if spec.environment is None:
            say(
                f"Using the workspace's own Python ({sys.executable}): the inference config names no "
                "environment"
            )
            return Path(sys.executable)
        from modelport.compute.envbuild import EnvironmentBuilder, EnvironmentBuildError

        if self._builder is None:
            self._builder = EnvironmentBuilder(LocalPaths.environments_cache())
        env = Environment.from_dict(spec.environment.definition)
        say(
            f"Environment {spec.environment.name}:{spec.environment.version} "
            f"({spec.environment.content_hash[:12]})"
        )
        try:
            return self._builder.python_for(env, log=say)
        except EnvironmentBuildError as exc:
            raise PreparationError(
                ServiceError(
                    code=states.ENVIRONMENT_BUILD_FAILED,
                    message=f"Building environment {spec.environment.name}:{spec.environment.version} "
                    f"failed: {exc.message}",
                    details=(ErrorDetail(code="InstallerOutput", message=exc.log_tail),),
                )
            ) from exc

    def _materialise(self, spec: ServiceSpec, generation: int, app_root: Path, say: Any) -> None:
        if app_root.exists():
            remove_tree(app_root)
        app_root.mkdir(parents=True)
        files = service_store.source_file_list(self.ws, spec.name, generation)
        for record in files:
            self.ws.artifact_store.fetch(record.digest, app_root / record.path, record.mode)
        say(f"Unpacked {len(files)} source file(s) into {app_root}")
        for ref in spec.models:
            target = app_root / replica_contract.model_path(ref)
            Model(self.ws, id=ref.id).download(target, exist_ok=True)
            say(f"Downloaded model {ref.id} into {target}")


def route_for(spec: ServiceSpec, replicas: tuple[Any, ...]) -> ServiceRoute:
    """The front end's view of a service: auth from its spec, the rest from its front-end settings."""
    config = spec.deployment
    auth = auth_policy(
        spec.auth_mode, config.primary_key, config.secondary_key, spec.token_secret, spec.named_keys
    )
    return service_route(spec.name, auth, spec.frontend_settings, replicas)


def replica_environment(workspace_name: str, spec: ServiceSpec, app_root: Path) -> dict[str, str]:
    """A local replica's environment: the agent's own (less what is not the replica's), then the
    replica contract's variables, then the GPUs it may use."""
    # The agent's own settings and Azure variables are not the replica's; nor is a Unix socket the
    # agent may have been given (each replica gets its own on the command line).
    hidden = ("MODELPORT_AGENT", "AZUREML_", "MODELPORT_UNIX_SOCKET")
    env = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
    env.update(replica_contract.replica_environment(spec, str(app_root), workspace_name))
    env["PYTHONUNBUFFERED"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(spec.deployment.gpu_cores or 0))
    return env


def _open_workspace() -> Workspace:
    raw = os.environ.get(ENV_NAME)
    if not raw:
        raise SystemExit(
            f"{ENV_NAME} is not set: start the agent with `modelport local start` or by deploying."
        )
    data = json.loads(raw)
    location = WorkspaceLocation(
        name=data["name"],
        metadata_url=data["metadata_url"],
        artifact_url=data.get("artifact_url"),
        storage_options=data.get("storage_options") or {},
    )
    return Workspace(location)


def main() -> int:
    """Entry point: take the workspace's agent lock, or exit quietly if another agent holds it."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health check is noise
    workspace = _open_workspace()
    paths = LocalPaths.for_workspace(workspace.name, workspace.metadata_store.url)
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = open(paths.lock, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another agent already runs this workspace; exiting")
        return 0
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    log.info("local agent for workspace %s started (pid %d)", workspace.name, os.getpid())
    # uvloop: the front end forwards every scoring request through this loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(LocalAgent(workspace, paths).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
