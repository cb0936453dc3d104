"""A simulated node for the testbed: registers a Ready Node and plays its kubelet's status part.

There is no container runtime here, so no container runs. What the real kubelet would report for
pods the real scheduler placed on this node is written instead: init containers terminated with
status 0, containers running and ready, a pod IP. That is enough for the real controllers to
roll Deployments out, fill Endpoints and garbage-collect, which is what the Kubernetes tier tests.
Like the kubelet, it syncs in a loop; it also confirms graceful deletions (the kubelet's job).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

SYNC_S = 0.1
# A pod template annotation that makes this node report a failure instead of a running pod.
FAULT_ANNOTATION = "sim.modelport.io/fault"
FAULTS = ("crash-loop", "oom-killed", "image-pull")
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "2"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedNode:
    """``with SimulatedNode(client_factory) as node:`` — a Ready node whose pods become Running/Ready."""

    def __init__(
        self, make_client: Any, name: str = "sim-node-1", capacity: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.capacity = capacity or dict(CAPACITY)
        self._make_client = make_client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_ip = 10
        self._reported: set[str] = set()
        self.errors: list[str] = []

    def register(self, kube: Client) -> None:
        """Create the Node, report it Ready with its capacity, and clear the not-ready taint."""
        kube.create(Node(metadata=ObjectMeta(name=self.name, labels={"kubernetes.io/hostname": self.name})))
        now = _now()
        kube.patch(
            Node.Status,
            self.name,
            {
                "status": {
                    "capacity": self.capacity,
                    "allocatable": self.capacity,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                }
            },
            patch_type=PatchType.MERGE,
        )
        # Admission taints a new node not-ready; the node lifecycle controller that would lift it
        # is off in the testbed (it would mark this heartbeat-less node unreachable).
        kube.patch(Node, self.name, {"spec": {"taints": None}}, patch_type=PatchType.MERGE)

    def _running_status(self, pod: Pod) -> dict[str, Any]:
        now = _now()
        self._next_ip += 1
        spec = pod.spec
        return {
            "status": {
                "phase": "Running",
                # Only data: nothing is sent there (Endpoints refuse loopback addresses).
                "podIP": f"192.0.2.{self._next_ip % 250 + 2}",
                "hostIP": "192.0.2.1",
                "startTime": now,
                "conditions": [
                    {"type": kind, "status": "True", "lastTransitionTime": now}
                    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "initContainerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "imageID": f"sim://{c.image}",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}},
                    }
                    for c in spec.initContainers or []
                ],
                "containerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "imageID": f"sim://{c.image}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    }
                    for c in spec.containers
                ],
            }
        }

    def _faulty_status(self, pod: Pod, fault: str) -> dict[str, Any]:
        """What the kubelet reports for a pod whose image cannot be pulled or whose container keeps dying."""
        status = self._running_status(pod)["status"]
        if fault == "image-pull":
            image = (
                pod.spec.initContainers[0].image if pod.spec.initContainers else pod.spec.containers[0].image
            )
            waiting = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            }
            status["phase"] = "Pending"
            status.pop("podIP")
            for entry in status["initContainerStatuses"] or status["containerStatuses"]:
                entry.update(ready=False, state=waiting)
        else:
            reason, code = ("OOMKilled", 137) if fault == "oom-killed" else ("Error", 1)
            for entry in status["containerStatuses"]:
                entry.update(
                    ready=False,
                    started=False,
                    restartCount=3,
                    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
                    lastState={"terminated": {"exitCode": code, "reason": reason, "finishedAt": _now()}},
                )
        for condition in status["conditions"]:
            if condition["type"] in ("ContainersReady", "Ready"):
                condition["status"] = "False"
        return {"status": status}

    def sync_once(self, kube: Client) -> None:
        """One pass over the pods bound to this node; each pod's status is reported once."""
        for pod in kube.list(Pod, namespace="*", fields={"spec.nodeName": self.name}):
            meta = pod.metadata
            try:
                if meta.deletionTimestamp is not None:
                    kube.delete(Pod, meta.name, namespace=meta.namespace, grace_period=0)
                elif meta.uid not in self._reported:
                    fault = (meta.annotations or {}).get(FAULT_ANNOTATION)
                    body = self._faulty_status(pod, fault) if fault else self._running_status(pod)
                    kube.patch(
                        Pod.Status, meta.name, body, namespace=meta.namespace, patch_type=PatchType.MERGE
                    )
                    self._reported.add(meta.uid)
            except ApiError as exc:
                if exc.status.code not in (404, 409):  # gone or changed meanwhile: next pass
                    self.errors.append(f"{meta.namespace}/{meta.name}: {exc}")

    def _loop(self) -> None:
        kube = self._make_client()
        try:
            while not self._stop.is_set():
                self.sync_once(kube)
                self._stop.wait(SYNC_S)
        finally:
            kube.close()

    def start(self, kube: Client) -> SimulatedNode:
        """Register the node and start syncing in a daemon thread."""
        self.register(kube)
        self._thread = threading.Thread(target=self._loop, name=f"simulated-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing (the Node object stays; the control plane goes away with the session)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
