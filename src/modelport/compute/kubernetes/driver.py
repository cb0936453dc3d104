"""The Kubernetes target as seen from the SDK and CLI: apply, observe, read logs, delete.

There is no agent; whoever observes a service reconciles it (``observe``, called by
``update_deployment_state`` and ``wait_for_deployment``), level-based as the local agent does:
a stored generation the cluster has not got yet is applied with server-side apply (``submit``
tries at once), a refusal worth retrying is retried with back-off (``APPLY_BACKOFF_S``), a
permanent one fails the deployment with the cluster's reason; an applied generation is observed
(the Deployment, its pods and events) and recorded. Rollout decisions compare the Deployment's
``generation`` with the one the apply returned, so a stale read never looks rolled out.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from modelport._notes import note
from modelport.compute.imagebuild import ImageBuildError
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply, apply_service, disruption_budget_resource
from modelport.compute.kubernetes.connection import cluster_errors, connect, delete_if_present, get_or_none
from modelport.compute.kubernetes.diagnose import MODEL_FETCH_FAILED, diagnose, replica_failure
from modelport.compute.kubernetes.envimage import (
    ensure_environment_image,
    image_environment,
    prebuilt_environment_image,
    pull_secret_config,
)
from modelport.compute.kubernetes.envplacement import IMAGE_MODE
from modelport.compute.kubernetes.fetch_plan import check_artifact_url
from modelport.compute.kubernetes.inputs import image_for, service_inputs
from modelport.compute.kubernetes.objects import AUTOSCALE_EVENT_REASON, service_object_name
from modelport.compute.kubernetes.rollout import rollout_status, timed_out_error
from modelport.compute.kubernetes.target import KubernetesTarget, load_target
from modelport.compute.kubernetes.target_status import frontend_url
from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.errors import (
    ComputeTargetException,
    PermanentTargetError,
    TemporaryTargetError,
    UserErrorException,
    WebserviceException,
)
from modelport.runtime.worker import EXIT_BOOT_FAILED
from modelport.service import states
from modelport.service import store as service_store
from modelport.service.driver import Observation, ReplicaObservation, record_observation
from modelport.service.spec import ServiceSpec, auth_digest
from modelport.service.states import ErrorDetail, ServiceError

if TYPE_CHECKING:
    from modelport.workspace import Workspace

DELETE_DEADLINE_S = 180.0
POLL_S = 0.25
CLUSTER_UNREACHABLE = "ClusterUnreachable"
LOG_EVIDENCE_LINES = 30
WARNING_EVENTS = 5
# Where submit records the Deployment generation its apply returned (rollout_status needs it).
APPLIED_GENERATION = "appliedDeploymentGeneration"
# A refused apply: retried after these delays (the last repeats), or failed for good.
APPLY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
APPLY_ATTEMPTS = "applyAttempts"
NEXT_APPLY_AT = "nextApplyAt"  # wall-clock seconds: observers in other processes honour it too
APPLY_RETRYING = "ApplyRetrying"
APPLY_REFUSED = "ApplyRefused"
IMAGE_BUILD_FAILED = ImageBuildError.code  # image mode: the environment's image could not be made


class KubernetesDriver:
    """Runs services on one attached Kubernetes compute target (a :class:`TargetDriver`)."""

    compute_type: ClassVar[str] = "kubernetes"

    def __init__(self, target_name: str) -> None:
        self.target_name = target_name
        self._target: KubernetesTarget | None = None
        self._client: Any = None

    # -- plumbing ----------------------------------------------------------------------------
    def target(self, workspace: Workspace) -> KubernetesTarget:
        """The target's definition (loaded once per driver)."""
        if self._target is None:
            self._target = load_target(workspace, self.target_name)
        return self._target

    def client(self, workspace: Workspace) -> Any:
        """A client for the target's cluster (made once per driver)."""
        if self._client is None:
            self._client = connect(self.target(workspace))
        return self._client

    # -- the driver interface ----------------------------------------------------------------
    def check(self, workspace: Workspace, config: EffectiveDeploymentConfig) -> None:
        """Refuse what this target cannot run, before anything is stored."""
        target = self.target(workspace)
        if config.namespace is not None and config.namespace != target.namespace:
            raise UserErrorException(
                f"namespace={config.namespace!r}, but compute target {self.target_name!r} runs services in "
                f"namespace {target.namespace!r} (its front end serves that one only). Fix: omit namespace, "
                f"or attach another target with --namespace {config.namespace}."
            )
        check_artifact_url(workspace.artifact_url)

    def submit(self, workspace: Workspace, name: str) -> None:
        """Apply the service's newest stored generation now (a rolling update when it changed); a
        refusal is recorded as the service's status, and a temporary one retried by ``observe``."""
        record = service_store.read_service(workspace, name)
        if record is None:
            raise service_store.not_found(name)
        self._apply(workspace, record, _previous(workspace, name))

    def observe(self, workspace: Workspace, record: service_store.ServiceRecord) -> ServiceError | None:
        """Reconcile one step: apply a stored generation the cluster has not got (unless backing off
        or refused for good), else observe the cluster and record it. Returns the target's problem."""
        if record.deleting:
            return None
        previous = _previous(workspace, record.spec.name)
        try:
            if previous is None or not _applied(previous, record.generation):
                if not _waiting(previous, record.generation):
                    self._apply(workspace, record, previous)
                return None
            target = self.target(workspace)
            client = self.client(workspace)
            with cluster_errors(target, f"reading service {record.spec.name}"):
                self._observe(workspace, client, target, record, previous)
        except ComputeTargetException as exc:
            return ServiceError(code=CLUSTER_UNREACHABLE, status_code=503, message=exc.message)
        return None

    def target_problem(self, workspace: Workspace) -> ServiceError | None:
        """Nothing is known without asking the cluster; ``observe`` reports an unreachable one."""
        return None

    def _apply(
        self, workspace: Workspace, record: service_store.ServiceRecord, previous: Observation | None
    ) -> None:
        name = record.spec.name
        target = self.target(workspace)
        try:
            environment_image = self._environment_image(record.spec, target)
            client = self.client(workspace)
            with cluster_errors(target, f"applying service {name}"):
                inputs, secrets = service_inputs(
                    workspace,
                    record.spec,
                    record.generation,
                    target,
                    pdb_api_version(client, target.namespace),
                    environment_image=environment_image,
                    pull_secret_config=pull_secret_config(target),
                )
                for secret in secrets:
                    apply(client, secret)
                applied = apply_service(client, m.service_manifests(record.spec, inputs))
        except TemporaryTargetError as exc:
            record_observation(workspace, name, _retry(record, target, previous, exc), previous)
            return
        except (ImageBuildError, PermanentTargetError) as exc:
            failed = Observation(
                generation=record.generation,
                state=states.FAILED,
                error=_refusal(exc),
                extras={"namespace": target.namespace},
            )
            record_observation(workspace, name, failed, previous)
            return
        deployment = applied[f"Deployment/{name}"]
        service_store.add_event(
            workspace,
            name,
            record.generation,
            "rollout",
            f"Applied generation {record.generation} to namespace {target.namespace} "
            f"(Deployment generation {deployment.metadata.generation}, image {inputs.image})",
        )
        extras = {APPLIED_GENERATION: deployment.metadata.generation, "namespace": target.namespace}
        started = Observation(generation=record.generation, state=states.TRANSITIONING, extras=extras)
        record_observation(workspace, name, started, previous)

    def _environment_image(self, spec: ServiceSpec, target: KubernetesTarget) -> str | None:
        """Image mode: the service's environment image, built and pushed first when the registry
        lacks it (the build's output goes to the deploying user); node-cache mode: the image
        ``environment build-image`` pushed, if any; None when pods need none."""
        environment = image_environment(spec, target, image_for(spec, target))
        if environment is None:
            return None
        if target.env_mode != IMAGE_MODE:
            return prebuilt_environment_image(environment, target, on_line=note)
        return ensure_environment_image(environment, target, self.target_name, on_line=note).reference

    def endpoint(self, workspace: Workspace, record: service_store.ServiceRecord | None = None) -> str | None:
        """The front end's base URL (None while its load balancer has no address, or unreachable);
        one front end serves every service of the cluster, whatever ``record``."""
        try:
            target = self.target(workspace)
            with cluster_errors(target, "reading the front end's address"):
                return frontend_url(self.client(workspace), target)
        except ComputeTargetException:
            return None

    def logs(self, workspace: Workspace, name: str, generation: int, num_lines: int, init: bool) -> str:
        """The replicas' output, newest pods first (``init``: the init containers' in their order:
        the environment's build in the node cache, then the models' fetch)."""
        target = self.target(workspace)
        client = self.client(workspace)
        with cluster_errors(target, f"reading the logs of service {name}"):
            pods = self._pods(client, target, name)
            if not pods:
                return f"(service {name} has no pods in namespace {target.namespace})\n"
            parts = []
            for pod in pods:
                init_containers = [c["name"] for c in pod["spec"].get("initContainers") or []]
                for container in init_containers if init else ["scorer"]:
                    text = _pod_log(client, target, pod, container, num_lines)
                    parts.append(f"--- pod {pod['metadata']['name']} ({container}) ---\n{text}")
        return "\n".join(parts)

    def target_events(self, workspace: Workspace, name: str) -> list[service_store.ServiceEvent]:
        """The cluster's Events about the service's Deployment, ReplicaSets and pods (kept by the
        cluster for about an hour): ``autoscale`` for the front end's scale decisions, ``cluster``
        for the rest (restarts, kills, probe failures, scheduling)."""
        from lightkube.resources.core_v1 import Event

        target = self.target(workspace)
        client = self.client(workspace)
        owned = service_object_name(name)
        found = []
        with cluster_errors(target, f"reading the events of service {name}"):
            for event in client.list(Event, namespace=target.namespace):
                about = event.involvedObject
                if about is None or about.name is None or not owned.fullmatch(about.name):
                    continue
                when = event.lastTimestamp or event.eventTime or event.metadata.creationTimestamp
                repeated = f" (×{event.count})" if (event.count or 1) > 1 else ""
                found.append(
                    service_store.ServiceEvent(
                        id=0,
                        time=when if isinstance(when, datetime) else datetime.now(UTC),
                        generation=0,
                        kind="autoscale" if event.reason == AUTOSCALE_EVENT_REASON else "cluster",
                        message=f"{about.kind}/{about.name}: {event.reason}: {event.message}{repeated}",
                        data={"type": event.type, "reason": event.reason},
                    )
                )
        return sorted(found, key=lambda e: e.time)

    def delete(self, workspace: Workspace, name: str) -> None:
        """Delete the Deployment with foreground propagation, wait until every object is gone, forget it."""
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import ConfigMap, Pod, Secret, Service

        target = self.target(workspace)
        client = self.client(workspace)
        selector = {m.LABEL_SERVICE: name}
        with cluster_errors(target, f"deleting service {name}"):
            budget = disruption_budget_resource(pdb_api_version(client, target.namespace))
            delete_if_present(client, Deployment, name, target.namespace)
            deadline = time.monotonic() + DELETE_DEADLINE_S
            while True:
                left = [
                    f"{kind.__name__}/{obj.metadata.name}"
                    for kind in (Deployment, Pod, Service, Secret, ConfigMap, budget)
                    for obj in client.list(kind, namespace=target.namespace, labels=selector)
                ]
                if not left:
                    break
                if time.monotonic() > deadline:
                    raise WebserviceException(
                        f"Service {name} is still being deleted after {DELETE_DEADLINE_S:.0f} s; left: "
                        f"{', '.join(left[:8])}. The cluster keeps deleting; run delete again to wait."
                    )
                time.sleep(POLL_S)
        service_store.remove_service(workspace, name)

    # -- observing ---------------------------------------------------------------------------
    def _pods(self, client: Any, target: KubernetesTarget, name: str) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Pod

        pods = [
            p.to_dict() for p in client.list(Pod, namespace=target.namespace, labels={m.LABEL_SERVICE: name})
        ]
        return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)

    def _observe(
        self,
        workspace: Workspace,
        client: Any,
        target: KubernetesTarget,
        record: service_store.ServiceRecord,
        previous: Observation,
    ) -> None:
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Secret

        name = record.spec.name
        applied = int(previous.extras.get(APPLIED_GENERATION) or 0)
        found_deployment = get_or_none(client, Deployment, name, target.namespace)
        if found_deployment is None:
            error: ServiceError | None = ServiceError(
                code=states.DEPLOYMENT_FAILED,
                message=f"The service's Deployment {target.namespace}/{name} is missing from the cluster "
                "(deleted by hand?). Fix: update the service to apply it again, or delete the service.",
            )
            missing = previous.model_copy(update={"state": states.FAILED, "error": error})
            record_observation(workspace, name, missing, previous)
            return
        deployment = found_deployment.to_dict()
        status = rollout_status(deployment, applied)
        pods = self._pods(client, target, name)
        current = [
            p
            for p in pods
            if (p["metadata"].get("annotations") or {}).get(m.ANNOTATION_GENERATION) == str(record.generation)
        ]
        state, error = states.TRANSITIONING, None
        if status.phase == "complete":
            state = states.HEALTHY
        elif status.phase == "failed":
            state, error = states.FAILED, timed_out_error(status)
        elif (refused := replica_failure(deployment)) is not None:
            state, error = states.FAILED, refused
        else:
            found = diagnose(current)
            if found is not None:
                state, error = found
                error = _with_log_evidence(client, target, current, error)
        involved = {
            ("Deployment", name),
            *(("ReplicaSet", rs) for rs in _replica_sets(client, target, record)),
            *(("Pod", pod["metadata"]["name"]) for pod in current),
        }
        warnings = _warning_events(client, target, involved)
        if error is not None and warnings:
            events = tuple(ErrorDetail(code="Event", message=text) for text in warnings)
            error = error.model_copy(update={"details": (*error.details, *events)})
        keys = client.get(Secret, m.keys_secret_name(record.spec), namespace=target.namespace)
        data = {k: _b64(v) for k, v in (keys.data or {}).items()}
        deployment_status = deployment.get("status") or {}
        observation = Observation(
            generation=record.generation,
            state=state,
            error=error,
            desired_replicas=int((deployment.get("spec") or {}).get("replicas") or 0),
            ready_replicas=int(deployment_status.get("readyReplicas") or 0),
            replicas=tuple(_pod_replica(p) for p in pods),
            auth_digest=auth_digest(
                data.get("authMode", ""),
                data.get("primaryKey") or None,
                data.get("secondaryKey") or None,
                data.get("tokenSecret", ""),
                data.get("namedKeys") or "[]",
            ),
            extras={
                APPLIED_GENERATION: applied,
                "namespace": target.namespace,
                "rollout": status.message,
                "updatedReplicas": deployment_status.get("updatedReplicas") or 0,
                "availableReplicas": deployment_status.get("availableReplicas") or 0,
                "warnings": warnings,
            },
        )
        record_observation(workspace, name, observation, previous)


