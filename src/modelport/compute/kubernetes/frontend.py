"""The front end in the cluster: ``python -m modelport.compute.kubernetes.frontend``.

The same :class:`~modelport.frontend.server.FrontEnd` as the local target (auth, queue,
timeouts, status codes, metrics), owned here by a controller that reads the services namespace
through the API instead of the workspace store, and the same autoscaler
(:class:`~modelport.service.autoscaling.ReplicaPlanner`) applied through each Deployment's
scale subresource. ``attach`` installs it as the ``modelport-frontend`` Deployment in the system
namespace (``frontend_manifests.frontend_deployment``).

Configuration: ``MODELPORT_SERVICES_NAMESPACE`` and ``MODELPORT_FRONTEND_PORT`` (as the manifest
sets them) or ``--namespace`` / ``--port``; ``--host`` (default ``0.0.0.0``). Credentials: in a
pod, the ServiceAccount's (lightkube's ``KubeConfig.from_env`` tries the in-cluster files first,
then ``$KUBECONFIG``, then ``~/.kube/config``); ``--kubeconfig PATH [--context NAME]`` names a
file for running outside a cluster.

Decisions, with the reasons:

* **Discovery from Pods, not Endpoints.** A pod carries what the front end needs directly: the
  kubelet's Ready condition, its IP, its uid (the replica id under which in-flight requests are
  counted while a replica drains) and whether it is terminating. Endpoints are a second copy
  written by the endpoints controller after it sees the pod, so they lag by one more controller
  hop (plus its batching under load), and their validation refuses addresses pods may have: a
  1.20 API server rejects a loopback pod IP in Endpoints ("may not be in the loopback range")
  while accepting it in the pod's status. The Role therefore grants pods, not endpoints.
* **List, then watch from the list's resourceVersion**, per kind (Deployments, keys Secrets,
  Pods), selected by the service labels so that nothing else (e.g. the artifact store's
  credentials) reaches this process. Any error, a 410 Gone included, means a fresh list after a
  back-off (0.5 s doubling to 30 s); every 5 minutes the list is redone anyway (a resync that
  also bounds a connection that died silently). The routing table is rebuilt from the three
  caches whenever one changes (``routes.build_table``) and pushed only when it differs.
* **Health.** The listener opens only once the first full list of all three kinds has been
  read: before that the front end would answer 404 for services it has not seen. Until then the
  readiness probe (``GET /``) is refused, so the cluster sends it no traffic; if the API can
  never be read (RBAC, network) the liveness probe restarts it, which shows as a crash loop.
  Once listening, ``GET /`` answers ``{"status": "Healthy", "services": <count>}``.
* **Autoscaling** with no HorizontalPodAutoscaler, so it works on every supported version and
  needs no metrics API: each refresh period the service's planner gets ``FrontEnd.load`` and the
  Deployment's ``spec.replicas``; a different count is written with a merge patch to
  ``deployments/<name>/scale`` (field manager ``modelport-frontend``) and recorded as a
  ``Normal`` Event with reason ``Autoscale`` on the Deployment (best effort). With autoscaling
  off the front end never writes the count (``apply`` owns it). ``MODELPORT_AUTOSCALE_SCALE_DOWN_DELAY_S``
  shortens the scale-down delay as on the local target.
* **Several replicas, one decider.** Every replica serves traffic; only the holder of the
  ``modelport-frontend-leader`` Lease in ``--lease-namespace`` (``MODELPORT_FRONTEND_NAMESPACE``,
  set by the Deployment: the system namespace) writes replica counts
  (:mod:`~modelport.compute.kubernetes.election`, :mod:`~modelport.compute.kubernetes.frontend_leader`).
  A replica that stops leading drops its planners, and one that starts leading plans afresh:
  its first decisions can scale up at once but scale down only after a full scale-down delay
  of its own observation, so a hand-over never shrinks a service on a stale view. Every replica
  reports its load each second (:mod:`~modelport.compute.kubernetes.frontend_load`) and the
  leader plans from its own plus the others' fresh reports. Without a
  lease namespace (a front end run by hand) the process decides alone, and says so.
* **Tokens.** Each service's tokens are verified with its own ``tokenSecret`` from its keys
  Secret, exactly as on the local target, so rotating one service's secret touches no other.
  The cluster-wide key in the token-signing Secret attach creates is not given to the front end:
  nothing it verifies is signed with it (docs/decisions.md). Revoking a service's tokens is a new
  ``tokenSecret`` in that Secret: the watch delivers it and the old tokens stop verifying.
* **Named keys** come from the keys Secret's ``namedKeys`` (hashes and limits). Their rate and
  quota counts live in this process: with several front-end replicas each enforces the full
  limits, so a key gets at most that many times its limits (docs/decisions.md).
* **Stopping.** SIGTERM (or SIGINT): ``GET /`` answers 503, the listener closes, idle
  keep-alive connections close, and requests in flight (queued ones included) get up to
  ``--graceful_timeout`` / ``MODELPORT_GRACEFUL_TIMEOUT`` seconds (default 30) to be answered,
  each with ``Connection: close``; any still unanswered then gets a 503 JSON, and the process
  exits 0. The Deployment sets the variable, a ``preStop`` delay that lets the Service stop
  sending new connections first, and a termination grace period above both
  (``frontend_manifests.frontend_deployment``).

Logs (stderr): one line per change of the table (service added or removed, its ready replica
count, its auth or settings, why a service is not served) and per autoscaling decision.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.client import LabelSelector
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Pod, Secret
from lightkube.types import PatchType

from modelport.compute.kubernetes.frontend_leader import LeaderElection
from modelport.compute.kubernetes.frontend_load import LoadReporter, combined
from modelport.compute.kubernetes.frontend_manifests import FRONTEND_NAME, FRONTEND_PORT
from modelport.compute.kubernetes.load_reports import LoadCombiner
from modelport.compute.kubernetes.objects import AUTOSCALE_EVENT_REASON
from modelport.compute.kubernetes.routes import SERVICE_SELECTOR, ClusterService, build_table
from modelport.errors import ModelportError
from modelport.frontend.autoscaler import LoadSample
from modelport.frontend.routes import ServiceRoute
from modelport.frontend.server import FrontEnd
from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S, GRACEFUL_TIMEOUT_ENV, graceful_timeout
from modelport.service.autoscaling import ReplicaPlanner

log = logging.getLogger("modelport.frontend.cluster")

NAMESPACE_ENV = "MODELPORT_SERVICES_NAMESPACE"
PORT_ENV = "MODELPORT_FRONTEND_PORT"
LEASE_NAMESPACE_ENV = "MODELPORT_FRONTEND_NAMESPACE"
IDENTITY_ENV = "MODELPORT_FRONTEND_IDENTITY"
FIELD_MANAGER = FRONTEND_NAME  # names the writer of scale changes (audit log; managedFields from 1.22)
RESYNC_S = 300.0
# lightkube types a selector as a dict of wider values (strings, None, operators); dict is invariant.
_SELECTOR: LabelSelector = dict(SERVICE_SELECTOR)
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
LOOP_S = 0.25  # how often the autoscaler runs at most (each planner keeps its own refresh period)
# After a scale patch, the count we wrote stands in for spec.replicas until the Deployment watch
# shows it (events older than the patch may still arrive); past this, the watch is believed.
SCALE_CONFIRM_S = 10.0


@dataclass(frozen=True)
class Options:
    """Where the front end listens, which namespace it serves, how it reaches the API."""

    namespace: str
    host: str = "0.0.0.0"
    port: int = FRONTEND_PORT
    kubeconfig: Path | None = None
    context: str | None = None
    graceful_timeout_s: int = DEFAULT_GRACEFUL_TIMEOUT_S
    lease_namespace: str | None = None  # None: no election, this process decides alone
    identity: str = ""  # this replica's name in the Lease (the pod's name in a cluster)


def parse_options(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> Options:
    """Options from the command line, with the environment the front end's Deployment sets as defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m modelport.compute.kubernetes.frontend",
        description="Serve the modelport services of one Kubernetes namespace (the in-cluster front end).",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubeconfig file; default: in-cluster credentials, then $KUBECONFIG, then ~/.kube/config",
    )
    parser.add_argument("--context", help="context of the kubeconfig (default: its current context)")
    parser.add_argument(
        "--namespace",
        default=environ.get(NAMESPACE_ENV),
        help=f"the services namespace (default: ${NAMESPACE_ENV})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=environ.get(PORT_ENV, str(FRONTEND_PORT)),
        help=f"listening port (default: ${PORT_ENV}, else {FRONTEND_PORT})",
    )
    parser.add_argument("--host", default="0.0.0.0", help="listening address (default: 0.0.0.0)")
    parser.add_argument(
        "--graceful_timeout",
        "--graceful-timeout",
        help=f"seconds requests in flight get to finish after SIGTERM (default: ${GRACEFUL_TIMEOUT_ENV}, "
        f"else {DEFAULT_GRACEFUL_TIMEOUT_S})",
    )
    parser.add_argument(
        "--lease-namespace",
        default=environ.get(LEASE_NAMESPACE_ENV),
        help=f"namespace of the leader Lease (default: ${LEASE_NAMESPACE_ENV}; none: decide alone)",
    )
    parser.add_argument(
        "--identity",
        default=environ.get(IDENTITY_ENV) or socket.gethostname(),
        help=f"this replica's name in the Lease (default: ${IDENTITY_ENV}, else the host name)",
    )
    args = parser.parse_args(argv)
    if not args.namespace:
        parser.error(f"no services namespace: pass --namespace or set {NAMESPACE_ENV}")
    errors: list[str] = []
    grace = graceful_timeout(args.graceful_timeout, environ, errors)
    if errors:
        parser.error(errors[0])
    return Options(
        args.namespace,
        args.host,
        args.port,
        args.kubeconfig,
        args.context,
        grace,
        args.lease_namespace or None,
        args.identity,
    )


