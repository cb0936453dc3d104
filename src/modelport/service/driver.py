"""The target contract: what every compute target implements, what it reports, and how one is found.

A target *driver* turns a service's stored desired state (a :class:`~modelport.service.spec.ServiceSpec`
generation) into running replicas and reports what it sees as an :class:`Observation`. Both
targets reconcile the same way (controller-runtime's level-based loop): whoever observes a
service compares the stored generation with what the target last applied and moves it one step
closer (the local agent on each pass, the Kubernetes driver on each ``observe``); a failed step
is retried with back-off, a permanent failure is recorded as the service's error.

Drivers are registered by compute type with a builder that imports the target's module only when
a service of that type is touched (MLflow's store registry): the CLI and the local target never
import the Kubernetes client. :func:`record_observation` is the one place that stores an
observation and the state-change event.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.errors import ComputeTargetException
from modelport.service import store as service_store
from modelport.service.states import ServiceError

if TYPE_CHECKING:
    from modelport.workspace import Workspace


class ReplicaObservation(BaseModel):
    """One replica as its target saw it (a local process, a pod)."""

    model_config = ConfigDict(frozen=True)

    id: str  # replica id locally, pod name on Kubernetes
    generation: int | None  # the service generation it runs (None: unknown, e.g. a foreign pod)
    state: str  # "starting", "ready", "stopping", "exited" (locally); "ready" or the pod phase, lower-case
    extras: dict[str, Any] = {}  # the target's own facts (pid and port; pod IP and restarts)

    def to_json(self) -> dict[str, Any]:
        """The stored form: the typed fields, then the target's own facts."""
        return {"id": self.id, "generation": self.generation, "state": self.state, **self.extras}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplicaObservation:
        """Parse the stored form."""
        rest = {k: v for k, v in data.items() if k not in ("id", "generation", "state")}
        return cls(
            id=str(data["id"]), generation=data.get("generation"), state=str(data["state"]), extras=rest
        )


class Observation(BaseModel):
    """What a target last saw of a service: the generation it looked at, the state and the replicas.

    Stored as the service's status; ``Webservice.observed`` is :meth:`detail` (``deploymentStatus``
    in ``service show``).
    """

    model_config = ConfigDict(frozen=True)

    generation: int  # the service generation this observation is about
    state: str
    error: ServiceError | None = None
    desired_replicas: int = 0
    ready_replicas: int = 0
    replicas: tuple[ReplicaObservation, ...] = ()
    auth_digest: str | None = None  # the auth settings the target's front end applies
    extras: dict[str, Any] = {}  # target-specific (local: ports, autoscaling; Kubernetes: rollout, events)

    def detail(self) -> dict[str, Any]:
        """The JSON form stored beside the state (camelCase, as ``service show`` prints it)."""
        detail: dict[str, Any] = {
            "desiredReplicas": self.desired_replicas,
            "readyReplicas": self.ready_replicas,
            "replicas": [r.to_json() for r in self.replicas],
        }
        if self.auth_digest is not None:
            detail["authDigest"] = self.auth_digest
        return {**detail, **self.extras}

    @classmethod
    def from_status(cls, status: service_store.ServiceStatus) -> Observation:
        """The stored status as an observation (older rows may lack the typed keys)."""
        detail = dict(status.detail)
        replicas = detail.pop("replicas", None)
        return cls(
            generation=status.observed_generation,
            state=status.state,
            error=status.error,
            desired_replicas=int(detail.pop("desiredReplicas", 0) or 0),
            ready_replicas=int(detail.pop("readyReplicas", 0) or 0),
            replicas=tuple(ReplicaObservation.from_json(r) for r in replicas)
            if isinstance(replicas, list)
            else (),
            auth_digest=detail.pop("authDigest", None),
            extras=detail,
        )


def record_observation(
    workspace: Workspace, name: str, observation: Observation, previous: Observation | None
) -> bool:
    """Store ``observation`` unless it equals ``previous``; add a ``state`` event when the state
    changed. True when something was written. Every target records through here."""
    if previous == observation:
        return False
    if (
        previous is None
        or previous.state != observation.state
        or previous.generation != observation.generation
    ):
        error = observation.error
        message = f"Service is {observation.state}" + (f": {error.code}" if error else "")
        service_store.add_event(workspace, name, observation.generation, "state", message)
    service_store.write_status(
        workspace,
        name,
        observed_generation=observation.generation,
        state=observation.state,
        error=observation.error,
        detail=observation.detail(),
    )
    return True


class TargetDriver(Protocol):
    """The operations every compute target implements; one driver serves one compute target."""

    compute_type: ClassVar[str]

    def check(self, workspace: Workspace, config: EffectiveDeploymentConfig) -> None:
        """Refuse what this target cannot run, before anything is stored (``UserErrorException``)."""

    def submit(self, workspace: Workspace, name: str) -> None:
        """Hand the service's newest stored generation (or new keys) to the target.

        Returns once the target has it or has recorded why not; a failure worth retrying is
        retried by the next :meth:`observe`.
        """

    def observe(self, workspace: Workspace, record: service_store.ServiceRecord) -> ServiceError | None:
        """Move the service one step towards ``record`` where this caller must, and record what the
        target shows (:func:`record_observation`). Returns why the target cannot serve right now."""

    def target_problem(self, workspace: Workspace) -> ServiceError | None:
        """Why no service of this target can be served right now, found without side effects."""

    def endpoint(self, workspace: Workspace, record: service_store.ServiceRecord | None = None) -> str | None:
        """The base URL of the front end serving ``record`` (default: this caller's), ``None`` while
        it has none."""

    def logs(self, workspace: Workspace, name: str, generation: int, num_lines: int, init: bool) -> str:
        """The replicas' output (``init``: the preparation's: environment build, model download)."""

    def target_events(self, workspace: Workspace, name: str) -> list[service_store.ServiceEvent]:
        """The service's events that the target keeps itself rather than in the workspace (a
        cluster's Events: the in-cluster front end's autoscale decisions, the kubelet's restarts
        and kills), oldest first; ``generation`` 0 where an event belongs to none."""

    def delete(self, workspace: Workspace, name: str) -> None:
        """Stop the service (already marked deleting), remove what it owns, forget it; waits."""


DriverBuilder = Callable[[str], TargetDriver]


def _lazy(module: str, attribute: str) -> DriverBuilder:
    """A builder that imports ``module`` on first use (a target's dependencies load only when used)."""

    def build(target: str) -> TargetDriver:
        driver: TargetDriver = getattr(importlib.import_module(module), attribute)(target)
        return driver

    return build


_BUILDERS: dict[str, DriverBuilder] = {
    "local": _lazy("modelport.compute.local.driver", "LocalDriver"),
    "kubernetes": _lazy("modelport.compute.kubernetes.driver", "KubernetesDriver"),
}


def register_driver(compute_type: str, builder: DriverBuilder) -> None:
    """Make ``builder(target_name)`` the driver of ``compute_type`` (where a new target plugs in)."""
    _BUILDERS[compute_type] = builder


def driver_for(compute_type: str, target: str) -> TargetDriver:
    """The driver of ``compute_type`` for the compute target named ``target``."""
    builder = _BUILDERS.get(compute_type)
    if builder is None:
        valid = ", ".join(sorted(_BUILDERS))
        raise ComputeTargetException(f"Compute type {compute_type!r} is not supported; use one of: {valid}.")
    return builder(target)
