"""The process part of the simulated node: runs a pod's containers as real local processes.

Opt-in per namespace: pods in a namespace labelled ``sim.modelport.io/run=process``
(``RUN_LABEL``/``RUN_PROCESS``) are run for real by ``tests/compute/kubernetes/node.py``; all other pods keep
the node's status-only behaviour. What runs, and how it differs from a kubelet with a container runtime:

* **Images are ignored.** Every container runs in this virtualenv: the executable ``python`` (or
  ``python3``) is this interpreter (``sys.executable``), whose folder comes first on ``PATH``. A
  container without ``command`` cannot run (its image's entrypoint is unknown): it stays waiting
  with ``CreateContainerConfigError``. Processes run as the test's user (root), with no resource
  limits (so no OOM kills: use the ``sim.modelport.io/fault`` annotation for those) and no
  ``securityContext``.
* **Networking.** Each pod gets a distinct loopback address ``127.0.x.y`` (x, y in 1..254, chosen
  at random so that two test sessions on one machine hardly ever meet, and checked free for the
  pod's declared and probed ports), written as ``status.podIP``/``podIPs``; the 1.20 apiserver
  accepts loopback pod IPs. There is no network namespace, so **the one rewrite** the simulation
  makes: a command/args item that is exactly ``0.0.0.0`` becomes the pod IP, so that servers bind
  their port on their own address. (A program that binds ``0.0.0.0`` on its own binds every
  address; give it the pod IP through args or ``valueFrom.fieldRef: status.podIP``.) The
  endpoints controller cannot list these pods in a Service's ``Endpoints`` (the apiserver refuses
  loopback addresses there); ``EndpointSlices`` and the pods themselves do carry the IPs.
  ``KUBERNETES_SERVICE_HOST``/``PORT`` point at the testbed's apiserver when the node knows it.
* **Mounts.** Each container instance runs in a mount namespace of its own (``unshare -m
  --propagation private``, as each real container has its own), in which each of its
  ``volumeMounts`` is bind-mounted at its ``mountPath`` (``subPath`` and ``readOnly`` honoured):
  ``emptyDir`` is a per-pod folder shared by the pod's containers; ``configMap`` and ``secret``
  are folders the node writes once at pod start from the object's ``data``/``binaryData``
  (``items`` key→path and modes honoured; later changes to the object are not seen);
  ``hostPath`` is the path itself. Other volume types keep the pod in ``ContainerCreating``.
  Mount points missing on this machine are created there (empty folders, left in place: another
  session's pods may be using them as mount points in their own namespaces).
* **Env**: ``value`` (with ``$(VAR)`` expansion, also in command/args), ``valueFrom``
  (``secretKeyRef``, ``configMapKeyRef``, ``fieldRef`` for name, namespace, uid, node name, pod
  and host IP), ``envFrom`` (``secretRef``, ``configMapRef``, ``prefix``), on a base of ``PATH``,
  ``HOME``, ``HOSTNAME``, ``LANG`` and the runtime image's ``PYTHONUNBUFFERED``/``PYTHONDONTWRITEBYTECODE``
  (nothing else of the test's environment leaks in). ``workingDir`` is created if missing.
* **Lifecycle.** Init containers run in order, each to exit 0, before the containers start.
  ``restartPolicy`` is honoured (``Always``, ``OnFailure``, ``Never``). A container that exits is
  restarted after the simulation's back-off: 0.5 s doubling to 5 s, back to 0.5 s after an
  instance that ran 10 s (a kubelet uses 10 s doubling to 5 min and restarts the first crash at
  once); between restarts it reports ``waiting: CrashLoopBackOff``, ``lastState.terminated``
  (``exitCode``, ``reason`` ``Error``/``Completed``, 128+n for signal n) and ``restartCount``.
* **Probes**: readiness ``httpGet`` (on the pod IP by default) and ``tcpSocket`` drive the
  container's ``ready`` and the pod's ``ContainersReady``/``Ready`` conditions, with
  ``initialDelaySeconds``, ``periodSeconds`` (never more often than every 0.5 s),
  ``timeoutSeconds`` (capped at 1 s, since probes run in the node's sync loop),
  ``successThreshold`` and ``failureThreshold``. ``exec`` readiness probes count as passing.
  Liveness and startup probes are ignored (a hung process is never restarted).
* **Logs**: each container instance's stdout+stderr go to one file; ``KubeletServer`` serves them
  as a kubelet does (``GET /containerLogs/{namespace}/{pod}/{container}`` with ``tailLines``,
  ``limitBytes``, ``previous`` and ``follow``; ``timestamps`` and ``sinceSeconds`` are ignored)
  over HTTPS on 127.0.0.1 (a self-signed certificate from openssl; the apiserver checks none),
  advertised as the Node's InternalIP and ``daemonEndpoints.kubeletEndpoint.Port``, so
  ``Client.log`` works through the real apiserver (the testbed passes
  ``--kubelet-preferred-address-types=InternalIP,Hostname``). They go away with the pod.
* **Status**: written through the pod's status subresource (merge patch), only when it changed;
  ``hostIP`` is 127.0.0.1. Nothing is written while a pod terminates.
* **Termination.** On a graceful deletion the pod's processes get SIGTERM and, after the grace
  period (capped at ``GRACE_CAP_S``), SIGKILL — every process the container started, including
  ones that left its process group; then the pod's folders are removed and the deletion is
  confirmed. Each container instance has a small launcher (``_launcher_main``) as its parent: it
  makes the mounts, starts the container's main process in a process group of its own, is a
  child subreaper (orphaned descendants come back to it, so it can kill and reap them all: none
  is left as a zombie), kills what is left when the main process exits (as a runtime does when a
  container's PID 1 exits), and kills the whole tree when the node's sync thread goes away
  (``PR_SET_PDEATHSIG``), so even a SIGKILLed pytest leaves no container process behind (only
  the exited launcher itself, a zombie of PID 1 on machines whose PID 1 does not reap).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import inspect
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lightkube import Client
from lightkube.resources.core_v1 import ConfigMap, Secret

from modelport.compute.kubernetes.connection import get_or_none

# A namespace with this label (value ``RUN_PROCESS``) has its pods run as real processes.
RUN_LABEL = "sim.modelport.io/run"
RUN_PROCESS = "process"

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 5.0
# An instance that ran this long resets the back-off (the kubelet's equivalent is 10 min).
BACKOFF_RESET_S = 10.0
# Deletions wait at most this long for SIGTERM to work (pods default to 30 s).
GRACE_CAP_S = 3.0
# After SIGKILL (or the launcher's tree kill), how long to wait before giving up on a process.
KILL_WAIT_S = 5.0
PROBE_MIN_PERIOD_S = 0.5
PROBE_TIMEOUT_CAP_S = 1.0
# How often a pod whose volumes or env cannot be resolved yet (missing ConfigMap/Secret) retries.
SETUP_RETRY_S = 1.0
HOST_IP = "127.0.0.1"
# Signal the launcher treats as "kill the whole container tree now"; also its parent-death signal.
_KILL_TREE = signal.SIGUSR1


class SetupError(Exception):
    """A pod or container cannot start yet; the message is what its status shows."""


def now_rfc3339() -> str:
    """The current time as the API writes timestamps (seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the launcher ----------------------------------------------------------------------------


def _launcher_main() -> None:  # pragma: no cover - runs in the launcher process
    """Mount, then run and supervise one container instance (``python -S -c`` source; stdlib only).

    argv[1] is a JSON spec: ``mounts`` (source, target, readOnly, file), ``cwd``, ``argv``,
    ``env`` and ``parent`` (the node's pid). It runs inside ``unshare -m --propagation
    private``, so the mounts are this instance's alone. SIGTERM is forwarded to the container's
    process group; SIGUSR1 (also the parent-death signal) kills every descendant. When the
    container's main process exits, whatever it left running is killed too (as a runtime does
    when a container's PID 1 exits), and the launcher exits with the main process's status
    (128+n for signal n).
    """
    import contextlib
    import ctypes
    import json
    import os
    import signal
    import sys

    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    libc = ctypes.CDLL(None, use_errno=True)
    state: dict[str, int] = {"main": 0, "term": 0}

    def children() -> list[int]:
        # A subreaper's direct children are also its orphaned descendants.
        me = str(os.getpid())
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[1] == me:
                    found.append(int(entry))
        return found

    def kill_tree() -> None:
        while True:
            if state["main"]:
                with contextlib.suppress(OSError):
                    os.killpg(state["main"], signal.SIGKILL)
            pids = children()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def on_term(signum: int, frame: object) -> None:
        state["term"] = 1
        if state["main"]:
            with contextlib.suppress(OSError):
                os.killpg(state["main"], signal.SIGTERM)

    def on_kill(signum: int, frame: object) -> None:
        kill_tree()
        os._exit(137)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_kill)
    libc.prctl(1, int(signal.SIGUSR1))  # PR_SET_PDEATHSIG: the node's sync thread is gone
    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    if os.getppid() != spec["parent"]:
        os._exit(137)  # the node went away before the death signal was armed

    def fail(message: str, code: int) -> None:
        sys.stderr.write(f"sim: {message}\n")
        sys.stderr.flush()
        os._exit(code)

    ms_rdonly, ms_remount, ms_bind, ms_rec = 1, 32, 4096, 16384
    for mount in sorted(spec["mounts"], key=lambda m: len(m["target"].rstrip("/").split("/"))):
        target = mount["target"]
        try:
            if mount["file"]:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if not os.path.exists(target):
                    open(target, "a").close()
            else:
                os.makedirs(target, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create mount point {target}: {exc}", 128)
        if libc.mount(mount["source"].encode(), target.encode(), None, ms_bind | ms_rec, None) != 0:
            fail(f"cannot mount {mount['source']} at {target}: {os.strerror(ctypes.get_errno())}", 128)
        flags = ms_bind | ms_remount | ms_rdonly
        if mount["readOnly"] and libc.mount(None, target.encode(), None, flags, None) != 0:
            fail(f"cannot make {target} read-only: {os.strerror(ctypes.get_errno())}", 128)

    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.setpgid(0, 0)
        libc.prctl(1, int(signal.SIGKILL))  # dies with the launcher, whatever kills it
        try:
            if spec["cwd"]:
                os.makedirs(spec["cwd"], exist_ok=True)
                os.chdir(spec["cwd"])
            os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
        except OSError as exc:
            sys.stderr.write(f"sim: cannot run {spec['argv'][0]!r}: {exc}\n")
            sys.stderr.flush()
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also done by the child: whichever runs first
    state["main"] = pid
    if state["term"]:
        on_term(signal.SIGTERM, None)
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(137)
        if reaped == pid:
            break
    kill_tree()
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


LAUNCHER_SOURCE = inspect.getsource(_launcher_main) + "\n_launcher_main()\n"


# --- helpers ----------------------------------------------------------------------------------


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are replaced, ``$$`` is a ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


def _can_bind(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def allocate_pod_ip(taken: Iterable[str], ports: Iterable[int], rng: random.Random | None = None) -> str:
    """A loopback address ``127.0.x.y`` not in ``taken`` on which every one of ``ports`` is free."""
    rng = rng or random.Random()
    taken, ports = set(taken), sorted(set(ports))
    for _ in range(1000):
        ip = f"127.0.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        if ip not in taken and all(_can_bind(ip, port) for port in ports):
            return ip
    raise RuntimeError("no free loopback pod IP found")


def process_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, parent pid, start time)`` of a live process from /proc, or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it (by parent pid, from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = process_stat(int(entry))
            if stat is not None:
                parents.setdefault(stat[1], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _decode(values: Mapping[str, str] | None) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in (values or {}).items()}


def _config_map_bytes(kube: Client, namespace: str, name: str) -> dict[str, bytes] | None:
    found = get_or_none(kube, ConfigMap, name, namespace)
    if found is None:
        return None
    data = {key: value.encode() for key, value in (found.data or {}).items()}
    return {**data, **_decode(found.binaryData)}


def _secret_bytes(kube: Client, namespace: str, name: str) -> dict[str, bytes] | None:
    found = get_or_none(kube, Secret, name, namespace)
    return None if found is None else _decode(found.data)


def _safe_join(root: Path, relative: str) -> Path:
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise SetupError(f"invalid path {relative!r} in a volume or subPath")
    return root.joinpath(*parts)


def _write_files(
    folder: Path, data: Mapping[str, bytes], items: list[dict[str, Any]] | None, default_mode: int
) -> None:
    """Write a ConfigMap's or Secret's keys as files, as a kubelet's volume plugin does."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = items if items else [{"key": key, "path": key} for key in sorted(data)]
    for item in wanted:
        if item["key"] not in data:
            raise SetupError(f"key {item['key']!r} not found")
        path = _safe_join(folder, item["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[item["key"]])
        path.chmod(item.get("mode") if item.get("mode") is not None else default_mode)


def pod_ports(spec: Mapping[str, Any]) -> list[int]:
    """The ports a pod's containers declare or are probed on: they must be free on its IP."""
    ports = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        ports += [int(p["containerPort"]) for p in container.get("ports") or []]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(kind) or {}
            handler = probe.get("httpGet") or probe.get("tcpSocket") or {}
            if isinstance(handler.get("port"), int):
                ports.append(handler["port"])
    return ports


# --- containers -------------------------------------------------------------------------------


@dataclass
class ContainerRun:
    """One container of a run pod: its current process, restarts, readiness and log files."""

    spec: dict[str, Any]
    init: bool
    restart_count: int = 0
    process: subprocess.Popen[bytes] | None = None
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "PodInitializing"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    done: bool = False  # terminated and not to be restarted
    ready: bool = False
    next_start: float = 0.0
    backoff: float = BACKOFF_INITIAL_S
    started_mono: float = 0.0
    container_id: str = ""
    log_paths: list[Path] = field(default_factory=list)
    probe_next: float = 0.0
    probe_successes: int = 0
    probe_failures: int = 0

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        """True while the container's launcher runs."""
        return self.process is not None

    def status(self) -> dict[str, Any]:
        """The container's entry in ``containerStatuses`` / ``initContainerStatuses``."""
        image = self.spec.get("image") or ""
        entry: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"sim://{image}",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            entry["containerID"] = self.container_id
        if not self.init:
            entry["started"] = self.running
        return entry

    def wait(self, reason: str, message: str | None = None) -> None:
        """Report the container waiting (before its first start, or unable to start)."""
        waiting = {"reason": reason, **({"message": message} if message else {})}
        self.state = {"waiting": waiting}


# --- pods -------------------------------------------------------------------------------------


class ProcessPod:
    """A pod the node runs for real: folders, volumes, containers, status, termination."""

    def __init__(
        self, pod: Mapping[str, Any], root: Path, ip: str, node_name: str, api_server: str | None = None
    ) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.spec: dict[str, Any] = dict(spec)
        self.root = root
        self.ip = ip
        self.node_name = node_name
        self.api_server = api_server
        self.policy: str = spec.get("restartPolicy") or "Always"
        self.inits = [ContainerRun(dict(c), init=True) for c in spec.get("initContainers") or []]
        self.containers = [ContainerRun(dict(c), init=False) for c in spec.get("containers") or []]
        self.start_time = now_rfc3339()
        self.volumes: dict[str, Path] | None = None  # name → folder, once prepared
        self.setup_error: str | None = None
        self.setup_next = 0.0
        self.terminating_since: float | None = None
        self.kill_deadline = 0.0
        self.killed = False
        self._conditions: dict[str, tuple[str, str]] = {}
        scheduled = next(
            (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
            None,
        )
        self._conditions["PodScheduled"] = (
            "True",
            (scheduled or {}).get("lastTransitionTime") or self.start_time,
        )
        (root / "logs").mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(exist_ok=True)

    # -- lookup (also used by the log server's threads) --

    def container(self, name: str) -> ContainerRun | None:
        """The init container or container called ``name``."""
        return next((c for c in [*self.inits, *self.containers] if c.name == name), None)

    def launcher_pids(self) -> list[int]:
        """The pids of the running containers' launchers."""
        return [c.process.pid for c in [*self.inits, *self.containers] if c.process is not None]

    def pids(self) -> list[int]:
        """Every live process of the pod: launchers, containers' processes and their children."""
        return [pid for launcher in self.launcher_pids() for pid in descendants(launcher)]

    def main_pid(self, container: str) -> int | None:
        """The pid of a running container's main process (the launcher's child)."""
        run = self.container(container)
        if run is None or run.process is None:
            return None
        for pid in descendants(run.process.pid):
            stat = process_stat(pid)
            if stat is not None and stat[1] == run.process.pid:
                return pid
        return None

    # -- setup --

    def _prepare_volumes(self, kube: Client) -> dict[str, Path]:
        volumes: dict[str, Path] = {}
        for volume in self.spec.get("volumes") or []:
            name, folder = volume["name"], self.root / "volumes" / volume["name"]
            if "emptyDir" in volume:
                folder.mkdir(parents=True, exist_ok=True)
            elif "hostPath" in volume:
                folder = Path(volume["hostPath"]["path"])
            elif "configMap" in volume or "secret" in volume:
                source = volume.get("configMap") or volume["secret"]
                kind = "configmap" if "configMap" in volume else "secret"
                object_name = source.get("name") if kind == "configmap" else source.get("secretName")
                data = (
                    _config_map_bytes(kube, self.namespace, object_name)
                    if kind == "configmap"
                    else _secret_bytes(kube, self.namespace, object_name)
                )
                if data is None and not source.get("optional"):
                    raise SetupError(
                        f'MountVolume.SetUp failed for volume "{name}": {kind} "{object_name}" not found'
                    )
                try:
                    _write_files(
                        folder, data or {}, source.get("items"), int(source.get("defaultMode") or 0o644)
                    )
                except SetupError as exc:
                    raise SetupError(f'MountVolume.SetUp failed for volume "{name}": {exc}') from exc
            else:
                kinds = sorted(set(volume) - {"name"})
                raise SetupError(
                    f"sim: volume {name!r} ({', '.join(kinds)}) is not supported by the simulated node"
                )
            volumes[name] = folder
        return volumes

    def _env(self, kube: Client, container: Mapping[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
            # What the runtime image (k8s/Dockerfile) sets; unbuffered output makes logs prompt.
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if self.api_server:
            parsed = urllib.parse.urlsplit(self.api_server)
            env["KUBERNETES_SERVICE_HOST"] = parsed.hostname or HOST_IP
            env["KUBERNETES_SERVICE_PORT"] = str(parsed.port or 443)
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix") or ""
            ref = source.get("configMapRef") or source.get("secretRef") or {}
            kind = "configmap" if "configMapRef" in source else "secret"
            data = (
                _config_map_bytes(kube, self.namespace, ref["name"])
                if kind == "configmap"
                else _secret_bytes(kube, self.namespace, ref["name"])
            )
            if data is None:
                if ref.get("optional"):
                    continue
                raise SetupError(f'{kind} "{ref["name"]}" not found')
            for key, value in data.items():
                if re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", prefix + key):  # the kubelet skips others
                    env[prefix + key] = value.decode("utf-8", "replace")
        for var in container.get("env") or []:
            env[var["name"]] = self._env_value(kube, var, env)
        return env

    def _env_value(self, kube: Client, var: Mapping[str, Any], env: Mapping[str, str]) -> str:
        if "valueFrom" not in var:
            return _expand(var.get("value") or "", env)
        source = var["valueFrom"]
        for key, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
            if key in source:
                ref = source[key]
                data = (
                    _config_map_bytes(kube, self.namespace, ref["name"])
                    if kind == "configmap"
                    else _secret_bytes(kube, self.namespace, ref["name"])
                )
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        return ""
                    what = (
                        f'{kind} "{ref["name"]}"'
                        if data is None
                        else f'key {ref["key"]!r} in {kind} "{ref["name"]}"'
                    )
                    raise SetupError(f"{what} not found")
                return data[ref["key"]].decode("utf-8", "replace")
        if "fieldRef" in source:
            fields = {
                "metadata.name": self.name,
                "metadata.namespace": self.namespace,
                "metadata.uid": self.uid,
                "spec.nodeName": self.node_name,
                "status.podIP": self.ip,
                "status.hostIP": HOST_IP,
            }
            path = source["fieldRef"]["fieldPath"]
            if path in fields:
                return fields[path]
        raise SetupError(f"sim: env {var['name']!r}: valueFrom {sorted(source)} is not supported")

    def _mounts(self, container: Mapping[str, Any]) -> list[dict[str, Any]]:
        assert self.volumes is not None
        mounts = []
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in self.volumes:
                raise SetupError(f"volume {mount['name']!r} not found")
            source = self.volumes[mount["name"]]
            if mount.get("subPath"):
                source = _safe_join(source, mount["subPath"])
                if not source.exists():
                    source.mkdir(parents=True)  # as the kubelet does for a missing subPath
            mounts.append(
                {
                    "source": str(source),
                    "target": mount["mountPath"],
                    "readOnly": bool(mount.get("readOnly")),
                    "file": source.is_file(),
                }
            )
        return mounts

    def _start(self, kube: Client, run: ContainerRun) -> None:
        """Start one instance of ``run``; a configuration error leaves it waiting instead."""
        try:
            env = self._env(kube, run.spec)
            mounts = self._mounts(run.spec)
            argv = [
                _expand(str(a), env)
                for a in [*(run.spec.get("command") or []), *(run.spec.get("args") or [])]
            ]
            if not run.spec.get("command"):
                raise SetupError("sim: no command; the simulated node ignores images and their entrypoints")
        except SetupError as exc:
            run.wait("CreateContainerConfigError", str(exc))
            run.next_start = time.monotonic() + SETUP_RETRY_S
            return
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        # No network namespace: a server told to bind every address binds its pod's instead.
        argv = [self.ip if arg == "0.0.0.0" else arg for arg in argv]
        instance = len(run.log_paths)
        spec_path = self.root / "run" / f"{run.name}-{instance}.json"
        spec_path.write_text(
            json.dumps(
                {
                    "mounts": mounts,
                    "cwd": run.spec.get("workingDir"),
                    "argv": argv,
                    "env": env,
                    "parent": os.getpid(),
                }
            )
        )
        log_path = self.root / "logs" / run.name / f"{instance}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            run.process = subprocess.Popen(
                [
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    "-S",
                    "-c",
                    LAUNCHER_SOURCE,
                    str(spec_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": env["PATH"], "LANG": "C.UTF-8"},
            )
        run.log_paths.append(log_path)
        run.started_mono = time.monotonic()
        run.container_id = f"sim://{self.uid}/{run.name}/{instance}"
        run.state = {"running": {"startedAt": now_rfc3339()}}
        run.ready = False
        run.probe_next = run.started_mono + float(
            (run.spec.get("readinessProbe") or {}).get("initialDelaySeconds") or 0
        )
        run.probe_successes = run.probe_failures = 0

    def _exited(self, run: ContainerRun, code: int) -> None:
        """Record an instance's exit; restart it after the back-off if the restart policy says so."""
        assert run.process is not None
        started = run.state.get("running", {}).get("startedAt") or now_rfc3339()
        run.process = None
        run.ready = False
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now_rfc3339(),
            "containerID": run.container_id,
        }
        if run.init:
            restart = code != 0 and self.policy != "Never"
        else:
            restart = self.policy == "Always" or (self.policy == "OnFailure" and code != 0)
        if not restart:
            run.state = {"terminated": terminated}
            run.done = True
            run.ready = run.init and code == 0  # a completed init container reports ready
            return
        now = time.monotonic()
        if now - run.started_mono >= BACKOFF_RESET_S:
            run.backoff = BACKOFF_INITIAL_S
        delay, run.backoff = run.backoff, min(run.backoff * 2, BACKOFF_MAX_S)
        run.next_start = now + delay
        run.restart_count += 1
        run.last_state = {"terminated": terminated}
        run.wait(
            "CrashLoopBackOff",
            f"back-off {delay:g}s restarting failed container={run.name} "
            f"pod={self.name}_{self.namespace}({self.uid})",
        )

    def _poll(self, run: ContainerRun) -> None:
        if run.process is not None:
            code = run.process.poll()
            if code is not None:
                self._exited(run, 128 - code if code < 0 else code)

    def _probe(self, run: ContainerRun) -> None:
        probe = run.spec.get("readinessProbe")
        if not probe:
            run.ready = True
            return
        now = time.monotonic()
        if now < run.probe_next:
            return
        run.probe_next = now + max(float(probe.get("periodSeconds") or 10), PROBE_MIN_PERIOD_S)
        if self._probe_once(probe, run.spec):
            run.probe_successes, run.probe_failures = run.probe_successes + 1, 0
            if run.probe_successes >= int(probe.get("successThreshold") or 1):
                run.ready = True
        else:
            run.probe_successes, run.probe_failures = 0, run.probe_failures + 1
            if run.probe_failures >= int(probe.get("failureThreshold") or 3):
                run.ready = False

    def _probe_once(self, probe: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
        timeout = min(float(probe.get("timeoutSeconds") or 1), PROBE_TIMEOUT_CAP_S)
        handler = probe.get("httpGet") or probe.get("tcpSocket")
        if handler is None:
            return True  # exec probes: nothing to run them in, counted as passing (see the docstring)
        port = handler["port"]
        if isinstance(port, str) and not port.isdigit():
            named = [p for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                return False
            port = named[0]["containerPort"]
        host = handler.get("host") or self.ip
        try:
            if "httpGet" not in probe:
                with socket.create_connection((host, int(port)), timeout=timeout):
                    return True
            connection: http.client.HTTPConnection
            if handler.get("scheme") == "HTTPS":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # kubelets do not verify probe targets either
                connection = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
            else:
                connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in handler.get("httpHeaders") or []}
                connection.request("GET", handler.get("path") or "/", headers=headers)
                return 200 <= connection.getresponse().status < 400
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return False

    # -- the sync step --

    def step(self, kube: Client) -> None:
        """Advance the pod: volumes, then init containers in order, then containers and probes."""
        now = time.monotonic()
        if self.terminating_since is not None:
            for run in [*self.inits, *self.containers]:
                self._poll(run)
            return
        if self.volumes is None:
            if now < self.setup_next:
                return
            try:
                self.volumes = self._prepare_volumes(kube)
                self.setup_error = None
            except SetupError as exc:
                self.setup_error = str(exc)
                self.setup_next = now + SETUP_RETRY_S
                for run in [*self.inits, *self.containers]:
                    run.wait("ContainerCreating", self.setup_error)
                return
        for run in self.inits:
            if not run.done:
                self._poll(run)
            if run.done and not run.ready:
                return  # failed under restartPolicy Never: the pod has failed, nothing more starts
            if run.done:
                continue
            if run.process is None and time.monotonic() >= run.next_start:
                self._start(kube, run)
            return  # the next init container (or the containers) wait for this one
        for run in self.containers:
            self._poll(run)
            if run.process is None and not run.done and time.monotonic() >= run.next_start:
                self._start(kube, run)
            if run.process is not None:
                self._probe(run)

    def status(self) -> dict[str, Any]:
        """The pod's ``status`` as a kubelet would report it now."""
        initialized = all(run.done and run.ready for run in self.inits)
        init_failed = any(run.done and not run.ready for run in self.inits)
        if init_failed:
            phase = "Failed"
        elif not initialized or any("waiting" in run.state and not run.last_state for run in self.containers):
            phase = "Pending"  # (a container that never started yet; a restarting one counts as stopped)
        elif any(run.running for run in self.containers) or self.policy == "Always":
            phase = "Running"
        elif all(run.done for run in self.containers):
            codes = [run.state["terminated"]["exitCode"] for run in self.containers]
            phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        else:
            phase = "Running"  # OnFailure: restarting
        not_initialized = [run.name for run in self.inits if not run.done]
        not_ready = [run.name for run in self.containers if not run.ready]
        conditions = [self._condition("PodScheduled", True)]
        conditions.append(
            self._condition(
                "Initialized",
                initialized,
                "ContainersNotInitialized",
                f"containers with incomplete status: {not_initialized}",
            )
        )
        ready_reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        for kind in ("ContainersReady", "Ready"):
            conditions.append(
                self._condition(
                    kind, not not_ready, ready_reason, f"containers with unready status: {not_ready}"
                )
            )
        status: dict[str, Any] = {
            "phase": phase,
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "hostIP": HOST_IP,
            "startTime": self.start_time,
            "conditions": conditions,
            "containerStatuses": [run.status() for run in self.containers],
        }
        if self.inits:
            status["initContainerStatuses"] = [run.status() for run in self.inits]
        return status

    def _condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        value = "True" if ok else "False"
        previous = self._conditions.get(kind)
        if previous is None or previous[0] != value:
            self._conditions[kind] = previous = (value, now_rfc3339())
        condition: dict[str, Any] = {"type": kind, "status": value, "lastTransitionTime": previous[1]}
        if not ok:
            condition.update(reason=reason, message=message)
        return condition

    # -- termination --

    def terminate(self, grace_s: float) -> bool:
        """Stop the pod's processes: SIGTERM, SIGKILL after ``grace_s`` (capped). True once all are gone."""
        now = time.monotonic()
        if self.terminating_since is None:
            self.terminating_since = now
            self.kill_deadline = now + min(max(grace_s, 0.0), GRACE_CAP_S)
            for pid in self.launcher_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # the launcher passes it on to the container's group
        runs = [run for run in [*self.inits, *self.containers] if run.process is not None]
        for run in runs:
            assert run.process is not None
            if run.process.poll() is not None:
                self._exited(
                    run,
                    128 - run.process.returncode if run.process.returncode < 0 else run.process.returncode,
                )
        alive = [run.process for run in [*self.inits, *self.containers] if run.process is not None]
        if not alive:
            return True
        if now >= self.kill_deadline and not self.killed:
            self.killed = True
            for process in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, _KILL_TREE)
        if now >= self.kill_deadline + KILL_WAIT_S:
            for process in alive:  # a launcher that did not finish its tree kill in time
                process.kill()
                process.wait()
            for run in [*self.inits, *self.containers]:
                run.process = None
            return True
        return False

    def kill(self) -> None:
        """Kill every process of the pod now and wait for them (node shutdown, force deletion)."""
        deadline = time.monotonic()
        if self.terminating_since is None:
            self.terminating_since = deadline
        self.kill_deadline = deadline
        while not self.terminate(0.0):
            time.sleep(0.02)  # the launchers are killing their trees; poll until reaped

    def remove_files(self) -> None:
        """Remove the pod's folder (volumes, logs). Its mounts were in the containers' namespaces only."""
        shutil.rmtree(self.root, ignore_errors=True)


# --- the kubelet endpoint ---------------------------------------------------------------------


def make_certificate(folder: Path, host: str = HOST_IP) -> tuple[Path, Path]:
    """A self-signed certificate and key for ``host`` (openssl, as the testbed uses)."""
    cert, key = folder / "kubelet.crt", folder / "kubelet.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sim-kubelet",
            "-addext",
            f"subjectAltName=IP:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _LogError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class KubeletServer:
    """The kubelet's HTTPS endpoint, as far as logs go: ``GET /containerLogs/{ns}/{pod}/{container}``.

    ``lookup(namespace, pod)`` gives the run pod (or ``None``). The apiserver reaches it through
    the Node's ``status.addresses`` and ``daemonEndpoints.kubeletEndpoint.Port``; it sends no
    client certificate and checks none here (no ``--kubelet-certificate-authority``).
    """

    def __init__(self, folder: Path, lookup: Callable[[str, str], ProcessPod | None]) -> None:
        self.lookup = lookup
        self.stopping = threading.Event()
        cert, key = make_certificate(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the apiserver's own logs say what it asked

        self.httpd = ThreadingHTTPServer((HOST_IP, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sim-kubelet", daemon=True)

    def start(self) -> KubeletServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; followers of a log stream end."""
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(request.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        try:
            if len(parts) != 4 or parts[0] != "containerLogs":
                raise _LogError(404, f"sim: the simulated kubelet serves only /containerLogs, not {url.path}")
            path, live = self._log_file(parts[1], parts[2], parts[3], query.get("previous") == "true")
            data = path.read_bytes()
            offset = len(data)  # following goes on from here, whatever part of it is sent
        except _LogError as exc:
            self._reply(request, exc.code, str(exc).encode())
            return
        except OSError:
            self._reply(request, 404, b"sim: the log is gone (pod deleted)")
            return
        if query.get("tailLines"):
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) > 0 else b""
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
        if limit is not None:
            data = data[:limit]
        follow = query.get("follow") == "true" and live is not None and limit is None
        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        if not follow:
            request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        try:
            request.wfile.write(data)
            request.wfile.flush()
            if follow:
                assert live is not None
                self._follow(request, path, offset, live)
        except (OSError, ssl.SSLError):
            pass  # the apiserver hung up

    def _follow(self, request: BaseHTTPRequestHandler, path: Path, offset: int, live: ContainerRun) -> None:
        """Stream what the instance writes until it ends, the client goes or the node stops."""
        with open(path, "rb") as handle:
            handle.seek(offset)
            while not self.stopping.is_set():
                chunk = handle.read(65536)
                if chunk:
                    request.wfile.write(chunk)
                    request.wfile.flush()
                elif not live.log_paths or live.log_paths[-1] != path or live.process is None:
                    tail = handle.read()  # written between the last read and the exit
                    if tail:
                        request.wfile.write(tail)
                    return
                else:
                    self.stopping.wait(0.1)  # poll the file for new output

    def _log_file(
        self, namespace: str, name: str, container: str, previous: bool
    ) -> tuple[Path, ContainerRun | None]:
        pod = self.lookup(namespace, name)
        if pod is None:
            raise _LogError(
                400,
                f"sim: pod {namespace}/{name} is not run by the simulated node (no container runs in "
                f"namespaces not labelled {RUN_LABEL}={RUN_PROCESS}), so it has no log",
            )
        run = pod.container(container)
        if run is None:
            raise _LogError(404, f'container "{container}" not found in pod "{name}"')
        paths = list(run.log_paths)
        if previous:
            if len(paths) < 2:
                raise _LogError(400, f'previous terminated container "{container}" in pod "{name}" not found')
            return paths[-2], None
        if not paths:
            reason = run.state.get("waiting", {}).get("reason", "PodInitializing")
            raise _LogError(400, f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return paths[-1], run if run.process is not None else None

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        request.send_response(code)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        with contextlib.suppress(OSError, ssl.SSLError):
            request.wfile.write(body)
