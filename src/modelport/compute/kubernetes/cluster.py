"""A Kubernetes compute target: how to reach the cluster, and attach, create and detach.

Attach checks the cluster purpose against the real nodes, installs the front end into the system
namespace with server-side apply, waits until the front end is ready and records the target in
the workspace. It is all or nothing: a failure removes what it installed and the record. Detach
removes what attach installed (never a namespace it did not create, never another workload) and
refuses while services of the workspace still run on the target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from modelport.compute import targets
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply
from modelport.compute.kubernetes.capacity import DEV_TEST, FAST_PROD, check_purpose
from modelport.compute.kubernetes.diagnose import diagnose
from modelport.compute.kubernetes.rollout import rollout_status
from modelport.errors import (
    ComputeTargetException,
    PermanentTargetError,
    TemporaryTargetError,
    UserErrorException,
)
from modelport.names import namespace_problem
from modelport.service import store as service_store

if TYPE_CHECKING:
    from modelport.workspace import Workspace

COMPUTE_TYPE = "kubernetes"
DEFAULT_SERVICES_NAMESPACE = "modelport-services"
ATTACH_DEADLINE_S = float(os.environ.get("MODELPORT_K8S_ATTACH_TIMEOUT_S", "300"))
DETACH_DEADLINE_S = 120.0
POLL_S = 0.25
REQUEST_TIMEOUT_S = 15.0
# API refusals that the same request would get again: malformed or invalid objects, conflicts with
# another field manager, a resource the server does not serve. Quotas (403), admission that
# changes its mind, throttling (429) and server errors are worth retrying.
PERMANENT_API_CODES = frozenset({400, 404, 405, 409, 410, 413, 415, 422})

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class KubernetesTarget(BaseModel):
    """How a cluster is reached and what attach installs there (stored as the target's definition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: str | None = None  # None: $KUBECONFIG, then ~/.kube/config
    context: str | None = None  # None: the kubeconfig's current context
    in_cluster: bool = False  # the pod's service-account credentials instead of a kubeconfig
    namespace: str = DEFAULT_SERVICES_NAMESPACE  # where services run
    system_namespace: str = m.DEFAULT_SYSTEM_NAMESPACE  # where the front end runs
    cluster_purpose: Literal["FastProd", "DevTest"] = FAST_PROD
    image: str = m.DEFAULT_IMAGE
    frontend_service_type: m.FrontendServiceType = "LoadBalancer"
    # The front end's address as clients reach it (an ingress, a port-forward); None: read from
    # the front end's Service (load balancer address, node port, or cluster IP).
    scoring_url: str | None = None
    # The artifact store's endpoint as pods reach it, when it differs from this machine's view.
    store_endpoint_url: str | None = None
    progress_deadline_s: int = 600
    pod_annotations: dict[str, str] = {}  # added to every service pod (sidecar switches, scrape hints)
    created: bool = False  # ComputeTarget.create (True) or attach (False)
    created_namespaces: tuple[str, ...] = ()  # the namespaces attach created (detach removes them)
    provisioning: dict[str, Any] = {}  # what create was asked for (agent_count, vm_size, ...)

    @field_validator("namespace", "system_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        problem = namespace_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("progress_deadline_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 10:
            raise ValueError(f"must be at least 10 seconds, got {value}")
        return value

    @property
    def attachment(self) -> str:
        """Where this target's front end serves services from (for conflict messages)."""
        return f"{self.system_namespace} (services namespace {self.namespace})"


def target_from_options(**options: Any) -> KubernetesTarget:
    """Validate attach options; errors name the option, the value and the fix."""
    try:
        return KubernetesTarget(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise UserErrorException(f"Invalid Kubernetes compute target options: {problems}.") from exc


def load_target(workspace: Workspace, name: str) -> KubernetesTarget:
    """The attached, ready target ``name`` of ``workspace``."""
    record = targets.require_target(workspace, name)
    if record.compute_type != COMPUTE_TYPE:
        raise ComputeTargetException(f"Compute target {name!r} is a {record.compute_type} target.")
    if record.state != targets.SUCCEEDED:
        raise ComputeTargetException(
            f"Compute target {name!r} is {record.state}, not ready for services. Fix: wait for its attach "
            f"to finish, or detach and attach it again (`modelport computetarget show -n {name}`)."
        )
    return KubernetesTarget.model_validate(record.definition)


# -- reaching the cluster --------------------------------------------------------------------


def _kubeconfig_path(target: KubernetesTarget) -> Path:
    if target.kubeconfig:
        return Path(target.kubeconfig).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path("~/.kube/config").expanduser()


def connect(target: KubernetesTarget) -> Any:
    """A lightkube client for the target's cluster (field manager ``modelport``)."""
    try:
        from lightkube import Client, KubeConfig
        from lightkube.core.exceptions import ConfigError
    except ImportError as exc:
        raise ComputeTargetException(
            "The Kubernetes target needs the lightkube client. Fix: pip install 'modelport[kubernetes]'."
        ) from exc
    import httpx2

    if target.in_cluster:
        try:
            config: Any = KubeConfig.from_service_account()
        except ConfigError as exc:
            raise ComputeTargetException(
                f"No in-cluster credentials here ({exc}). Fix: run inside a pod with a service account, or "
                "attach with a kubeconfig (--kubeconfig, --context)."
            ) from exc
        single = config.get()
    else:
        path = _kubeconfig_path(target)
        if not path.is_file():
            raise ComputeTargetException(
                f"kubeconfig {str(path)!r} does not exist. Fix: pass --kubeconfig PATH (kubeconfig= in "
                "Python) or set KUBECONFIG."
            )
        try:
            config = KubeConfig.from_file(path)
        except (ConfigError, OSError, ValueError) as exc:
            raise ComputeTargetException(f"kubeconfig {str(path)!r} cannot be read: {exc}") from exc
        if target.context is not None and target.context not in config.contexts:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise ComputeTargetException(
                f"context={target.context!r} is not in kubeconfig {str(path)!r} (contexts: {known}). Fix: "
                "pass one of those with --context."
            )
        try:
            single = config.get(target.context)
        except ConfigError:
            single = None
        if single is None:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise ComputeTargetException(
                f"kubeconfig {str(path)!r} has no current context. Fix: pass --context with one of: {known}."
            )
    try:
        return Client(config=single, field_manager=m.FIELD_MANAGER, timeout=httpx2.Timeout(REQUEST_TIMEOUT_S))
    except OSError as exc:  # a certificate file named by the kubeconfig is missing or unreadable
        where = (
            "the in-cluster credentials"
            if target.in_cluster
            else f"kubeconfig {str(_kubeconfig_path(target))!r}"
        )
        raise ComputeTargetException(
            f"{where} (context {target.context or '(current)'}): cannot load its credentials ({exc}). Fix: "
            "check the certificate and key files it names, or refresh the kubeconfig from your cluster."
        ) from exc


@contextlib.contextmanager
def cluster_errors(target: KubernetesTarget, doing: str) -> Iterator[None]:
    """Turn transport and API failures into one error that says what failed and whether retrying
    can help: :class:`PermanentTargetError` for a refusal retrying cannot fix (invalid, conflict),
    :class:`TemporaryTargetError` for the rest (unreachable, a quota, throttling, a server error)."""
    import httpx2
    from lightkube.core.exceptions import ApiError

    where = "the in-cluster API" if target.in_cluster else f"context {target.context or '(current)'}"
    try:
        yield
    except ApiError as exc:
        code = exc.status.code
        hint = ""
        if code in (401, 403):
            hint = " Fix: use credentials allowed to manage these objects (cluster-admin for attach)."
        kind = PermanentTargetError if code in PERMANENT_API_CODES else TemporaryTargetError
        raise kind(
            f"The cluster ({where}) refused {doing}: {exc.status.message} (HTTP {code}).{hint}",
            status_code=code,
        ) from exc
    except httpx2.HTTPError as exc:
        raise TemporaryTargetError(
            f"Cannot reach the cluster ({where}) while {doing}: {exc}. Fix: check that the cluster runs "
            "and that the kubeconfig's server address is reachable from here."
        ) from exc


# -- attach / create / detach ----------------------------------------------------------------


def _cluster_inputs(target: KubernetesTarget, owner: str) -> m.ClusterInputs:
    return m.ClusterInputs(
        services_namespace=target.namespace,
        system_namespace=target.system_namespace,
        image=target.image,
        service_type=target.frontend_service_type,
        owner=owner,
    )


def _owner(workspace: Workspace, name: str) -> str:
    return f"{workspace.name}/{name}"


def get_or_none(client: Any, kind: Any, name: str, namespace: str | None = None) -> Any:
    """The object, or None when the server has none of that name (other errors raise)."""
    from lightkube.core.exceptions import ApiError

    try:
        return client.get(kind, name) if namespace is None else client.get(kind, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


def delete_if_present(client: Any, kind: Any, name: str, namespace: str | None = None) -> None:
    """Delete an object (namespaced ones with foreground propagation); one already gone is fine."""
    from lightkube.core.exceptions import ApiError
    from lightkube.types import CascadeType

    try:
        if namespace is None:
            client.delete(kind, name)
        else:
            client.delete(kind, name, namespace=namespace, cascade=CascadeType.FOREGROUND)
    except ApiError as exc:
        if exc.status.code != 404:
            raise


def _existing_namespaces(client: Any, names: tuple[str, ...]) -> set[str]:
    from lightkube.resources.core_v1 import Namespace

    return {name for name in names if get_or_none(client, Namespace, name) is not None}


def _check_not_attached_elsewhere(client: Any, target: KubernetesTarget, owner: str) -> None:
    from lightkube.resources.apps_v1 import Deployment

    current = get_or_none(client, Deployment, m.FRONTEND_NAME, target.system_namespace)
    if current is None:
        return
    holder = (current.metadata.annotations or {}).get(m.ANNOTATION_OWNER, "another installation")
    if holder != owner:
        raise ComputeTargetException(
            f"The cluster already runs a modelport front end in namespace {target.system_namespace!r}, "
            f"attached as {holder}. Fix: detach that target first, or attach with another "
            "--system-namespace (and --namespace) so that the two stay apart."
        )


def wait_rolled_out(
    client: Any, namespace: str, name: str, generation: int, deadline_s: float, progress: Progress
) -> None:
    """Wait until the Deployment's rollout of ``generation`` completes; raise with the pods' problem."""
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import Pod

    deadline = time.monotonic() + deadline_s
    said = ""
    while True:
        deployment = client.get(Deployment, name, namespace=namespace).to_dict()
        status = rollout_status(deployment, generation)
        if status.phase == "complete":
            return
        if status.message != said:
            progress(f"  {name}: {status.message}")
            said = status.message
        selector = (deployment.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
        pods = [p.to_dict() for p in client.list(Pod, namespace=namespace, labels=selector)]
        found = diagnose(pods)
        if status.phase == "failed" or found is not None or time.monotonic() > deadline:
            why = found[1].message if found else status.message
            raise ComputeTargetException(
                f"Deployment {namespace}/{name} did not become ready: {why}"
                + ("" if found else f" (waited {deadline_s:.0f} s)")
            )
        time.sleep(POLL_S)


def attach(
    workspace: Workspace,
    name: str,
    target: KubernetesTarget,
    progress: Progress = _quiet,
    deadline_s: float = ATTACH_DEADLINE_S,
) -> targets.TargetRecord:
    """Attach the cluster of ``target`` as compute target ``name``; returns the recorded target.

    All or nothing: on failure the objects it applied and the record are removed, and the error
    says why (for ``FastProd``, what the cluster has against the 12-vCPU, 3-node minimum).
    """
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import Node

    targets.check_target_name(name)
    client = connect(target)
    owner = _owner(workspace, name)
    targets.add_target(workspace, name, COMPUTE_TYPE, target.model_dump(mode="json"))
    applied: list[m.Manifest] = []
    created: tuple[str, ...] = ()
    try:
        with cluster_errors(target, "the attach"):
            nodes = [n.to_dict() for n in client.list(Node)]
            capacity = check_purpose(nodes, target.cluster_purpose)
            progress(
                f"Cluster has {capacity.nodes} usable node(s), {capacity.cpus:g} allocatable vCPU(s); "
                f"purpose {target.cluster_purpose}"
            )
            _check_not_attached_elsewhere(client, target, owner)
            wanted = tuple(dict.fromkeys((target.system_namespace, target.namespace)))
            created = tuple(n for n in wanted if n not in _existing_namespaces(client, wanted))
            objects = [
                o
                for o in m.attach_manifests(_cluster_inputs(target, owner), secrets.token_urlsafe(32))
                if o["kind"] != "Namespace" or o["metadata"]["name"] in created
            ]
            for manifest in objects:
                apply(client, manifest)
                applied.append(manifest)
            progress(f"Installed the front end in namespace {target.system_namespace} ({target.image})")
            deployment = client.get(Deployment, m.FRONTEND_NAME, namespace=target.system_namespace)
            wait_rolled_out(
                client,
                target.system_namespace,
                m.FRONTEND_NAME,
                deployment.metadata.generation,
                deadline_s,
                progress,
            )
        final = target.model_copy(update={"created_namespaces": created})
        targets.set_state(workspace, name, targets.SUCCEEDED, definition=final.model_dump(mode="json"))
    except BaseException:
        with contextlib.suppress(Exception):
            _remove(client, target.model_copy(update={"created_namespaces": created}), applied)
        targets.remove_target(workspace, name)
        raise
    operation = "Create" if target.created else "Attach"
    progress(f'{operation} of compute target {name} finished, operation "Succeeded"')
    return targets.require_target(workspace, name)


def create(
    workspace: Workspace,
    name: str,
    target: KubernetesTarget,
    provisioning: dict[str, Any],
    progress: Progress = _quiet,
    deadline_s: float = ATTACH_DEADLINE_S,
) -> targets.TargetRecord:
    """``ComputeTarget.create``: install into an existing context the way attach does.

    Provisioning a cluster from a cloud is an extension point (docs/kubernetes.md); the requested
    size (``agent_count``, ``vm_size``) is recorded, and ``FastProd``'s minimum is checked against
    the nodes the context really has.
    """
    chosen = target.model_copy(update={"created": True, "provisioning": dict(provisioning)})
    return attach(workspace, name, chosen, progress, deadline_s)


def _resource(manifest: m.Manifest) -> Any:
    from lightkube import codecs

    return type(codecs.from_dict(manifest))


def _foreign_workloads(client: Any, namespace: str) -> list[str]:
    """Pods in ``namespace`` that modelport did not create (they keep the namespace alive)."""
    from lightkube.resources.core_v1 import Pod

    foreign = []
    for pod in client.list(Pod, namespace=namespace):
        labels = pod.metadata.labels or {}
        if labels.get(m.LABEL_MANAGED_BY) != m.FIELD_MANAGER:
            foreign.append(pod.metadata.name)
    return foreign


def _remove(client: Any, target: KubernetesTarget, objects: list[m.Manifest]) -> dict[str, list[str]]:
    """Delete ``objects`` (newest first) and the namespaces attach created.

    Returns the created namespaces kept because they hold pods modelport did not make (and those pods).
    """
    from lightkube.resources.core_v1 import Namespace

    for manifest in reversed(objects):
        if manifest["kind"] == "Namespace":
            continue
        meta = manifest["metadata"]
        delete_if_present(client, _resource(manifest), meta["name"], meta.get("namespace"))
    kept = {}
    for namespace in target.created_namespaces:
        foreign = _foreign_workloads(client, namespace)
        if foreign:
            kept[namespace] = foreign
        else:
            delete_if_present(client, Namespace, namespace)
    return kept


def installed_manifests(target: KubernetesTarget, owner: str) -> list[m.Manifest]:
    """What attach applied for ``target`` (the signing key's value does not matter for deletion)."""
    objects = m.attach_manifests(_cluster_inputs(target, owner), "x" * 32)
    objects.append(m.artifact_credentials_secret(target.namespace, {}))
    return [o for o in objects if o["kind"] != "Namespace"]


def detach(workspace: Workspace, name: str, progress: Progress = _quiet, force: bool = False) -> list[str]:
    """Remove what attach installed and forget the target; returns notes on what was kept.

    Refuses while services of this workspace run on the target. ``force`` forgets the target
    even when the cluster cannot be reached (nothing is removed there then).
    """
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import Namespace

    record = targets.require_target(workspace, name)
    services = service_store.list_services(workspace, COMPUTE_TYPE)
    on_target = [r.spec.name for r in services if r.spec.compute_target == name]
    if on_target:
        raise ComputeTargetException(
            f"Compute target {name!r} still runs service(s) {', '.join(sorted(on_target))}. Fix: delete them "
            "first (`modelport service delete -n NAME`), then detach."
        )
    target = KubernetesTarget.model_validate(record.definition)
    targets.set_state(workspace, name, targets.DELETING)
    notes: list[str] = []
    try:
        client = connect(target)
        with cluster_errors(target, "the detach"):
            kept = _remove(client, target, installed_manifests(target, _owner(workspace, name)))
            notes = [
                f"kept namespace {ns}: it holds workloads modelport did not make ({', '.join(pods[:5])})"
                for ns, pods in kept.items()
            ]
            deadline = time.monotonic() + DETACH_DEADLINE_S
            gone = [(Deployment, m.FRONTEND_NAME, target.system_namespace)] + [
                (Namespace, ns, None) for ns in target.created_namespaces if ns not in kept
            ]
            for kind, object_name, namespace in gone:
                while get_or_none(client, kind, object_name, namespace) is not None:
                    if time.monotonic() > deadline:
                        raise ComputeTargetException(
                            f"{kind.__name__} {object_name} is still being deleted after "
                            f"{DETACH_DEADLINE_S:.0f} s; detach again to finish."
                        )
                    time.sleep(POLL_S)
    except ComputeTargetException:
        if not force:
            targets.set_state(workspace, name, targets.SUCCEEDED)
            raise
        notes.append("the cluster was not cleaned up (--force): remove namespace objects by hand")
    targets.remove_target(workspace, name)
    progress(f"Detached compute target {name}")
    return notes


# -- status ------------------------------------------------------------------------------------


def frontend_url(client: Any, target: KubernetesTarget) -> str | None:
    """The front end's base URL: the configured one, else from its Service (None while pending)."""
    from lightkube.resources.core_v1 import Node, Service

    if target.scoring_url:
        return target.scoring_url.rstrip("/")
    service = client.get(Service, m.FRONTEND_NAME, namespace=target.system_namespace)
    spec = service.spec
    if spec.type == "LoadBalancer":
        ingress = (service.status.loadBalancer.ingress or []) if service.status else []
        if not ingress:
            return None
        host = ingress[0].ip or ingress[0].hostname
        return f"http://{host}"
    if spec.type == "NodePort":
        for node in client.list(Node):
            for address in (node.status.addresses or []) if node.status else []:
                if address.type in ("ExternalIP", "InternalIP"):
                    return f"http://{address.address}:{spec.ports[0].nodePort}"
        return None
    return f"http://{spec.clusterIP}"


def describe(workspace: Workspace, record: targets.TargetRecord) -> dict[str, Any]:
    """What ``computetarget show`` prints: the record plus, when reachable, the cluster's view."""
    target = KubernetesTarget.model_validate(record.definition)
    info: dict[str, Any] = {
        "name": record.name,
        "computeType": "Kubernetes",
        "provisioningState": record.state,
        "provisioningErrors": record.error,
        "createdTime": record.created_time.isoformat(),
        "isAttachedCompute": not target.created,
        "clusterPurpose": target.cluster_purpose,
        "context": target.context,
        "kubeconfig": target.kubeconfig,
        "namespace": target.namespace,
        "systemNamespace": target.system_namespace,
        "image": target.image,
        "frontendServiceType": target.frontend_service_type,
    }
    if target.provisioning:
        info["provisioning"] = target.provisioning
    if record.state != targets.SUCCEEDED:
        return info
    try:
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Node

        client = connect(target)
        with cluster_errors(target, "reading the target's status"):
            capacity = check_purpose([n.to_dict() for n in client.list(Node)], DEV_TEST)
            front = client.get(Deployment, m.FRONTEND_NAME, namespace=target.system_namespace)
            info["nodes"] = capacity.nodes
            info["allocatableCpus"] = capacity.cpus
            info["frontendReadyReplicas"] = (front.status.readyReplicas or 0) if front.status else 0
            info["scoringBaseUrl"] = frontend_url(client, target)
    except ComputeTargetException as exc:
        info["clusterError"] = exc.message
    return info
