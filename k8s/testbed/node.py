"""The testbed's real node: the supervisor that runs inside the node's namespaces.

``scripts/k8s-testbed start --real-node`` makes the network namespace (``netns.py``) and starts
this module as ``nsenter --net=NETNS unshare --mount --propagation private python3 node.py ...``.
So this process and everything it starts share one network namespace and one private mount
namespace; it then:

1. mounts, in that mount namespace only: a fresh view of the cgroup v1 hierarchies (plus the
   ones this machine leaves unmounted, which runc wants), tmpfs over /run, /var/lib and /var/log
   (whatever the kubelet, CNI and containerd write at fixed paths vanishes with the namespace),
   and over each kernel setting the kubelet would change machine-wide (``vm.overcommit_memory``,
   ``kernel.panic``, ...) a file holding the value it wants, so it finds them set and writes none;
2. starts containerd (own config, root, state and socket; CRI with the local pause image as
   sandbox, ``restrict_oom_score_adj``, the bridge + host-local + portmap + loopback CNI plugins,
   and the testbed registry trusted over plain HTTP), the registry (Debian's docker-registry),
   the control plane (``controlplane.py``, apiserver advertised on the node address), the kubelet
   and kube-proxy (iptables mode);
3. waits for the node to be Ready and untainted, records everything in ``DIR/node.json`` and
   serves until SIGTERM;
4. on SIGTERM stops the kubelet, kills every container and process of its mount namespace, stops
   the rest, removes its cgroups (every hierarchy, the namespace-only ones included) and exits;
   the mounts go with the mount namespace. ``stop`` then removes the network namespace.

Standard library only (it runs with the machine's python3).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # k8s/ is not a package: siblings by path
import netns

# The control-plane module as scripts/k8s-testbed and the test suite load it (one set of classes).
cp = sys.modules.get("modelport_k8s_testbed") or importlib.import_module("controlplane")

STATE_FILE = "node.json"
STATE_SCHEMA = 1
NODE_NAME = "modelport-node"
REGISTRY_PORT = 5000
REGISTRY = f"{netns.NODE_IP}:{REGISTRY_PORT}"
KUBELET_PORT = 10250
PAUSE_IMAGE = "localhost/modelport/pause:testbed"
READY_DEADLINE_S = 180.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The kernel settings the kubelet sets machine-wide when they differ (its setupKernelTunables):
# shown to it with these values inside the mount namespace instead.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
# Folders components write at fixed paths: private tmpfs in the mount namespace.
PRIVATE_TMPFS = ("/run", "/var/lib", "/var/log")
NODE_BINARIES = ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "registry", "pause")


def cgroup_root_name(netns_name: str) -> str:
    """The cgroup (in every hierarchy) under which all of one testbed's containers live."""
    return f"modelport-{netns_name}"


def missing_node_binaries(bin_dir: Path) -> list[str]:
    """Names of the node's binaries not present in ``bin_dir`` (built by build-node.sh)."""
    return [name for name in NODE_BINARIES if not (bin_dir / name).is_file()]


def _run(*args: str) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True)
    if result.returncode != 0:
        raise cp.TestbedError(f"{' '.join(args)} failed: {(result.stdout + result.stderr).strip()}")


# -- mounts (this mount namespace only) ---------------------------------------------------------


def _hierarchies() -> list[str]:
    """The mount options of every cgroup v1 hierarchy: those mounted here, then the enabled
    controllers left unmounted (runc wants them all)."""
    mounted: list[str] = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, _ = line.split(":", 2)
        if number != "0" and controllers:
            mounted.append(controllers)
    taken = {c for options in mounted for c in options.split(",")}
    spare = []
    for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
        name, hierarchy, _, enabled = line.split()
        if hierarchy == "0" and enabled == "1" and name not in taken:
            spare.append(name)
    # net_cls and net_prio share a hierarchy wherever both exist (as systemd mounts them).
    if "net_cls" in spare and "net_prio" in spare:
        spare = [s for s in spare if s not in ("net_cls", "net_prio")] + ["net_cls,net_prio"]
    return mounted + spare


