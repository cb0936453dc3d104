"""A simulated node for the testbed: registers a Ready Node and plays its kubelet.

By default no container runs (there is no container runtime here): what the real kubelet would
report for pods the real scheduler placed on this node is written instead: init containers
terminated with status 0, containers running and ready, a pod IP from 192.0.2.0/24 (only data).
That is enough for the real controllers to roll Deployments out, fill Endpoints and
garbage-collect. A pod template annotated ``sim.modelport.io/fault`` gets a failure's statuses.

Pods in a namespace labelled ``sim.modelport.io/run=process`` (``RUN_LABEL``/``RUN_PROCESS``; see
``run_processes_in``) are **run for real** as local processes, each with a loopback pod IP, its
volumes, env, probes, restarts and logs (``tests/compute/kubernetes/kubelet.py`` says how, and how that
differs from a kubelet) — unless they carry a fault annotation, which still wins. The node serves the
kubelet's log endpoint over HTTPS on 127.0.0.1 and advertises it in the Node's status, so
``Client.log`` works through the real apiserver.

Like the kubelet, it syncs in a loop (one thread, which also starts every process: the processes'
parent-death signal is tied to it); it also confirms graceful deletions once a run pod's
processes are gone. ``stop()`` kills every process it started.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.types import PatchType

from tests.compute.kubernetes.kubelet import (
    HOST_IP,
    RUN_LABEL,
    RUN_PROCESS,
    KubeletServer,
    ProcessPod,
    allocate_pod_ip,
    pod_ports,
)

__all__ = [
    "CAPACITY",
    "FAULTS",
    "FAULT_ANNOTATION",
    "RUN_LABEL",
    "RUN_PROCESS",
    "SimulatedNode",
    "run_processes_in",
]

SYNC_S = 0.1
# A pod template annotation that makes this node report a failure instead of a running pod.
FAULT_ANNOTATION = "sim.modelport.io/fault"
FAULTS = ("crash-loop", "oom-killed", "image-pull")
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "2"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_processes_in(kube: Client, namespace: str) -> None:
    """Label ``namespace`` so that the simulated node runs its pods as real processes.

    Label it before creating pods: the node decides once per pod, when it first sees it.
    """
    kube.patch(
        Namespace, namespace, {"metadata": {"labels": {RUN_LABEL: RUN_PROCESS}}}, patch_type=PatchType.MERGE
    )


class SimulatedNode:
    """``SimulatedNode(client_factory).start(kube)`` — a Ready node whose pods become Running/Ready.

    ``make_client`` makes the sync thread's own lightkube client. ``work_dir`` holds run pods'
    folders and the kubelet certificate (a temporary folder, removed by ``stop()``, by default).
    ``api_server`` (the testbed's URL) becomes run pods' ``KUBERNETES_SERVICE_HOST``/``PORT``.
    """

    def __init__(
        self,
        make_client: Any,
        name: str = "sim-node-1",
        capacity: dict[str, str] | None = None,
        work_dir: Path | None = None,
        api_server: str | None = None,
    ) -> None:
        self.name = name
        self.capacity = capacity or dict(CAPACITY)
        self.api_server = api_server
        self._make_client = make_client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_ip = 10
        self._reported: set[str] = set()
        self._work_dir = work_dir
        self._own_work_dir = work_dir is None
        self._runs: dict[str, bool] = {}  # pod uid → run as processes (decided when first seen)
        self._pods: dict[str, ProcessPod] = {}  # by uid, only touched by the sync thread
        self._by_name: dict[tuple[str, str], ProcessPod] = {}  # for the log server's threads
        self._lock = threading.Lock()
        self._written: dict[str, dict[str, Any]] = {}  # uid → the status last written
        self._server: KubeletServer | None = None
        self.errors: list[str] = []

    @property
    def work_dir(self) -> Path:
        """The folder with run pods' folders (volumes, logs) and the kubelet certificate."""
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix=f"modelport-{self.name}-"))
        return self._work_dir

    @property
    def kubelet_port(self) -> int | None:
        """The port of the kubelet endpoint on 127.0.0.1 (once started)."""
        return self._server.port if self._server is not None else None

    def process_pod(self, namespace: str, name: str) -> ProcessPod | None:
        """The run pod ``namespace/name`` (its IP, folders, processes), if this node runs it."""
        with self._lock:
            return self._by_name.get((namespace, name))

    def register(self, kube: Client) -> None:
        """Create the Node, report it Ready with its capacity, and clear the not-ready taint.

        With the kubelet endpoint started, the Node's addresses and daemon endpoint lead the
        apiserver to it for logs (the testbed prefers InternalIP, since ``Hostname`` resolves to
        nothing here).
        """
        kube.create(Node(metadata=ObjectMeta(name=self.name, labels={"kubernetes.io/hostname": self.name})))
        now = _now()
        status: dict[str, Any] = {
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
        if self._server is not None:
            status["addresses"] = [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": self.name},
            ]
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self._server.port}}
        kube.patch(Node.Status, self.name, {"status": status}, patch_type=PatchType.MERGE)
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

    def _runs_processes(self, kube: Client, pod: Pod) -> bool:
        uid = pod.metadata.uid
        if uid not in self._runs:
            if (pod.metadata.annotations or {}).get(FAULT_ANNOTATION):
                self._runs[uid] = False  # an injected fault's statuses win, even where pods run
            else:
                try:
                    labels = kube.get(Namespace, pod.metadata.namespace).metadata.labels or {}
                except ApiError as exc:
                    if exc.status.code != 404:
                        raise
                    labels = {}
                self._runs[uid] = labels.get(RUN_LABEL) == RUN_PROCESS
        return self._runs[uid]

    def _forget(self, uid: str) -> None:
        run = self._pods.pop(uid, None)
        if run is not None:
            with self._lock:
                if self._by_name.get((run.namespace, run.name)) is run:  # not a new pod of that name
                    del self._by_name[(run.namespace, run.name)]
            run.remove_files()
        self._written.pop(uid, None)
        self._runs.pop(uid, None)
        self._reported.discard(uid)

    def _sync_process_pod(self, kube: Client, pod: Pod) -> None:
        meta = pod.metadata
        run = self._pods.get(meta.uid)
        if meta.deletionTimestamp is not None:
            grace = meta.deletionGracePeriodSeconds
            if run is None or run.terminate(float(grace if grace is not None else 30)):
                self._forget(meta.uid)
                kube.delete(Pod, meta.name, namespace=meta.namespace, grace_period=0)
            return
        if run is None:
            body = pod.to_dict()
            ip = allocate_pod_ip([p.ip for p in self._pods.values()], pod_ports(body["spec"]))
            run = ProcessPod(body, self.work_dir / "pods" / meta.uid, ip, self.name, self.api_server)
            self._pods[meta.uid] = run
            with self._lock:
                self._by_name[(meta.namespace, meta.name)] = run
        run.step(kube)
        status = run.status()
        if self._written.get(meta.uid) != status:
            kube.patch(
                Pod.Status,
                meta.name,
                {"status": status},
                namespace=meta.namespace,
                patch_type=PatchType.MERGE,
            )
            self._written[meta.uid] = copy.deepcopy(status)

    def sync_once(self, kube: Client) -> None:
        """One pass over the pods bound to this node.

        A status-only pod's status is reported once; a run pod is advanced (processes started,
        polled, probed, stopped) and its status written when it changed. Run pods that vanished
        without a graceful deletion (force-deleted) are killed.
        """
        listed = list(kube.list(Pod, namespace="*", fields={"spec.nodeName": self.name}))
        for pod in listed:
            meta = pod.metadata
            try:
                if self._runs_processes(kube, pod):
                    self._sync_process_pod(kube, pod)
                elif meta.deletionTimestamp is not None:
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
            except httpx2.TransportError:
                pass  # the apiserver was slow or unreachable for a moment: the next pass retries
            except Exception as exc:  # one pod's trouble must not stop the others; the fixture reports it
                self._error(f"{meta.namespace}/{meta.name}: {exc!r}")
        present = {pod.metadata.uid for pod in listed}
        for uid in [uid for uid in self._pods if uid not in present]:
            self._pods[uid].kill()
            self._forget(uid)
        for uid in [uid for uid in self._runs if uid not in present]:
            self._forget(uid)

    def _error(self, message: str) -> None:
        if message not in self.errors:  # once: the loop would repeat it every pass
            self.errors.append(message)

    def _loop(self) -> None:
        kube = self._make_client()
        try:
            while not self._stop.is_set():
                try:
                    self.sync_once(kube)
                except httpx2.TransportError:
                    pass  # the apiserver was slow or unreachable for a moment: the next pass retries
                except Exception as exc:  # the node keeps syncing; the fixture reports the error
                    self._error(f"sync: {exc!r}")
                self._stop.wait(SYNC_S)
        finally:
            # In this thread: the processes' parent-death signal fires when it ends anyway.
            for uid in list(self._pods):
                self._pods[uid].kill()
                self._forget(uid)
            kube.close()

    def start(self, kube: Client) -> SimulatedNode:
        """Start the kubelet endpoint, register the node and start syncing in a daemon thread."""
        self._server = KubeletServer(self.work_dir, self.process_pod).start()
        self.register(kube)
        self._thread = threading.Thread(target=self._loop, name=f"simulated-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing, kill every process the node started, stop the kubelet endpoint.

        The Node object stays; the control plane goes away with the session.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self._server is not None:
            self._server.stop()
        if self._own_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