def kube_config(options: Options) -> SingleConfig:
    """The API server and credentials: ``--kubeconfig`` if given, else in-cluster, else the usual files."""
    config = KubeConfig.from_file(options.kubeconfig) if options.kubeconfig else KubeConfig.from_env()
    single = config.get(context_name=options.context)
    if single is None:  # only with a default, which is not passed; kept for the type
        raise ConfigError("no kubeconfig context")
    return single


class Watched:
    """The objects of one kind in the services namespace, kept current by list + watch."""

    def __init__(self, client: AsyncClient, kind: Any, namespace: str, on_change: Callable[[], None]) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.on_change = on_change
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False  # a full list has been read at least once
        self._delay = BACKOFF_FIRST_S

    async def run(self) -> None:
        """List and watch until cancelled; every failure leads to a fresh list after a back-off."""
        while True:
            resync = asyncio.timeout(RESYNC_S)
            try:
                async with resync:
                    await self._list_and_watch()
            except TimeoutError:
                if resync.expired():
                    continue  # the periodic resync: list again at once
                self._failed("timed out")
            except Exception as exc:  # API errors (410 Gone included), transport errors
                self._failed(_describe(exc))
            else:
                continue
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, BACKOFF_MAX_S)

    def _failed(self, why: str) -> None:
        log.warning("%s: %s; listing again in %.1f s", self.kind.__name__, why, self._delay)

    async def _list_and_watch(self) -> None:
        listing = self.client.list(self.kind, namespace=self.namespace, labels=_SELECTOR)
        # The whole list replaces the cache: objects deleted while the watch was down disappear.
        self.objects = {obj.metadata.name: obj.to_dict() async for obj in listing}
        self.synced = True
        self._delay = BACKOFF_FIRST_S
        self.on_change()
        watch = self.client.watch(
            self.kind,
            namespace=self.namespace,
            labels=_SELECTOR,
            resource_version=listing.resourceVersion,
        )
        async for kind, obj in watch:
            if kind == "DELETED":
                self.objects.pop(obj.metadata.name, None)
            else:
                self.objects[obj.metadata.name] = obj.to_dict()
            self.on_change()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ClusterFrontEnd:
    """Owns a FrontEnd: routes from the services namespace, replica counts through the scale subresource."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        frontend: FrontEnd,
        graceful_timeout_s: float = DEFAULT_GRACEFUL_TIMEOUT_S,
        election: LeaderElection | None = None,
        lease_namespace: str | None = None,
    ) -> None:
        self.client = client
        self.election = election
        # With an election, every replica reports its load and the leader plans from all of them.
        self.reporter = (
            LoadReporter(client, lease_namespace, election.identity, self._samples, election.clock)
            if election is not None and lease_namespace is not None
            else None
        )
        self._combiners: dict[str, LoadCombiner] = {}
        self.namespace = namespace
        self.frontend = frontend
        self.graceful_timeout_s = graceful_timeout_s
        self.watched = [Watched(client, kind, namespace, self._changed) for kind in (Deployment, Secret, Pod)]
        self.table: dict[str, ClusterService] = {}
        self.problems: dict[str, str] = {}
        self.planners: dict[str, ReplicaPlanner] = {}
        self._routes: dict[str, ServiceRoute] = {}
        self._written: dict[str, tuple[int, float]] = {}  # name → (count patched, believed until)
        self._next_scale: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._dirty = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        """Ask :meth:`run` to stop (signal handler)."""
        self._stopping = True
        self._dirty.set()

    async def run(self) -> None:
        """Read the namespace, listen once everything has been listed, route and scale until stopped."""
        tasks = [asyncio.create_task(w.run(), name=f"watch-{w.kind.__name__}") for w in self.watched]
        if self.election is not None:
            tasks.append(asyncio.create_task(self.election.run(), name="leader-election"))
        if self.reporter is not None:
            tasks.append(asyncio.create_task(self.reporter.run(), name="load-reports"))
        try:
            while not self._stopping and not all(w.synced for w in self.watched):
                await self._wait()
                self._dirty.clear()  # the table is built once, below, from complete lists
            if self._stopping:
                return
            self._refresh()
            await self.frontend.start()
            log.info(
                "listening on http://%s:%d for namespace %s: %d service(s)",
                self.frontend.host,
                self.frontend.port,
                self.namespace,
                len(self.table),
            )
            while not self._stopping:
                await self._wait()
                if self._dirty.is_set():
                    self._dirty.clear()
                    self._refresh()
                if self.election is None or self.election.is_leader:
                    await self._autoscale()
                else:
                    self._forget_plans()
        finally:
            log.info("stopping: requests in flight get up to %g s", self.graceful_timeout_s)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.election is not None:  # hand over first: the drain below may take a while
                await self.election.release()
            if self.reporter is not None:
                await self.reporter.remove()
            await self.frontend.stop(self.graceful_timeout_s)
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), LOOP_S)

    def _changed(self) -> None:
        self._dirty.set()

    # -- the routing table ------------------------------------------------------------------
    def _refresh(self) -> None:
        deployments, secrets, pods = (w.objects.values() for w in self.watched)
        table, problems = build_table(deployments, secrets, pods)
        self._log_changes(table, problems)
        self.table, self.problems = table, problems
        routes = {name: service.route for name, service in table.items()}
        if routes != self._routes:
            self._routes = routes
            self.frontend.set_routes(routes)
        for name in set(self.planners) - set(table):
            self.planners.pop(name, None)
            self._combiners.pop(name, None)
            self._written.pop(name, None)
            self._next_scale.pop(name, None)

    def _log_changes(self, table: Mapping[str, ClusterService], problems: Mapping[str, str]) -> None:
        old = self.table
        for name in sorted(table.keys() - old.keys()):
            route = table[name].route
            log.info(
                "service %s added: auth %s, %d ready replica(s)", name, route.auth.mode, len(route.replicas)
            )
        for name in sorted(old.keys() - table.keys()):
            log.info("service %s removed", name)
        for name in sorted(table.keys() & old.keys()):
            before, after = old[name].route, table[name].route
            if before.replicas != after.replicas:
                log.info("service %s: %d ready replica(s)", name, len(after.replicas))
            if before.auth != after.auth:
                log.info(
                    "service %s: auth changed (mode %s, %d named key(s))",
                    name,
                    after.auth.mode,
                    len(after.auth.named_keys),
                )
            settings = ("max_concurrent_per_replica", "max_queue_wait_ms", "scoring_timeout_ms")
            if any(getattr(before, s) != getattr(after, s) for s in settings) or (
                old[name].autoscale != table[name].autoscale
            ):
                log.info("service %s: settings changed", name)
        for name, why in sorted(problems.items()):
            if self.problems.get(name) != why:
                log.warning("service %s is not served: %s", name, why)

    # -- autoscaling -------------------------------------------------------------------------
    def _forget_plans(self) -> None:
        # A follower keeps no plans: the leader's writes change the counts behind them, and a
        # replica that starts leading must observe a full scale-down delay itself.
        self.planners.clear()
        self._written.clear()
        self._next_scale.clear()
        self._combiners.clear()

    def _samples(self) -> list[LoadSample]:
        return [self.frontend.load(name) for name in self.table]

    def _current(self, name: str, service: ClusterService, now: float) -> int:
        # The count last written stands in for spec.replicas until the watch shows it.
        written = self._written.get(name)
        if written is None:
            return service.replicas
        count, until = written
        if service.replicas == count or now > until:
            del self._written[name]
            return service.replicas
        return count

    async def _autoscale(self) -> None:
        for name, service in list(self.table.items()):
            planner = self.planners.setdefault(name, ReplicaPlanner(name))
            now = time.monotonic()
            current = self._current(name, service, now)
            load = combined(self._combiners, self.frontend.load(name), self.reporter)
            desired, decision = planner.plan(service.autoscale, load, current)
            # At most one write per refresh period, also when a write failed or was undone.
            write = (
                service.autoscale.enabled and desired != current and now >= self._next_scale.get(name, 0.0)
            )
            if not write:
                if decision is not None:  # a decision that needs no write, e.g. holding after a restart
                    log.info(
                        "service %s autoscale: %s at %d replica(s): %s",
                        name,
                        decision.reason,
                        desired,
                        decision.message,
                    )
                continue
            self._next_scale[name] = now + service.autoscale.refresh_seconds
            # Without a fresh decision this restores the planner's count (a write that failed, or
            # a count changed behind its back), for the reason of its last decision.
            why = decision.message if decision else (planner.last_decision or {}).get("message", "")
            await self._scale(name, service, current, desired, str(why))

    async def _scale(self, name: str, service: ClusterService, current: int, desired: int, why: str) -> None:
        try:
            await self.client.patch(
                Deployment.Scale,
                name,
                {"spec": {"replicas": desired}},
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
            )
        except Exception as exc:
            log.warning("service %s: scaling %d → %d failed: %s", name, current, desired, _describe(exc))
            return
        self._written[name] = (desired, time.monotonic() + SCALE_CONFIRM_S)
        message = f"Scaled from {current} to {desired} replicas: {why}"
        log.info("service %s: %s", name, message)
        self._spawn(self._record_event(name, service.uid, message))

    async def _record_event(self, name: str, uid: str, message: str) -> None:
        # Best effort: an Event that cannot be written loses a record, not a scaling step.
        now = datetime.now(UTC)
        event = Event(
            metadata=ObjectMeta(generateName=f"{name}.", namespace=self.namespace),
            involvedObject=ObjectReference(
                apiVersion="apps/v1", kind="Deployment", name=name, namespace=self.namespace, uid=uid
            ),
            reason=AUTOSCALE_EVENT_REASON,
            message=message,
            type="Normal",
            source=EventSource(component=FRONTEND_NAME),
            reportingComponent=FRONTEND_NAME,
            reportingInstance=socket.gethostname(),
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )
        try:
            await self.client.create(event)
        except Exception as exc:
            log.warning("service %s: could not record the Autoscale event: %s", name, _describe(exc))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def serve(options: Options, config: SingleConfig) -> None:
    """Run the front end until SIGTERM or SIGINT."""
    client = AsyncClient(config=config, namespace=options.namespace, field_manager=FIELD_MANAGER)
    frontend = FrontEnd(host=options.host, port=options.port)
    election = None
    if options.lease_namespace is None:
        log.warning("no lease namespace: this front end makes autoscaling decisions alone (run one replica)")
    else:
        election = LeaderElection(client, options.lease_namespace, options.identity)
    owner = ClusterFrontEnd(
        client, options.namespace, frontend, options.graceful_timeout_s, election, options.lease_namespace
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, owner.stop)
    try:
        await owner.run()
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after a graceful stop, 2 without a usable kubeconfig, 1 when it cannot listen."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # lightkube's client: one line per request
    options = parse_options(argv)
    try:
        config = kube_config(options)
    except (ConfigError, OSError, KeyError) as exc:
        log.error("no Kubernetes credentials: %s", _describe(exc))
        return 2
    # uvloop: the front end forwards every scoring request through this loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(serve(options, config))
        except ModelportError as exc:  # e.g. the port is taken
            log.error("%s", exc)
            return 1
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
