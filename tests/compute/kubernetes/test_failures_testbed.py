"""Tier 1: each failure reaches its typed state through the real scheduler and controllers.

Unschedulable is entirely real (the scheduler compares requests with the simulated node's
capacity). Crash loops, OOM kills and image-pull failures are what the simulated node reports
for pods annotated with a fault, since no container runtime runs here.
"""

from __future__ import annotations

import time

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply_service
from modelport.compute.kubernetes.diagnose import IMAGE_PULL_BACK_OFF, diagnose
from modelport.service import states
from modelport.service.states import ServiceError
from tests.compute.kubernetes.node import FAULT_ANNOTATION, SimulatedNode
from tests.compute.kubernetes.specs import TESTBED_PDB_API, make_inputs, make_spec

pytestmark = pytest.mark.k8s

DIAGNOSIS_DEADLINE_S = 60.0
POLL_S = 0.1


def wait_diagnosis(kube: Client, namespace: str, service: str) -> tuple[str, ServiceError] | None:
    """Poll the service's pods until they show a problem or the deadline passes."""
    deadline = time.monotonic() + DIAGNOSIS_DEADLINE_S
    while time.monotonic() < deadline:
        pods = [p.to_dict() for p in kube.list(Pod, namespace=namespace, labels={m.LABEL_SERVICE: service})]
        found = diagnose(pods)
        if found is not None:
            return found
        time.sleep(POLL_S)
    return None


def test_more_cpu_than_any_node_has_is_unschedulable(
    kube: Client, namespace: str, node: SimulatedNode
) -> None:
    spec = make_spec(cpu_cores=64.0, autoscale_enabled=False, num_replicas=1)
    apply_service(
        kube, m.service_manifests(spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace))
    )

    found = wait_diagnosis(kube, namespace, spec.name)

    assert found is not None
    state, error = found
    assert state == states.UNSCHEDULABLE
    assert "insufficient cpu" in error.message and "cpu_cores" in error.message


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("crash-loop", states.CRASH_LOOP_BACK_OFF),
        ("oom-killed", states.OOM_KILLED),
        ("image-pull", IMAGE_PULL_BACK_OFF),
    ],
)
def test_injected_failures_reach_their_typed_state(
    kube: Client, namespace: str, node: SimulatedNode, fault: str, code: str
) -> None:
    spec = make_spec(autoscale_enabled=False, num_replicas=1)
    manifests = m.service_manifests(spec, make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace))
    manifests[0]["spec"]["template"]["metadata"]["annotations"][FAULT_ANNOTATION] = fault
    apply_service(kube, manifests)

    found = wait_diagnosis(kube, namespace, spec.name)

    assert found is not None
    state, error = found
    assert (state, error.code) == (states.FAILED, code)


def test_a_rollout_without_progress_times_out(kube: Client, namespace: str, node: SimulatedNode) -> None:
    from dataclasses import replace

    from lightkube.resources.apps_v1 import Deployment

    from modelport.compute.kubernetes.rollout import rollout_status, timed_out_error

    spec = make_spec(autoscale_enabled=False, num_replicas=1)
    # A short progress deadline, so that the real deployment controller gives up within the test.
    inputs = replace(make_inputs(pdb_api_version=TESTBED_PDB_API, namespace=namespace), progress_deadline_s=2)
    manifests = m.service_manifests(spec, inputs)
    manifests[0]["spec"]["template"]["metadata"]["annotations"][FAULT_ANNOTATION] = "crash-loop"
    generation = apply_service(kube, manifests)[f"Deployment/{spec.name}"].metadata.generation

    deadline = time.monotonic() + DIAGNOSIS_DEADLINE_S
    status = rollout_status(kube.get(Deployment, spec.name, namespace=namespace).to_dict(), generation)
    while status.phase == "progressing" and time.monotonic() < deadline:
        time.sleep(POLL_S)
        status = rollout_status(kube.get(Deployment, spec.name, namespace=namespace).to_dict(), generation)

    assert status.phase == "failed"
    error = timed_out_error(status)
    assert error is not None and error.code == states.DEPLOYMENT_TIMED_OUT
    assert "timed out progressing" in error.details[0].message


def test_fast_prod_check_reads_the_real_node_objects(kube: Client, node: SimulatedNode) -> None:
    from lightkube.resources.core_v1 import Node

    from modelport.compute.kubernetes.capacity import check_purpose
    from modelport.errors import ComputeTargetException

    nodes = [n.to_dict() for n in kube.list(Node)]
    assert check_purpose(nodes, "DevTest").cpus == 16.0  # the simulated node's allocatable CPUs
    with pytest.raises(ComputeTargetException, match="Available machine"):
        check_purpose(nodes, "FastProd")  # one node; FastProd needs three
