"""The Kubernetes testbed's control plane: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler 1.20.2 on loopback.

The binaries come from ``k8s/testbed/build.sh`` (built once into a cache folder). Everything the
control plane writes lives in one folder: etcd data, the apiserver's self-signed certificate, a
service-account key pair, a static admin token, a kubeconfig and one log per component. There is
no kubelet and no container runtime: objects are stored and reconciled by the real controllers,
but no container runs (the test suite's simulated node, tests/k8s/node.py, stands in for one).

Two users: the test suite (``tests/k8s/testbed.py`` re-exports this module; the components are
pytest's children and stop with the session) and ``scripts/k8s-testbed`` (``detached=True``: the
components get a session of their own and outlive the command, and a state file records their
pids so that a later ``stop`` finds them). Standard library only, so that the script runs with any
python3, virtualenv or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
# After SIGKILL a process is gone as soon as the kernel has torn it down: well under a second.
KILL_DEADLINE_S = 5.0
POLL_S = 0.1
ADMIN_TOKEN = "modelport-testbed-admin"
# In start order; they are stopped in the reverse order.
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
BUILD_SCRIPT = Path(__file__).resolve().with_name("build.sh")
STATE_FILE = "testbed.json"
STATE_SCHEMA = 1


class TestbedError(RuntimeError):
    """The control plane could not start or stop; the message says why (with the tails of its logs)."""

    __test__ = False  # a name pytest would otherwise try to collect as a test class


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of the testbed binaries not present in ``bin_dir``."""
    return [name for name in BINARIES if not (bin_dir / name).is_file()]


def bin_dir_from_env() -> Path | None:
    """``MODELPORT_K8S_BIN`` (set by ``make test-k8s`` from the build script's output), if set."""
    value = os.environ.get("MODELPORT_K8S_BIN")
    return Path(value) if value else None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot); None if there is none or it has exited.

    A pid together with its start time names one process for good: a later process that reuses
    the number has another start time, so a stale state file never gets an unrelated process killed.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2, the command name, is in parentheses and may hold spaces: count from the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited; only its parent has not collected the status yet
        return None
    return int(fields[19])  # field 22, starttime


@dataclass(frozen=True)
class Component:
    """A component process as a state file records it: name, pid and start time."""

    name: str
    pid: int
    started: int | None

    def alive(self) -> bool:
        """Whether this very process is still running (not merely a process with its pid)."""
        return self.started is not None and process_start_ticks(self.pid) == self.started


def check_ready(server: str, timeout: float = 2.0) -> str:
    """``"ok"`` when the apiserver at ``server`` answers ``/readyz`` with ok, else what went wrong."""
    context = ssl.create_default_context()
    # Readiness only: the certificate may not even be written yet while the server starts.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            body = response.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))
    return "ok" if body == "ok" else body[:200]