def _mount_point(options: str) -> Path:
    return CGROUP_ROOT / options.removeprefix("name=")


def mount_private(state_dir: Path) -> list[Path]:
    """The mount namespace's own view (module docstring, step 1); returns the cgroup mount points."""
    _run("mount", "--make-rprivate", "/")
    hierarchies = _hierarchies()
    _run("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(CGROUP_ROOT))
    points = []
    for options in hierarchies:
        point = _mount_point(options)
        point.mkdir()
        kind = f"none,{options}" if options.startswith("name=") else options
        _run("mount", "-t", "cgroup", "-o", kind, "cgroup", str(point))
        points.append(point)
    unified = CGROUP_ROOT / "unified"
    unified.mkdir()
    _run("mount", "-t", "cgroup2", "cgroup2", str(unified))
    for folder in PRIVATE_TMPFS:
        _run("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", folder)
    values = state_dir / "sysctl"
    values.mkdir(exist_ok=True)
    for name, wanted in KUBELET_SYSCTLS.items():
        setting = Path("/proc/sys") / name
        if setting.read_text().strip() != wanted:
            shown = values / name.replace("/", ".")
            shown.write_text(wanted + "\n")
            _run("mount", "--bind", str(shown), str(setting))
    return points


# -- processes of this mount namespace and cgroups ----------------------------------------------


def _own_mount_ns() -> int:
    return os.stat("/proc/self/ns/mnt").st_ino


def _pids_where(test: Any) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError, ValueError):
                if test(entry):
                    found.append(int(entry.name))
    return found


def _in_tree(points: list[Path], root: str) -> list[int]:
    pids: set[int] = set()
    for point in points:
        top = point / root
        if top.is_dir():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def kill_everything(points: list[Path], root: str, deadline_s: float = 20.0) -> None:
    """SIGKILL every process in this mount namespace (but this one) and in the testbed's cgroups."""
    mine = _own_mount_ns()
    deadline = time.monotonic() + deadline_s
    while True:
        victims = set(_pids_where(lambda e: os.stat(e / "ns" / "mnt").st_ino == mine))
        victims.update(_in_tree(points, root))
        victims.discard(os.getpid())
        if not victims:
            return
        if time.monotonic() > deadline:
            raise cp.TestbedError(f"processes left after SIGKILL: {sorted(victims)}")
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        time.sleep(0.1)  # poll interval while the kernel tears the processes down


def remove_cgroups(points: list[Path], root: str, deadline_s: float = 20.0) -> None:
    """rmdir the testbed's cgroup tree in every hierarchy, deepest first."""
    deadline = time.monotonic() + deadline_s
    for point in points:
        top = point / root
        if not top.is_dir():
            continue
        folders = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for folder in [*folders, top]:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:  # busy until the kernel has reaped its last task
                    if time.monotonic() > deadline:
                        raise cp.TestbedError(f"cannot remove cgroup {folder}: {exc}") from exc
                    time.sleep(0.1)


# -- configuration files ------------------------------------------------------------------------


def containerd_config(d: Path, socket_path: Path) -> str:
    """containerd's configuration: everything under ``d`` or in the namespace's private tmpfs."""
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    return f"""version = 2
root = "{d / "containerd"}"
state = "/run/modelport/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{socket_path}"
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/modelport/opt"
{cri}
  sandbox_image = "{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower the sandbox's oom_score_adj below ours
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "/run/modelport/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d / "cni"}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{REGISTRY}"]
    endpoint = ["http://{REGISTRY}"]
"""


