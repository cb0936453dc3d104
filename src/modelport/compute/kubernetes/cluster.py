"""Attach, create and detach: a cluster becomes a compute target, and stops being one.

Attach checks the cluster purpose against the real nodes, installs the front end into the system
namespace with server-side apply, waits until the front end is ready and records the target in
the workspace. It is all or nothing: a failure removes what it installed and the record. Detach
removes what attach installed (never a namespace it did not create, never another workload) and
refuses while services of the workspace still run on the target. The target's definition is
:mod:`~modelport.compute.kubernetes.target`, what attach installs
:mod:`~modelport.compute.kubernetes.frontend_manifests`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelport.compute import targets
from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes.apply import apply
from modelport.compute.kubernetes.capacity import check_purpose
from modelport.compute.kubernetes.connection import cluster_errors, connect, delete_if_present, get_or_none
from modelport.compute.kubernetes.diagnose import diagnose
from modelport.compute.kubernetes.envplacement import PACKAGE_INDEX_SECRET, REGISTRY_SECRET
from modelport.compute.kubernetes.fetch_plan import ARTIFACT_CREDENTIALS_SECRET
from modelport.compute.kubernetes.objects import FIELD_MANAGER, LABEL_MANAGED_BY, Manifest, shared_secret
from modelport.compute.kubernetes.rollout import rollout_status
from modelport.compute.kubernetes.target import COMPUTE_TYPE, KubernetesTarget
from modelport.errors import ComputeTargetException
from modelport.service import store as service_store

if TYPE_CHECKING:
    from modelport.workspace import Workspace

ATTACH_DEADLINE_S = float(os.environ.get("MODELPORT_K8S_ATTACH_TIMEOUT_S", "300"))
DETACH_DEADLINE_S = 120.0
POLL_S = 0.25

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _cluster_inputs(target: KubernetesTarget, owner: str) -> fm.ClusterInputs:
    return fm.ClusterInputs(
        services_namespace=target.namespace,
        system_namespace=target.system_namespace,
        image=target.image,
        service_type=target.frontend_service_type,
        replicas=target.frontend_replica_count(),
        owner=owner,
    )


def _owner(workspace: Workspace, name: str) -> str:
    return f"{workspace.name}/{name}"


def _existing_namespaces(client: Any, names: tuple[str, ...]) -> set[str]:
    from lightkube.resources.core_v1 import Namespace

    return {name for name in names if get_or_none(client, Namespace, name) is not None}


def _check_not_attached_elsewhere(client: Any, target: KubernetesTarget, owner: str) -> None:
    from lightkube.resources.apps_v1 import Deployment

    current = get_or_none(client, Deployment, fm.FRONTEND_NAME, target.system_namespace)
    if current is None:
        return
    holder = (current.metadata.annotations or {}).get(fm.ANNOTATION_OWNER, "another installation")
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


def _apply_unless_unserved(client: Any, manifest: Manifest, progress: Progress) -> bool:
    """Apply ``manifest``; a PodDisruptionBudget the cluster cannot store is skipped with a note.

    ``policy/v1`` is served from Kubernetes 1.21; on an older cluster the front end runs without
    its budget (drains may evict several replicas at once) rather than not at all.
    """
    from lightkube.core.exceptions import ApiError

    try:
        apply(client, manifest)
    except ApiError as exc:
        if manifest["kind"] != "PodDisruptionBudget" or exc.status.code != 404:
            raise
        progress(
            "  No PodDisruptionBudget for the front end: the cluster does not serve policy/v1 "
            "(Kubernetes < 1.21), so a node drain may evict several front-end replicas at once. "
            "Fix: upgrade the cluster to 1.21 or later and attach again."
        )
        return False
    return True


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
    applied: list[Manifest] = []
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
                for o in fm.attach_manifests(_cluster_inputs(target, owner), secrets.token_urlsafe(32))
                if o["kind"] != "Namespace" or o["metadata"]["name"] in created
            ]
            for manifest in objects:
                if not _apply_unless_unserved(client, manifest, progress):
                    continue
                applied.append(manifest)
            progress(f"Installed the front end in namespace {target.system_namespace} ({target.image})")
            deployment = client.get(Deployment, fm.FRONTEND_NAME, namespace=target.system_namespace)
            wait_rolled_out(
                client,
                target.system_namespace,
                fm.FRONTEND_NAME,
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


def _resource(manifest: Manifest) -> Any:
    from lightkube import codecs

    return type(codecs.from_dict(manifest))


def _foreign_workloads(client: Any, namespace: str) -> list[str]:
    """Pods in ``namespace`` that modelport did not create (they keep the namespace alive)."""
    from lightkube.resources.core_v1 import Pod

    foreign = []
    for pod in client.list(Pod, namespace=namespace):
        labels = pod.metadata.labels or {}
        if labels.get(LABEL_MANAGED_BY) != FIELD_MANAGER:
            foreign.append(pod.metadata.name)
    return foreign


def _remove(client: Any, target: KubernetesTarget, objects: list[Manifest]) -> dict[str, list[str]]:
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


def installed_manifests(target: KubernetesTarget, owner: str) -> list[Manifest]:
    """What attach applied for ``target`` (the signing key's value does not matter for deletion)."""
    objects = fm.attach_manifests(_cluster_inputs(target, owner), "x" * 32)
    # The namespace's shared Secrets, which deploys create.
    objects += [
        shared_secret(n, target.namespace, {})
        for n in (ARTIFACT_CREDENTIALS_SECRET, PACKAGE_INDEX_SECRET, REGISTRY_SECRET)
    ]
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
            gone = [(Deployment, fm.FRONTEND_NAME, target.system_namespace)] + [
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