def _previous(workspace: Workspace, name: str) -> Observation | None:
    status = service_store.read_status(workspace, name)
    return Observation.from_status(status) if status is not None else None


def _applied(previous: Observation, generation: int) -> bool:
    """Whether the cluster got ``generation`` (a successful apply records its Deployment generation)."""
    return previous.generation == generation and APPLIED_GENERATION in previous.extras


def _waiting(previous: Observation | None, generation: int) -> bool:
    """Whether the next apply of ``generation`` must wait: backing off, or refused for good."""
    if previous is None or previous.generation != generation:
        return False
    if previous.error is not None and previous.error.code in (APPLY_REFUSED, IMAGE_BUILD_FAILED):
        return True
    return time.time() < float(previous.extras.get(NEXT_APPLY_AT) or 0)


def _refusal(exc: ImageBuildError | PermanentTargetError) -> ServiceError:
    """A generation that cannot be applied until it changes: the cluster refused it, or (image
    mode) its environment's image could not be made, with the builder's tail as evidence."""
    if isinstance(exc, ImageBuildError):
        details = (ErrorDetail(code="LogTail", message=exc.log_tail),) if exc.log_tail else ()
        return ServiceError(code=IMAGE_BUILD_FAILED, status_code=400, message=exc.message, details=details)
    return ServiceError(code=APPLY_REFUSED, status_code=exc.status_code or 400, message=exc.message)