def cni_config() -> dict[str, Any]:
    """bridge + host-local + portmap (containerd adds loopback itself)."""
    return {
        "cniVersion": "0.4.0",
        "name": "modelport",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": netns.POD_RANGE}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def registry_config(d: Path) -> str:
    """docker-registry (distribution 2.8): filesystem storage under ``d``, plain HTTP on the node."""
    return (
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {d / 'registry'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n"
    )


# -- the supervisor -----------------------------------------------------------------------------


@dataclass
class Node:
    """The processes of the real node (module docstring); ``run()`` until SIGTERM."""

    state_dir: Path
    bin_dir: Path
    node_bin: Path
    netns_name: str
    pause_archive: Path
    plane: cp.ControlPlane | None = None
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    points: list[Path] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def socket(self) -> Path:
        """containerd's socket (reachable from the host's mount namespace too: a path in DIR)."""
        return self.state_dir / "containerd.sock"

    @property
    def cgroup_root(self) -> str:
        """The testbed's cgroup, in every hierarchy."""
        return cgroup_root_name(self.netns_name)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.node_bin}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}:/usr/sbin:/sbin"
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.state_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [str(self.node_bin / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
            )
        self.processes.append((name, process))
        return process

    def save(self, status: str, **extra: Any) -> None:
        """Write ``DIR/node.json`` (atomically): what ``status``, ``stop`` and the tests read."""
        plane = self.plane
        state = {
            "schema": STATE_SCHEMA,
            "status": status,
            "supervisor": {"pid": os.getpid(), "started": cp.process_start_ticks(os.getpid())},
            "netns": self.netns_name,
            "netnsPath": str(netns.path(self.netns_name)),
            "nodeName": NODE_NAME,
            "nodeIP": netns.NODE_IP,
            "registry": REGISTRY,
            "containerdSocket": str(self.socket),
            "cgroupRoot": self.cgroup_root,
            "server": plane.server if plane else None,
            "kubeconfig": str(plane.kubeconfig) if plane else None,
            "components": [{"name": n, "pid": p.pid} for n, p in self.processes]
            + ([{"name": n, "pid": p.pid} for n, p in plane._processes] if plane else []),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
        }
        path = self.state_dir / STATE_FILE
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(partial, path)

    def _wait(self, what: str, check: Any, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while not check():
            for name, process in self.processes:
                if process.poll() is not None:
                    raise cp.TestbedError(
                        f"{name} exited with status {process.returncode}\n{self.log_tails()}"
                    )
            if self.stopping.is_set():
                raise cp.TestbedError("stopped while starting")
            if time.monotonic() > deadline:
                raise cp.TestbedError(f"{what} not ready within {deadline_s:.0f} s\n{self.log_tails()}")
            time.sleep(0.2)  # poll interval of the readiness check

    def log_tails(self, lines: int = 20) -> str:
        """The last lines of the node components' logs, for failure messages."""
        parts = []
        for name, _ in self.processes:
            with open(self.state_dir / f"{name}.log", encoding="utf-8", errors="replace") as handle:
                parts.append(f"--- {name} ---\n" + "".join(deque(handle, maxlen=lines)))
        return "\n".join(parts)

    def start(self) -> None:
        """Mounts, containerd, registry, control plane, kubelet, kube-proxy; then wait for Ready."""
        d = self.state_dir
        self.points = mount_private(d)
        for point in self.points:
            (point / self.cgroup_root).mkdir(exist_ok=True)
        (d / "cni").mkdir(exist_ok=True)
        (d / "cni" / "10-modelport.conflist").write_text(json.dumps(cni_config(), indent=2))
        (d / "containerd.toml").write_text(containerd_config(d, self.socket))
        (d / "registry.yml").write_text(registry_config(d))
        # No cluster DNS: pods resolve nothing (they reach the API and the store by address).
        (d / "resolv.conf").write_text("options ndots:1\n")
        self.socket.unlink(missing_ok=True)
        self._spawn("containerd", f"--config={d / 'containerd.toml'}", "--log-level=warn")
        self._wait("containerd", self.socket.exists)
        ctr = [str(self.node_bin / "ctr"), f"--address={self.socket}", "--namespace=k8s.io"]
        _run(*ctr, "images", "import", "--all-platforms", str(self.pause_archive))
        self._spawn("registry", "serve", str(d / "registry.yml"))
        self._wait("the registry", lambda: _listens(netns.NODE_IP, REGISTRY_PORT))
        self.plane = cp.ControlPlane(self.bin_dir, d / "controlplane", node_ip=netns.NODE_IP)
        self.plane.start()
        self.save("starting")
        kubeconfig = str(self.plane.kubeconfig)
        self._spawn(
            "kubelet",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={netns.NODE_IP}",
            f"--address={netns.NODE_IP}",
            f"--port={KUBELET_PORT}",
            "--healthz-bind-address=127.0.0.1",
            "--read-only-port=0",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{self.socket}",
            "--runtime-request-timeout=10m",
            "--cgroup-driver=cgroupfs",
            # Pods' cgroups per QoS class need the kubelet to manage the node's top cgroups; here
            # all pods live under the testbed's own cgroup instead (removed by stop).
            "--cgroups-per-qos=false",
            "--enforce-node-allocatable=",
            f"--cgroup-root=/{self.cgroup_root}",
            "--fail-swap-on=false",
            "--authorization-mode=AlwaysAllow",
            "--authentication-token-webhook=false",
            "--eviction-hard=",
            "--image-gc-high-threshold=100",
            "--image-gc-low-threshold=99",
            "--serialize-image-pulls=false",
            f"--resolv-conf={d / 'resolv.conf'}",
            "--root-dir=/var/lib/kubelet",
            "--volume-plugin-dir=/var/lib/kubelet/volume-plugins",
            "--node-status-update-frequency=2s",
            "--v=1",
        )
        self._spawn(
            "kube-proxy",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            "--proxy-mode=iptables",
            f"--bind-address={netns.NODE_IP}",
            f"--cluster-cidr={netns.POD_SUBNET}",
            "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249",
            # 0: leave the machine-wide conntrack settings as they are
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--oom-score-adj=0",
        )
        self._wait("the node", lambda: node_ready(self.plane.server) == "Ready", READY_DEADLINE_S)  # type: ignore[union-attr]

    def stop(self) -> None:
        """Kubelet first, then every container and process of the namespace, then the cgroups."""
        for name, process in self.processes:
            if name == "kubelet" and process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)
        if self.plane is not None:
            self.plane.stop()
        kill_everything(self.points, self.cgroup_root)
        for _, process in self.processes:
            with contextlib.suppress(ChildProcessError):
                process.wait(5)
        remove_cgroups(self.points, self.cgroup_root)


def _listens(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _api_get(server: str, path: str) -> dict[str, Any]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"{server}{path}", headers={"Authorization": f"Bearer {cp.ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        return dict(json.load(response))


def node_ready(server: str) -> str:
    """``"Ready"`` when the node reports Ready and carries no not-ready taint, else what it shows."""
    try:
        node = _api_get(server, f"/api/v1/nodes/{NODE_NAME}")
    except urllib.error.HTTPError as exc:
        return "not registered" if exc.code == 404 else f"HTTP {exc.code}"
    except OSError as exc:
        return f"API unreachable: {exc}"
    conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") != "True":
        return f"NotReady: {ready.get('message', 'no Ready condition yet')}"
    taints = [t["key"] for t in node.get("spec", {}).get("taints") or []]
    if taints:
        return f"Ready but tainted: {', '.join(taints)}"
    return "Ready"


def main(argv: list[str] | None = None) -> int:
    """The supervisor's entry point (started by scripts/k8s-testbed inside the namespaces)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--bin", type=Path, required=True)
    parser.add_argument("--node-bin", type=Path, required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--pause-archive", type=Path, required=True)
    args = parser.parse_args(argv)
    node = Node(args.dir, args.bin, args.node_bin, args.netns, args.pause_archive)

    def on_signal(signum: int, frame: object) -> None:
        node.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    error = None
    try:
        node.start()
        node.save("running")
        while not node.stopping.wait(1.0):
            for name, process in node.processes:
                if process.poll() is not None:
                    raise cp.TestbedError(
                        f"{name} exited with status {process.returncode}\n{node.log_tails()}"
                    )
    except Exception as exc:
        error = str(exc)
        node.save("failed", error=error)  # seen by a start still waiting, before the clean-up
    node.save("stopping", **({"error": error} if error else {}))
    try:
        node.stop()
    except Exception as exc:
        error = f"{error or ''}\nstop: {exc}".strip()
    if error is None:
        (args.dir / STATE_FILE).unlink(missing_ok=True)
        return 0
    node.save("failed", error=error)
    return 1


if __name__ == "__main__":
    sys.exit(main())