@dataclass
class ControlPlane:
    """One control plane; ``start()`` returns once the apiserver reports ready, ``stop()`` ends it.

    ``detached``: start the components in sessions of their own, so that they outlive the process
    that started them and a terminal's Ctrl-C does not reach them. ``state_path``: keep a JSON file
    there naming every component started so far (:func:`read_state`, :func:`stop_recorded`), from
    the first spawn on, so that even a start killed half-way leaves what a ``stop`` needs.
    """

    bin_dir: Path
    work_dir: Path
    controllers: bool = True
    api_port: int = 0
    detached: bool = False
    state_path: Path | None = None
    # The real node's address (k8s/testbed/node.py): the apiserver then listens on every address of
    # the node's network namespace and advertises this one, so that pods reach it through the
    # `kubernetes` Service, and the node lifecycle controller runs (it lifts the not-ready taint).
    node_ip: str | None = None
    kubeconfig: Path = field(init=False)
    start_seconds: float = 0.0
    etcd_client_port: int = 0
    etcd_peer_port: int = 0
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def server(self) -> str:
        """The apiserver's URL (on the node's address when there is one: the certificate the
        apiserver makes itself names the advertised address, not loopback, then)."""
        return f"https://{self.node_ip or '127.0.0.1'}:{self.api_port}"

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.work_dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detached,
            )
        self._processes.append((name, process))
        self._save_state("starting")

    def _keys(self) -> None:
        # Kept when present: a restart in the same folder (etcd data kept) keeps the service
        # accounts' tokens valid.
        if not (self.work_dir / "sa.key").is_file() or not (self.work_dir / "sa.pub").is_file():
            for command in (
                ["openssl", "genrsa", "-out", "sa.key", "2048"],
                ["openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
            ):
                subprocess.run(command, cwd=self.work_dir, check=True, capture_output=True)
        (self.work_dir / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin-uid,"system:masters"\n')

    def start(self) -> ControlPlane:
        """Start etcd and the apiserver (and the controllers), wait for readiness, write the kubeconfig."""
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise TestbedError(
                f"{self.bin_dir} lacks {', '.join(missing)}; build them with scripts/k8s-testbed build"
            )
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._keys()
        d = self.work_dir
        self.etcd_client_port, self.etcd_peer_port = free_port(), free_port()
        client, peer = self.etcd_client_port, self.etcd_peer_port
        self.api_port = free_port()
        self.kubeconfig = d / "kubeconfig"
        try:
            # --unsafe-no-fsync: test data need not survive a power cut, and fsync dominates on slow disks.
            self._spawn(
                "etcd",
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            )
            self._spawn(
                "kube-apiserver",
                f"--etcd-servers=http://127.0.0.1:{client}",
                *self._address_flags(),
                f"--secure-port={self.api_port}",
                "--insecure-port=0",
                f"--cert-dir={d / 'certs'}",
                f"--token-auth-file={d / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # Logs, exec and port-forward go to the node's kubelet endpoint: the simulated node's
                # (tests/k8s/node.py) is on its InternalIP, 127.0.0.1; its Hostname resolves to nothing.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            )
            self._wait_ready()
            self._write_kubeconfig()
            if self.controllers:
                self._spawn(
                    "kube-controller-manager",
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                    f"--service-account-private-key-file={d / 'sa.key'}",
                    f"--root-ca-file={d / 'certs' / 'apiserver.crt'}",
                    f"--controllers=*,{'' if self.node_ip else '-nodelifecycle,'}"
                    "-nodeipam,-route,-cloud-node-lifecycle",
                )
                self._spawn(
                    "kube-scheduler",
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                )
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self._save_state("running")
        return self

    def _address_flags(self) -> list[str]:
        if self.node_ip is not None:
            # Inside the node's network namespace: its addresses exist nowhere else.
            return ["--bind-address=0.0.0.0", f"--advertise-address={self.node_ip}"]
        # The `kubernetes` Endpoints object refuses loopback addresses; without the reconciler
        # set to none the apiserver logs an error every few seconds.
        return [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            for name, process in self._processes:
                if process.poll() is not None:
                    raise TestbedError(f"{name} exited with status {process.returncode}\n{self.log_tails()}")
            if check_ready(self.server) == "ok":
                return
            time.sleep(POLL_S)  # poll interval of the readiness check, not a readiness stand-in
        raise TestbedError(f"kube-apiserver not ready within {READY_DEADLINE_S:.0f} s\n{self.log_tails()}")

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: testbed, cluster: {{server: '{self.server}', "
            f"certificate-authority: '{self.work_dir / 'certs' / 'apiserver.crt'}'}}}}]\n"
            f"users: [{{name: admin, user: {{token: {ADMIN_TOKEN}}}}}]\n"
            "contexts: [{name: testbed, context: {cluster: testbed, user: admin}}]\n"
            "current-context: testbed\n"
        )

    def state(self, status: str) -> dict[str, Any]:
        """What a state file records: the server, the kubeconfig, the ports and each component's pid."""
        return {
            "schema": STATE_SCHEMA,
            "status": status,
            "server": self.server,
            "kubeconfig": str(self.work_dir / "kubeconfig"),
            "binDir": str(self.bin_dir),
            "ports": {
                "apiserver": self.api_port,
                "etcdClient": self.etcd_client_port,
                "etcdPeer": self.etcd_peer_port,
            },
            "components": [
                {"name": name, "pid": process.pid, "started": process_start_ticks(process.pid)}
                for name, process in self._processes
            ],
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _save_state(self, status: str) -> None:
        if self.state_path is None:
            return
        partial = self.state_path.with_name(self.state_path.name + ".tmp")
        partial.write_text(json.dumps(self.state(status), indent=2) + "\n")
        os.replace(partial, self.state_path)  # readers see the old file or the new one, never half

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of every component's log, for failure messages."""
        parts = []
        for name, _ in self._processes:
            with open(self.work_dir / f"{name}.log", encoding="utf-8", errors="replace") as handle:
                parts.append(f"--- {name} ---\n" + "".join(deque(handle, maxlen=lines)))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM every component, newest first; SIGKILL what is still running at the deadline."""
        for _, process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_DEADLINE_S
        for _, process in reversed(self._processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self.state_path is not None:
            self.state_path.unlink(missing_ok=True)


# -- a control plane started by another process (scripts/k8s-testbed) ---------------------------


def read_state(path: Path) -> dict[str, Any] | None:
    """The state file at ``path``; None when there is none. A file that is not ours is an error."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TestbedError(f"{path} is not a testbed state file ({exc}); remove it if nothing runs") from exc
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise TestbedError(f"{path} is not a testbed state file of schema {STATE_SCHEMA}; remove it")
    return state


def recorded_components(state: dict[str, Any]) -> list[Component]:
    """The components a state file names, in start order."""
    return [Component(c["name"], int(c["pid"]), c.get("started")) for c in state.get("components", [])]


def _wait_gone(components: Sequence[Component], deadline_s: float) -> list[Component]:
    deadline = time.monotonic() + deadline_s
    while True:
        alive = [c for c in components if c.alive()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(POLL_S)  # poll interval of the exit check


def _signal(component: Component, signum: int) -> None:
    if component.alive():  # re-checked right before: never signal a pid that changed hands
        with contextlib.suppress(ProcessLookupError):  # it exited between the check and the signal
            os.kill(component.pid, signum)


def stop_components(components: Sequence[Component], deadline_s: float = STOP_DEADLINE_S) -> list[str]:
    """SIGTERM the running ``components`` newest first, SIGKILL those left at the deadline.

    Returns the names of the components that needed SIGKILL. Components whose process is gone (or
    whose pid now belongs to another process) are left alone.
    """
    for component in reversed(components):
        _signal(component, signal.SIGTERM)
    left = _wait_gone(components, deadline_s)
    for component in reversed(left):
        _signal(component, signal.SIGKILL)
    survivors = _wait_gone(left, KILL_DEADLINE_S)
    if survivors:
        names = ", ".join(f"{c.name} (pid {c.pid})" for c in survivors)
        raise TestbedError(f"still running after SIGKILL: {names}")
    return [c.name for c in left]


def stop_recorded(state_path: Path, deadline_s: float = STOP_DEADLINE_S) -> tuple[list[str], list[str]]:
    """Stop the control plane a state file records, then remove the file (and nothing else).

    Returns the names of the components that were running, and of those that needed SIGKILL.
    """
    state = read_state(state_path)
    if state is None:
        return [], []
    components = recorded_components(state)
    running = [c.name for c in components if c.alive()]
    killed = stop_components(components, deadline_s)
    state_path.unlink(missing_ok=True)
    return running, killed