def _retry(
    record: service_store.ServiceRecord,
    target: KubernetesTarget,
    previous: Observation | None,
    exc: TemporaryTargetError,
) -> Observation:
    """The observation of a refused apply worth retrying: Transitioning, with when to try again."""
    attempts = 1
    if previous is not None and previous.generation == record.generation:
        attempts += int(previous.extras.get(APPLY_ATTEMPTS) or 0)
    delay = APPLY_BACKOFF_S[min(attempts, len(APPLY_BACKOFF_S)) - 1]
    error = ServiceError(
        code=APPLY_RETRYING,
        status_code=503,
        message=f"{exc.message} Attempt {attempts}; the next observation retries in {delay:.0f} s.",
    )
    extras = {"namespace": target.namespace, APPLY_ATTEMPTS: attempts, NEXT_APPLY_AT: time.time() + delay}
    return Observation(generation=record.generation, state=states.TRANSITIONING, error=error, extras=extras)


def pdb_api_version(client: Any, namespace: str) -> str:
    """``policy/v1`` when the server offers it (1.21+), else ``policy/v1beta1``."""
    from lightkube.core.exceptions import ApiError

    try:
        next(iter(client.list(disruption_budget_resource("policy/v1"), namespace=namespace)), None)
    except ApiError as exc:
        if exc.status.code == 404:
            return "policy/v1beta1"
        raise
    return "policy/v1"


