"""Rollouts, liveness and autoscaling on the real node: what only kubelet, containerd and runc show.

* ``update()`` to a new model version under steady load through the front end's NodePort, with 1
  replica and with 3: every request answered 200 while the kubelet starts new pods and stops old
  ones (preStop delay, the front end's pod watch, the replicas' graceful drain);
* an ``init()`` that never returns: ``GET /`` waits for the first ``init()`` (as Azure ML's server
  does), so the kubelet's liveness probe times out and the container is restarted;
* the front end's autoscaler scales 1 → 3 replicas under a load step, through the Deployment's
  scale subresource, and back to 1 once the load is gone.

Every address used here exists only inside the testbed's network namespace (conftest.py); every
load loop is bounded in requests and time.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Pod

from modelport import Model
from modelport.compute.kubernetes.manifests import ANNOTATION_GENERATION, LABEL_SERVICE
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.config.inference import InferenceConfig
from modelport.service import states
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace
from tests.compute.kubernetes.realnode.conftest import deploy
from tests.servers import wait_until

pytestmark = [pytest.mark.k8s_node]

DEPLOY_TIMEOUT_S = 300
API_POLL_S = 0.5  # how often the tests read pods from the API server (it is not a readiness stand-in)
# The model file's text is the model's answer: version 1 says "v1", version 2 "v2".
ANSWER_SCORE = """\
import os
import socket

answer = None


def init():
    global answer
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "answer.txt")) as handle:
        answer = handle.read().strip()


def run(raw_data):
    return {"answer": answer, "replica": socket.gethostname()}
"""
# A run() long enough that a handful of connections keep one replica busy (the autoscaler's load).
SLOW_SCORE = """\
import socket
import time


def init():
    pass


def run(raw_data):
    time.sleep(0.5)
    return {"replica": socket.gethostname()}
"""
# An init() waiting for something that never comes (a download that hangs, a lock never released).
HANGING_INIT = """\
import threading


def init():
    print("init() waits for a resource that never answers", flush=True)
    threading.Event().wait()


def run(raw_data):
    return "never reached"
