"""The cluster-purpose check of attach: ``FastProd`` needs at least 12 allocatable vCPUs on at
least 3 Ready, schedulable nodes; ``DevTest`` has no minimum (Azure ML's rule; docs/kubernetes.md,
"Attach, create, detach").

Input is the cluster's Node objects as dicts; the refusal says what the cluster has, in Azure
ML's words, so that the user knows how far off it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelport.errors import ComputeTargetException

FAST_PROD: Final = "FastProd"
DEV_TEST: Final = "DevTest"
PURPOSES = (FAST_PROD, DEV_TEST)
FAST_PROD_MIN_CPUS = 12.0
FAST_PROD_MIN_NODES = 3


@dataclass(frozen=True)
class ClusterCapacity:
    """What the usable nodes of a cluster offer."""

    nodes: int
    cpus: float
    skipped: tuple[str, ...]  # "name: why" for nodes that do not count


def parse_cpu(quantity: str) -> float:
    """A Kubernetes CPU quantity (``"4"``, ``"3500m"``, ``"0.5"``) in cores."""
    text = str(quantity).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def _unusable(node: Mapping[str, Any]) -> str | None:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "cordoned (unschedulable)"
    for taint in spec.get("taints") or []:
        if taint.get("effect") == "NoSchedule" and taint.get("key", "").startswith("node.kubernetes.io/"):
            return f"tainted {taint['key']}"
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return "not Ready"
    return None


def cluster_capacity(nodes: Iterable[Mapping[str, Any]]) -> ClusterCapacity:
    """Count the Ready, schedulable nodes and their allocatable CPUs."""
    count, cpus, skipped = 0, 0.0, []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "?")
        why = _unusable(node)
        if why is not None:
            skipped.append(f"{name}: {why}")
            continue
        count += 1
        cpus += parse_cpu(((node.get("status") or {}).get("allocatable") or {}).get("cpu", "0"))
    return ClusterCapacity(count, cpus, tuple(skipped))


def check_purpose(nodes: Iterable[Mapping[str, Any]], purpose: str) -> ClusterCapacity:
    """Return the cluster's capacity, or refuse an attach whose purpose the cluster cannot meet."""
    if purpose not in PURPOSES:
        raise ComputeTargetException(
            f"cluster_purpose {purpose!r} is not one of {', '.join(PURPOSES)}. Fix: use "
            "AksCompute.ClusterPurpose.FAST_PROD or DEV_TEST (--cluster-purpose FastProd|DevTest)."
        )
    capacity = cluster_capacity(nodes)
    if purpose == DEV_TEST:
        return capacity
    problems = []
    if capacity.nodes < FAST_PROD_MIN_NODES:
        problems.append(
            f"At least {FAST_PROD_MIN_NODES} machine(s) are required for cluster with purpose 'FastProd'. "
            f"Available machine(s) : {capacity.nodes}"
        )
    if capacity.cpus < FAST_PROD_MIN_CPUS:
        problems.append(
            f"Cluster should have at least {FAST_PROD_MIN_CPUS:g} cores to operate. "
            f"Allocatable cores on Ready, schedulable nodes: {capacity.cpus:g}"
        )
    if problems:
        skipped = f" Not counted: {'; '.join(capacity.skipped)}." if capacity.skipped else ""
        raise ComputeTargetException(
            " ".join(problems) + "." + skipped + " Fix: add nodes, or attach with cluster_purpose DevTest "
            "(no minimum, no fault tolerance)."
        )
    return capacity
