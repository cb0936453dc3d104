"""``scripts/k8s-testbed``, run as users run it (the executable, its own python3).

Tier 0 (no testbed): usage errors, refusals, and ``status``/``stop`` against state files that
record ordinary processes (``sleep``), including one that ignores SIGTERM and one whose pid
no longer belongs to the recorded process. Tier 1 (marked ``k8s``): a real start, ``/readyz``
through the written kubeconfig, and a stop that leaves no process behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compute.kubernetes.testbed import BINARIES, STATE_FILE, controlplane

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "k8s-testbed"


def tool(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the script itself (its shebang, not this interpreter), outside the environment's testbed."""
    base = {k: v for k, v in os.environ.items() if k not in ("MODELPORT_K8S_BIN", "MODELPORT_K8S_STATE")}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env={**base, **(env or {})}, timeout=timeout
    )


def write_state(folder: Path, processes: dict[str, subprocess.Popen[str]], shift: int = 0) -> Path:
    """A state file recording ``processes`` as running components (start times off by ``shift``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STATE_FILE
    components = []
    for name, process in processes.items():
        started = controlplane.process_start_ticks(process.pid)
        assert started is not None
        components.append({"name": name, "pid": process.pid, "started": started + shift})
    path.write_text(
        json.dumps(
            {
                "schema": controlplane.STATE_SCHEMA,
                "status": "running",
                "server": "https://127.0.0.1:1",  # nothing listens there: readyz reports the refusal
                "kubeconfig": str(folder / "kubeconfig"),
                "components": components,
            }
        )
    )
    return path


@pytest.fixture
def sleepers() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Two long sleeps standing in for etcd and the apiserver; killed afterwards whatever happened."""
    processes = {name: subprocess.Popen(["sleep", "300"], text=True) for name in ("etcd", "kube-apiserver")}
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
        process.wait()