"""


class Load:
    """``connections`` keep-alive connections, each posting to ``url`` in a loop, ``pace_s`` apart,
    until stopped, ``max_requests`` each or ``deadline_s``; every answer recorded per connection as
    (status, JSON body or error text), a transport error as status 0."""

    def __init__(
        self, url: str, key: str, connections: int, pace_s: float, max_requests: int, deadline_s: float
    ) -> None:
        self.url, self.key, self.pace_s = url, key, pace_s
        self.max_requests, self.deadline_s = max_requests, deadline_s
        self.answers: list[list[tuple[int, Any]]] = [[] for _ in range(connections)]
        self.stopped = threading.Event()
        self.started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(connections)
        ]

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self._threads:
            thread.join(60)

    def _loop(self, index: int) -> None:
        mine = self.answers[index]
        end = self.started + self.deadline_s
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=60, headers=headers) as client:
            while not self.stopped.is_set() and time.monotonic() < end and len(mine) < self.max_requests:
                try:
                    response = client.post(self.url, json={"data": [index]})
                    body = response.json() if response.status_code == 200 else response.text
                    mine.append((response.status_code, body))
                except httpx.HTTPError as exc:
                    mine.append((0, repr(exc)))
                self.stopped.wait(self.pace_s)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.started

    def failures(self) -> list[tuple[int, Any]]:
        """Every answer other than 200 (transport errors included)."""
        return [a for answers in self.answers for a in answers if a[0] != 200]

    def count(self) -> int:
        """Requests answered so far, all connections together."""
        return sum(len(answers) for answers in self.answers)


def _pods(kube: Client, namespace: str, name: str) -> list[Pod]:
    return list(kube.list(Pod, namespace=namespace, labels={LABEL_SERVICE: name}))


def _ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions or []) if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _rolled_out(kube: Client, namespace: str, name: str, replicas: int) -> bool:
    """Exactly ``replicas`` pods, all of the Deployment's current generation, ready, none stopping:
    the old pods are gone, not only marked for deletion."""
    generation = kube.get(Deployment, name, namespace=namespace).spec.template.metadata.annotations[
        ANNOTATION_GENERATION
    ]
    pods = _pods(kube, namespace, name)
    return len(pods) == replicas and all(
        p.metadata.annotations.get(ANNOTATION_GENERATION) == generation
        and p.metadata.deletionTimestamp is None
        and _ready(p)
        for p in pods
    )


def _inference(tmp_path: Path, name: str) -> InferenceConfig:
    """The inference config ``deploy`` made for service ``name``."""
    return InferenceConfig(entry_script="score.py", source_directory=str(tmp_path / f"src-{name}"))


def _answer_models(tmp_path: Path, ws: Workspace) -> tuple[Model, Model]:
    models = []
    for answer in ("v1", "v2"):
        folder = tmp_path / answer
        folder.mkdir()
        (folder / "answer.txt").write_text(answer + "\n")
        models.append(Model.register(ws, str(folder / "answer.txt"), "answer"))
    return models[0], models[1]


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.timeout(1200)
def test_update_to_a_new_model_version_under_steady_load_fails_no_request(
    cluster: tuple[Workspace, KubernetesTarget], node_kube: Client, tmp_path: Path, replicas: int
) -> None:
    ws, target = cluster
    v1, v2 = _answer_models(tmp_path, ws)
    name = f"steady-{replicas}"
    # Admission wide enough that the load itself never queues past the wait limit: what is under
    # test is the rollout, not the queue (the front end's admission has its own tests).
    service = deploy(
        ws,
        name,
        [v1],
        ANSWER_SCORE,
        tmp_path,
        num_replicas=replicas,
        replica_max_concurrent_requests=8,
        max_request_wait_time=60_000,
    )
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)
    assert service.state == states.HEALTHY
    wait_until(
        lambda: _rolled_out(node_kube, target.namespace, name, replicas),
        f"{replicas} ready pod(s) of {name}",
        DEPLOY_TIMEOUT_S,
        API_POLL_S,
    )
    key, _ = service.get_keys()

    with Load(
        service.scoring_uri, key, connections=8, pace_s=0.02, max_requests=5000, deadline_s=600
    ) as load:
        wait_until(lambda: all(load.answers), "a first answer on every connection", 60, API_POLL_S)
        # Azure ML's update() takes new models together with the inference config.
        service.update(models=[v2], inference_config=_inference(tmp_path, name))
        service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)
        wait_until(
            lambda: _rolled_out(node_kube, target.namespace, name, replicas),
            f"the old pods of {name} gone",
            DEPLOY_TIMEOUT_S,
            API_POLL_S,
        )
        # Every connection gets one more answer after the old pods are gone (from the new ones).
        seen = [len(answers) for answers in load.answers]
        wait_until(
            lambda: all(len(a) > n + 1 for a, n in zip(load.answers, seen, strict=True)),
            "answers after the rollout",
            60,
            API_POLL_S,
        )
        wait_until(lambda: load.elapsed_s >= 20, "20 s of steady load", 30, API_POLL_S)

    failures = load.failures()
    assert not failures, f"{len(failures)} of {load.count()} requests failed, e.g. {failures[:5]}"
    assert load.count() >= 8 * 10
    assert all(answers[0][1]["answer"] == "v1" for answers in load.answers)
    assert all(answers[-1][1]["answer"] == "v2" for answers in load.answers)
    new_pods = {p.metadata.name for p in _pods(node_kube, target.namespace, name)}
    answered_v2 = {
        body["replica"] for answers in load.answers for _, body in answers if body["answer"] == "v2"
    }
    assert answered_v2 and answered_v2 <= new_pods
    assert service.run({"data": [0]})["answer"] == "v2"
    service.delete()


@pytest.mark.timeout(900)
def test_a_replica_that_stops_answering_its_liveness_probe_is_restarted_by_the_kubelet(
    cluster: tuple[Workspace, KubernetesTarget], node_kube: Client, tmp_path: Path
) -> None:
    ws, target = cluster
    name = "hangs"
    # The probe starts after 1 s, runs every 2 s with a 1 s timeout, fails after 2 misses.
    deploy(
        ws,
        name,
        [],
        HANGING_INIT,
        tmp_path,
        initial_delay_seconds=1,
        period_seconds=2,
        timeout_seconds=1,
        failure_threshold=2,
    )

    def restarted() -> bool:
        pods = _pods(node_kube, target.namespace, name)
        statuses = [s for p in pods for s in (p.status.containerStatuses or [])]
        return any(s.name == "scorer" and s.restartCount >= 1 for s in statuses)

    wait_until(restarted, "the scorer container restarted", DEPLOY_TIMEOUT_S, API_POLL_S)

    (pod,) = _pods(node_kube, target.namespace, name)
    (status,) = pod.status.containerStatuses
    assert status.lastState.terminated is not None  # the kubelet stopped the container it ran
    events = node_kube.list(
        Event, namespace=target.namespace, fields={"involvedObject.name": pod.metadata.name}
    )
    messages = [(e.reason, e.message or "") for e in events]
    assert any(reason == "Unhealthy" and "Liveness probe failed" in m for reason, m in messages), messages
    assert any(reason == "Killing" and "failed liveness probe" in m for reason, m in messages), messages
    Webservice(ws, name).delete()


@pytest.mark.timeout(1200)
def test_the_autoscaler_scales_one_to_three_replicas_under_a_load_step_and_back(
    cluster: tuple[Workspace, KubernetesTarget], node_kube: Client, tmp_path: Path
) -> None:
    ws, target = cluster
    name = "elastic"
    # Four connections of 0.5 s requests keep 4 busy: 4 ÷ (1 replica × 4 per replica) = 100 %,
    # far above the 10 % target, so the planner asks for more than the maximum of 3.
    service = deploy(
        ws,
        name,
        [],
        SLOW_SCORE,
        tmp_path,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=3,
        autoscale_target_utilization=10,
        autoscale_refresh_seconds=1,
        replica_max_concurrent_requests=4,
        max_request_wait_time=60_000,
        num_replicas=None,
    )
    service.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)
    assert len(_pods(node_kube, target.namespace, name)) == 1
    key, _ = service.get_keys()

    with Load(service.scoring_uri, key, connections=4, pace_s=0.0, max_requests=2000, deadline_s=600) as load:
        wait_until(
            lambda: node_kube.get(Deployment, name, namespace=target.namespace).spec.replicas == 3,
            "the autoscaler's 3 replicas",
            120,
            API_POLL_S,
        )
        wait_until(
            lambda: len([p for p in _pods(node_kube, target.namespace, name) if _ready(p)]) == 3,
            "3 ready replicas",
            DEPLOY_TIMEOUT_S,
            API_POLL_S,
        )

        def served_by_several_replicas() -> bool:
            pods = {
                body["replica"] for answers in load.answers for _, body in answers if isinstance(body, dict)
            }
            return len(pods) >= 2

        wait_until(served_by_several_replicas, "answers from an added replica", 120, API_POLL_S)

    failures = load.failures()
    assert not failures, f"{len(failures)} of {load.count()} requests failed, e.g. {failures[:5]}"
    # The front end records each count it writes to the scale subresource as an Event.
    events = node_kube.list(Event, namespace=target.namespace, fields={"involvedObject.name": name})
    autoscaled = [e.message for e in events if e.reason == "Autoscale"]
    assert any(m.startswith("Scaled from 1 to") for m in autoscaled), autoscaled

    # No load: after the scale-down delay (60 s) the count goes back to the minimum.
    wait_until(
        lambda: node_kube.get(Deployment, name, namespace=target.namespace).spec.replicas == 1,
        "the scale-down to 1 replica",
        240,
        API_POLL_S,
    )
    wait_until(
        lambda: len(_pods(node_kube, target.namespace, name)) == 1,
        "the extra pods gone",
        DEPLOY_TIMEOUT_S,
        API_POLL_S,
    )
    events = node_kube.list(Event, namespace=target.namespace, fields={"involvedObject.name": name})
    # Down to the most replicas needed while below target: straight from 3, or through 2 when the
    # load's last requests still needed two (frontend/autoscaler.py), then to 1.
    downs = [e.message for e in events if e.reason == "Autoscale" and " to 1 replicas" in e.message]
    assert any(re.match(r"Scaled from [23] to 1 replicas: below target for", m) for m in downs), downs
    # The service's history has them too, from the cluster's Events, beside the workspace's.
    history = service.get_events()
    assert {"operation", "state", "autoscale"} <= {e["kind"] for e in history}
    scaled = [e["message"] for e in history if e["kind"] == "autoscale"]
    assert any(f"Deployment/{name}: Autoscale: Scaled from 1 to" in m for m in scaled), scaled
    service.delete()
