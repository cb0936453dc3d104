"""The Kubernetes testbed: etcd, kube-apiserver (+ controller-manager, scheduler) 1.20.2 on loopback.

The binaries come from ``k8s/testbed/build.sh`` (built once into a cache folder). Everything the
control plane writes lives in one temporary folder: etcd data, the apiserver's self-signed
certificate, a service-account key pair, a static admin token and a kubeconfig. There is no
kubelet and no container runtime here: objects are stored and reconciled by the real controllers,
but no container ever runs (see docs/kubernetes.md for what that leaves to a real cluster).
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port

READY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
POLL_S = 0.1
ADMIN_TOKEN = "modelport-testbed-admin"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class TestbedError(RuntimeError):
    """The control plane could not start; the message carries the tails of its logs."""


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of the testbed binaries not present in ``bin_dir``."""
    return [name for name in BINARIES if not (bin_dir / name).is_file()]


@dataclass
class ControlPlane:
    """One control plane; ``start()`` returns once the apiserver reports ready, ``stop()`` ends it."""

    bin_dir: Path
    work_dir: Path
    controllers: bool = True
    api_port: int = 0
    kubeconfig: Path = field(init=False)
    start_seconds: float = 0.0
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def server(self) -> str:
        """The apiserver's URL."""
        return f"https://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.work_dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._processes.append((name, process))

    def _keys(self) -> None:
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
            raise TestbedError(f"{self.bin_dir} lacks {', '.join(missing)}; run k8s/testbed/build.sh")
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._keys()
        d = self.work_dir
        client, peer = free_port(), free_port()
        self.api_port = free_port()
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
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            "--insecure-port=0",
            # The `kubernetes` Endpoints object refuses loopback addresses; without this the
            # apiserver logs an error every few seconds.
            "--endpoint-reconciler-type=none",
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
        try:
            self._wait_ready()
            self.kubeconfig = self._write_kubeconfig()
            if self.controllers:
                self._spawn(
                    "kube-controller-manager",
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                    f"--service-account-private-key-file={d / 'sa.key'}",
                    f"--root-ca-file={d / 'certs' / 'apiserver.crt'}",
                    "--controllers=*,-nodelifecycle,-nodeipam,-route,-cloud-node-lifecycle",
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
        return self

    def _wait_ready(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate is only written once the server starts
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            for name, process in self._processes:
                if process.poll() is not None:
                    raise TestbedError(f"{name} exited with status {process.returncode}\n{self.log_tails()}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.read() == b"ok":
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(POLL_S)
        raise TestbedError(f"kube-apiserver not ready within {READY_DEADLINE_S:.0f} s\n{self.log_tails()}")

    def _write_kubeconfig(self) -> Path:
        path = self.work_dir / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: testbed, cluster: {{server: '{self.server}', "
            f"certificate-authority: '{self.work_dir / 'certs' / 'apiserver.crt'}'}}}}]\n"
            f"users: [{{name: admin, user: {{token: {ADMIN_TOKEN}}}}}]\n"
            "contexts: [{name: testbed, context: {cluster: testbed, user: admin}}]\n"
            "current-context: testbed\n"
        )
        return path

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


def bin_dir_from_env() -> Path | None:
    """``MODELPORT_K8S_BIN`` (set by ``make test-k8s`` from the build script's output), if set."""
    value = os.environ.get("MODELPORT_K8S_BIN")
    return Path(value) if value else None