def test_the_script_is_executable_and_usage_errors_exit_2(tmp_path: Path) -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")
    for args in ((), ("frobnicate",), ("stop", "--dir", str(tmp_path), "--timeout", "-1")):
        result = tool(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage: scripts/k8s-testbed" in result.stderr
    assert "start the control plane in the background" in tool("--help").stdout


def test_nothing_recorded_status_3_stop_0(tmp_path: Path) -> None:
    status = tool("status", "--dir", str(tmp_path))
    assert (status.returncode, status.stdout.splitlines()[0]) == (
        3,
        f"not running (no {STATE_FILE} in {tmp_path})",
    )
    stop = tool("stop", "--dir", str(tmp_path))
    assert (stop.returncode, stop.stdout.strip()) == (0, f"not running in {tmp_path}")


def test_default_folder_comes_from_modelport_k8s_state(tmp_path: Path) -> None:
    result = tool("status", env={"MODELPORT_K8S_STATE": str(tmp_path / "elsewhere")})
    assert result.returncode == 3
    assert str(tmp_path / "elsewhere") in result.stdout


def test_start_without_the_binaries_fails_naming_them_and_leaves_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    folder = tmp_path / "tb"
    for how in (("--bin", str(empty)), ()):
        result = tool("start", "--dir", str(folder), *how, env={"MODELPORT_K8S_BIN": str(empty)})
        assert result.returncode == 1, result.stderr
        assert f"k8s-testbed: {empty} lacks {', '.join(BINARIES)}" in result.stderr
        assert result.stdout == ""
        assert not (folder / STATE_FILE).exists()


def test_running_testbed_status_refused_start_then_stop(
    tmp_path: Path, sleepers: dict[str, subprocess.Popen[str]]
) -> None:
    state_path = write_state(tmp_path, sleepers)
    recorded = state_path.read_text()
    (tmp_path / "etcd.log").write_text("kept\n")

    status = tool("status", "--dir", str(tmp_path))
    assert status.returncode == 0, status.stdout
    assert status.stdout.startswith("running: https://127.0.0.1:1 (readyz: ")
    for name, process in sleepers.items():
        assert f"{name:<24} pid {process.pid:<8} running" in status.stdout

    refused = tool("start", "--dir", str(tmp_path))
    assert refused.returncode == 1
    assert f"already running in {tmp_path}" in refused.stderr
    assert f"scripts/k8s-testbed stop --dir {tmp_path}" in refused.stderr
    assert state_path.read_text() == recorded
    assert all(process.poll() is None for process in sleepers.values())

    stopped = tool("stop", "--dir", str(tmp_path))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("stopped kube-apiserver, etcd;")
    assert [process.wait(timeout=10) for process in sleepers.values()] == [-signal.SIGTERM] * 2
    assert not state_path.exists()
    assert (tmp_path / "etcd.log").read_text() == "kept\n"  # stop removes the state file only


def test_stop_kills_what_ignores_sigterm_at_the_deadline(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
            "time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"  # handler installed
        write_state(tmp_path, {"kube-apiserver": stubborn})
        stopped = tool("stop", "--dir", str(tmp_path), "--timeout", "0.5")
        assert stopped.returncode == 0, stopped.stderr
        assert "SIGKILL after 0.5 s: kube-apiserver" in stopped.stdout
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
        stubborn.wait()


def test_a_pid_that_changed_hands_is_never_signalled(
    tmp_path: Path, sleepers: dict[str, subprocess.Popen[str]]
) -> None:
    # Recorded with other start times: as if the components exited and their pids were reused.
    state_path = write_state(tmp_path, sleepers, shift=-1)
    status = tool("status", "--dir", str(tmp_path))
    assert status.returncode == 1
    assert "not running: the components recorded" in status.stdout
    stop = tool("stop", "--dir", str(tmp_path))
    assert (stop.returncode, stop.stdout.strip()) == (0, f"not running in {tmp_path}")
    assert all(process.poll() is None for process in sleepers.values())
    assert not state_path.exists()

    # A start finds such a state stale: it says so and starts afresh (here: no binaries to start).
    write_state(tmp_path, sleepers, shift=-1)
    empty = tmp_path / "bin"
    empty.mkdir()
    start = tool("start", "--dir", str(tmp_path), "--bin", str(empty))
    assert "is not running; starting again on its data" in start.stderr
    assert (start.returncode, "lacks etcd" in start.stderr) == (1, True)
    assert all(process.poll() is None for process in sleepers.values())


def test_one_start_or_stop_at_a_time_per_folder(tmp_path: Path) -> None:
    with open(tmp_path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in ("start", "stop"):
            result = (
                tool(command, "--dir", str(tmp_path), "--bin", str(tmp_path))
                if command == "start"
                else tool(command, "--dir", str(tmp_path))
            )
            assert result.returncode == 1
            assert (
                f"another k8s-testbed command is starting or stopping the testbed in {tmp_path}"
                in result.stderr
            )


def test_a_state_file_that_is_not_ours_is_an_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    result = tool("status", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / STATE_FILE} is not a testbed state file" in result.stderr


@pytest.mark.k8s
def test_start_detached_readyz_through_its_kubeconfig_then_stop(tmp_path: Path) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.config.client_adapter import Client as HttpClient
    from lightkube.config.client_adapter import ConnectionParams
    from lightkube.resources.core_v1 import Namespace

    bin_dir = os.environ["MODELPORT_K8S_BIN"]  # set by make test-k8s, like for every k8s test
    folder = tmp_path / "tb"
    state_path = folder / STATE_FILE
    components = []
    try:
        started = tool("start", "--dir", str(folder), env={"MODELPORT_K8S_BIN": bin_dir}, timeout=120)
        assert started.returncode == 0, started.stderr
        assert started.stdout.splitlines()[0] == f"export KUBECONFIG={folder / 'kubeconfig'}"
        state = controlplane.read_state(state_path)
        assert state is not None and state["status"] == "running"
        components = controlplane.recorded_components(state)
        assert [c.name for c in components] == list(BINARIES)
        # The command has returned; the components outlive it, each in a session of its own.
        assert all(c.alive() and os.getsid(c.pid) == c.pid for c in components)

        # /readyz with the kubeconfig's server, CA file and token, as lightkube reads them.
        config = KubeConfig.from_file(folder / "kubeconfig").get()
        assert config.cluster.server == state["server"]
        with HttpClient(config, ConnectionParams()) as http:
            answer = http.get("/readyz")
        assert (answer.status_code, answer.text) == (200, "ok")
        client = Client(config=KubeConfig.from_file(folder / "kubeconfig"))
        assert "kube-system" in {ns.metadata.name for ns in client.list(Namespace)}
        client.close()

        status = tool("status", "--dir", str(folder))
        assert status.returncode == 0 and "(readyz: ok)" in status.stdout
        again = tool("start", "--dir", str(folder), env={"MODELPORT_K8S_BIN": bin_dir})
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = tool("stop", "--dir", str(folder), timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("stopped kube-scheduler, kube-controller-manager, kube-apiserver, etcd;")
    assert components and not any(c.alive() for c in components)
    assert not state_path.exists()
    assert (folder / "etcd").is_dir() and (folder / "kube-apiserver.log").is_file()
    assert tool("status", "--dir", str(folder)).returncode == 3