def _b64(value: str) -> str:
    import base64

    return base64.b64decode(value).decode("utf-8", "replace")


def _pod_replica(pod: dict[str, Any]) -> ReplicaObservation:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    generation = (pod["metadata"].get("annotations") or {}).get(m.ANNOTATION_GENERATION)
    phase = status.get("phase")
    return ReplicaObservation(
        id=pod["metadata"]["name"],
        generation=int(generation) if generation and generation.isdigit() else None,
        state="ready" if ready else str(phase or "unknown").lower(),
        extras={
            "phase": phase,
            "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
            "podIP": status.get("podIP"),
        },
    )


def _pod_log(client: Any, target: KubernetesTarget, pod: dict[str, Any], container: str, lines: int) -> str:
    """A container's log; the reason instead when the cluster cannot give it (not started yet).

    A container that has restarted shows why in its previous run's log, not in the current one
    (empty or a fresh start-up while it crash-loops), so that log follows, as ``kubectl logs
    --previous`` would give it."""
    name = pod["metadata"]["name"]
    text = _read_log(client, target, name, container, lines, previous=False)
    init = container not in {c["name"] for c in pod["spec"].get("containers") or []}
    restarts = int(_container_status(pod, container, init).get("restartCount") or 0)
    if not restarts:
        return text
    before = _read_log(client, target, name, container, lines, previous=True)
    # The new run has not started (the "current" log is still the previous run's), or the
    # previous run's log is gone: nothing to add.
    if before == text or before.startswith(NO_LOG):
        return text
    return f"{text}--- restarted {restarts} times; the log of its previous run: ---\n{before}"


