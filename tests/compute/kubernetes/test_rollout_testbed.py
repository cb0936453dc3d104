"""Tier 1: a service's Deployment rolls out through the real controllers and scheduler onto the
simulated node (pods are marked Running/Ready; no container runs), and an update rolls to a new
ReplicaSet while the old one is scaled down."""

from __future__ import annotations

import time

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Endpoints, Pod

from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply_service
from modelport.compute.kubernetes.rollout import RolloutStatus, rollout_status
from tests.compute.kubernetes.node import SimulatedNode
from tests.compute.kubernetes.specs import TESTBED_PDB_API, make_inputs, make_spec

pytestmark = pytest.mark.k8s

ROLLOUT_DEADLINE_S = 60.0
POLL_S = 0.1


def wait_rollout(kube: Client, namespace: str, name: str, generation: int) -> RolloutStatus:
    """Poll the Deployment until its rollout is complete or failed, or the deadline passes."""
    deadline = time.monotonic() + ROLLOUT_DEADLINE_S
    status = RolloutStatus("progressing", "not read yet")
    while time.monotonic() < deadline:
        status = rollout_status(kube.get(Deployment, name, namespace=namespace).to_dict(), generation)
        if status.phase != "progressing":
            return status
        time.sleep(POLL_S)
    return status


def test_deploy_then_update_rolls_out_on_the_simulated_node(
    kube: Client, namespace: str, node: SimulatedNode
) -> None:
    spec = make_spec(autoscale_enabled=False, num_replicas=2)
    applied = apply_service(
        kube,
        m.service_manifests(
            spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace, generation=1)
        ),
    )
    first_generation = applied[f"Deployment/{spec.name}"].metadata.generation

    status = wait_rollout(kube, namespace, spec.name, first_generation)

    assert status.phase == "complete", status.message
    pods = list(kube.list(Pod, namespace=namespace, labels={m.LABEL_SERVICE: spec.name}))
    assert len(pods) == 2 and {p.spec.nodeName for p in pods} == {node.name}
    endpoints = kube.get(Endpoints, spec.name, namespace=namespace)
    assert len(endpoints.subsets[0].addresses) == 2  # the Service finds both replicas

    updated = make_spec(autoscale_enabled=False, num_replicas=2, memory_gb=1.0)
    applied = apply_service(
        kube,
        m.service_manifests(
            updated, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace, generation=2)
        ),
    )
    second_generation = applied[f"Deployment/{spec.name}"].metadata.generation
    assert second_generation > first_generation

    status = wait_rollout(kube, namespace, spec.name, second_generation)

    assert status.phase == "complete", status.message
    sets = {
        rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
        for rs in kube.list(ReplicaSet, namespace=namespace, labels={m.LABEL_SERVICE: spec.name})
    }
    assert sets["1"].spec.replicas == 0  # the old ReplicaSet is scaled down
    assert sets["2"].spec.replicas == 2
    assert (
        sets["2"].spec.template.spec.containers[0].resources.requests["memory"] == "1Gi"
    )  # the server's canonical form of 1024Mi
