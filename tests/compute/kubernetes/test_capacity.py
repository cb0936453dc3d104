"""Tier 0: the FastProd / DevTest check on hand-built Node objects."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.compute.kubernetes.capacity import check_purpose, cluster_capacity, parse_cpu
from modelport.errors import ComputeTargetException


def _node(name: str, cpu: str, ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_cpu_quantities() -> None:
    assert parse_cpu("4") == 4.0 and parse_cpu("3500m") == 3.5 and parse_cpu("0.5") == 0.5


def test_three_nodes_of_four_cpus_meet_fast_prod_exactly() -> None:
    capacity = check_purpose([_node(f"n{i}", "4") for i in range(3)], "FastProd")
    assert (capacity.nodes, capacity.cpus) == (3, 12.0)


def test_fast_prod_refusal_says_what_the_cluster_has() -> None:
    nodes = [
        _node("a", "8"),
        _node("b", "3900m"),
        _node("c", "8", ready=False),
        _node("d", "8", unschedulable=True),
    ]
    with pytest.raises(ComputeTargetException) as refused:
        check_purpose(nodes, "FastProd")
    message = refused.value.message
    assert (
        "At least 3 machine(s) are required for cluster with purpose 'FastProd'. Available machine(s) : 2"
        in message
    )
    assert "c: not Ready" in message and "d: cordoned" in message
    assert "DevTest" in message


def test_enough_nodes_but_too_few_cores() -> None:
    with pytest.raises(ComputeTargetException, match="at least 12 cores.*: 6"):
        check_purpose([_node(f"n{i}", "2") for i in range(3)], "FastProd")


def test_dev_test_has_no_minimum_and_unknown_purposes_are_refused() -> None:
    assert check_purpose([_node("solo", "1")], "DevTest").nodes == 1
    with pytest.raises(ComputeTargetException, match="FastProd, DevTest"):
        check_purpose([], "Prod")


def test_not_ready_taint_does_not_count() -> None:
    tainted = _node("t", "16", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    assert cluster_capacity([tainted]).nodes == 0