NO_LOG = "(no log: "


def _read_log(
    client: Any, target: KubernetesTarget, pod: str, container: str, lines: int, previous: bool
) -> str:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import PodLog

    params: dict[str, Any] = {"container": container, "tailLines": lines, "previous": previous}
    try:
        # lightkube's Client.log has no ``previous``; its generic client builds the same request.
        api = client._client
        response = api.send(
            api.build_adapter_request(
                api.prepare_request("get", PodLog, name=pod, namespace=target.namespace, params=params)
            )
        )
        api.raise_for_status(response)
    except ApiError as exc:
        return f"{NO_LOG}{exc.status.message})\n"
    return "".join(line + "\n" for line in response.iter_lines())


def _container_status(pod: dict[str, Any], container: str, init: bool) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    statuses = (pod.get("status") or {}).get(key) or []
    return next((s for s in statuses if s.get("name") == container), {})


def _replica_sets(client: Any, target: KubernetesTarget, record: service_store.ServiceRecord) -> list[str]:
    """Names of the service's ReplicaSets of the current generation (where FailedCreate is reported)."""
    from lightkube.resources.apps_v1 import ReplicaSet

    found = client.list(ReplicaSet, namespace=target.namespace, labels={m.LABEL_SERVICE: record.spec.name})
    current = str(record.generation)
    return [
        rs.metadata.name
        for rs in found
        if (rs.spec.template.metadata.annotations or {}).get(m.ANNOTATION_GENERATION) == current
    ]


def _warning_events(client: Any, target: KubernetesTarget, involved: set[tuple[str, str]]) -> list[str]:
    """The latest Warning events about ``involved`` (kind, name) objects, newest last."""
    from lightkube.resources.core_v1 import Event

    found = []
    for event in client.list(Event, namespace=target.namespace, fields={"type": "Warning"}):
        about = event.involvedObject
        if about is None or (about.kind, about.name) not in involved:
            continue
        when = event.lastTimestamp or event.eventTime or event.metadata.creationTimestamp
        found.append((str(when or ""), f"{about.kind}/{about.name}: {event.reason}: {event.message}"))
    return [text for _, text in sorted(found)[-WARNING_EVENTS:]]


def _last_exit_code(pod: dict[str, Any], container: str, init: bool) -> int | None:
    status = _container_status(pod, container, init)
    terminated = (status.get("lastState") or {}).get("terminated") or (status.get("state") or {}).get(
        "terminated"
    )
    return int(terminated["exitCode"]) if terminated else None


def _with_log_evidence(
    client: Any, target: KubernetesTarget, pods: list[dict[str, Any]], error: ServiceError
) -> ServiceError:
    """Add the failing container's last log lines; a crash loop of a replica whose entry script
    failed to load or whose ``init()`` raised (the runtime's exit status 3) is ``EntryScriptInitFailed``."""
    init = error.code == MODEL_FETCH_FAILED
    if error.code not in (states.CRASH_LOOP_BACK_OFF, MODEL_FETCH_FAILED) or not pods:
        return error
    container = "fetch-models" if init else "scorer"
    exits = [(p, _last_exit_code(p, container, init)) for p in pods]
    pod, exit_code = next(((p, code) for p, code in exits if code is not None), exits[0])
    tail = _pod_log(client, target, pod, container, LOG_EVIDENCE_LINES).strip()
    evidence = ErrorDetail(code="LogTail", message=tail or "(no output)")
    if not init and exit_code == EXIT_BOOT_FAILED:
        return ServiceError(
            code=states.ENTRY_SCRIPT_INIT_FAILED,
            message="The replicas exit before they are ready: the entry script could not be loaded or its "
            "init() raised. The traceback is in the details and in get_logs(). Fix the script, then "
            "update the service.",
            details=(*error.details, evidence),
        )
    return error.model_copy(update={"details": (*error.details, evidence)})
