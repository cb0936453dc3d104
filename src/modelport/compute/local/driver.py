"""The local target as seen from the SDK and CLI: start the agent, find it, read logs, stop it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelport.compute.local import tls_store
from modelport.compute.local.cgroups import find_cpu_limiter
from modelport.compute.local.limits import LimitNotEnforcedWarning, unenforced_limits
from modelport.compute.local.paths import LocalPaths
from modelport.compute.local.replica import log_tail
from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.errors import UserErrorException, WebserviceException
from modelport.frontend.tls import CertificateInfo
from modelport.host import current as current_host
from modelport.service import store as service_store
from modelport.service.machine import agent_setting, frontend_port_setting, this_machine
from modelport.service.spec import LOCAL_TARGET
from modelport.service.states import ServiceError

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Generous: on a loaded machine the agent's imports alone can take many seconds.
AGENT_START_DEADLINE_S = 120.0
LOCAL_AGENT_NOT_RUNNING = "LocalAgentNotRunning"
AGENT_STOP_DEADLINE_S = 60.0
DELETE_DEADLINE_S = 120.0
POLL_S = 0.05


def paths_for(workspace: Workspace) -> LocalPaths:
    """The local agent's folder for ``workspace``."""
    return LocalPaths.for_workspace(workspace.name, workspace.metadata_store.url)


def agent_pid(workspace: Workspace) -> int | None:
    """The running agent's pid, or None: the agent holds an flock on its lock file for its life."""
    lock_path = paths_for(workspace).lock
    if not lock_path.exists():
        return None
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def gpu_count() -> int:
    """GPUs on this machine (``nvidia-smi -L``), 0 when there is no NVIDIA driver."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


class LocalDriver:
    """Runs services as local processes through the workspace's local agent (a :class:`TargetDriver`).

    The agent is the local target's reconciler: it applies every stored generation and records
    what it observes, so ``submit`` only makes sure it runs and ``observe`` has nothing to write.
    """

    compute_type: ClassVar[str] = "local"

    def __init__(self, target: str = LOCAL_TARGET) -> None:
        self.target_name = target

    def check(self, workspace: Workspace, config: EffectiveDeploymentConfig) -> None:
        """Refuse what this machine cannot provide, before anything is stored; warn about each
        accepted limit it cannot enforce (:mod:`.limits`)."""
        if config.cpu_cores_limit:  # only then is the machine's cgroup hierarchy worth looking at
            host = current_host()
            for message in unenforced_limits(config, host, find_cpu_limiter(host)):
                warnings.warn(message, LimitNotEnforcedWarning, stacklevel=4)
        if config.gpu_cores:
            available = gpu_count()
            if config.gpu_cores > available:
                raise UserErrorException(
                    f"gpu_cores={config.gpu_cores} but this machine has {available} GPU(s). Fix: set "
                    f"gpu_cores to at most {available} (gpuCores in deploymentconfig.json), or deploy to a "
                    "cluster with GPUs."
                )

    def submit(self, workspace: Workspace, name: str) -> None:
        """Make sure the agent runs; it picks the new desired state up on its next pass."""
        self.ensure_agent(workspace)

    def ensure_agent(self, workspace: Workspace) -> int:
        """Start the workspace's agent if none runs; wait until it serves. Returns its pid."""
        pid = agent_pid(workspace)
        if pid is not None:
            return pid
        paths = paths_for(workspace)
        paths.root.mkdir(parents=True, exist_ok=True)
        location = {
            "name": workspace.name,
            "metadata_url": workspace.metadata_store.url,
            "artifact_url": workspace.artifact_url,
            "storage_options": workspace.store_location.storage_options,
        }
        env = {**os.environ, "MODELPORT_AGENT_WORKSPACE": json.dumps(location)}
        with open(paths.agent_log, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelport.compute.local.agent"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives the notebook or CLI that started it
            )
        deadline = time.monotonic() + AGENT_START_DEADLINE_S
        while time.monotonic() < deadline:
            info = service_store.get_setting(workspace, agent_setting(this_machine().id))
            pid = agent_pid(workspace)
            if pid is not None and info and info.get("pid") == pid:
                return pid
            if process.poll() not in (None, 0):
                break
            time.sleep(POLL_S)
        raise WebserviceException(
            f"The local agent did not start within {AGENT_START_DEADLINE_S:.0f} s. Its log is "
            f"{paths.agent_log}:\n" + log_tail(paths.agent_log, 20)
        )

    def stop_agent(self, workspace: Workspace) -> bool:
        """Stop the agent (its replicas stop too; services stay deployed). False if none ran."""
        pid = agent_pid(workspace)
        if pid is None or pid <= 0:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + AGENT_STOP_DEADLINE_S
        while agent_pid(workspace) is not None:
            if time.monotonic() > deadline:
                raise WebserviceException(
                    f"The local agent (pid {pid}) did not stop within {AGENT_STOP_DEADLINE_S:.0f} s. "
                    f"Its log is {paths_for(workspace).agent_log}; `kill -9 {pid}` stops it for good."
                )
            time.sleep(POLL_S)
        return True

    def observe(self, workspace: Workspace, record: service_store.ServiceRecord) -> ServiceError | None:
        """The agent records what it observes itself; only the target's problem is looked up here.

        Another machine's service is reported as its agent recorded it: this machine cannot see
        that agent.
        """
        if record.machine_id not in (None, this_machine().id):
            return None
        return self.target_problem(workspace)

    def delete(self, workspace: Workspace, name: str) -> None:
        """Wait until the agent stopped the service (marked deleting) and removed it."""
        self.ensure_agent(workspace)
        deadline = time.monotonic() + DELETE_DEADLINE_S
        while service_store.read_service(workspace, name) is not None:
            if time.monotonic() > deadline:
                raise WebserviceException(
                    f"Service {name} is still being deleted after {DELETE_DEADLINE_S:.0f} s; the agent keeps "
                    "trying. Check `modelport local status`."
                )
            time.sleep(POLL_S)

    def target_problem(self, workspace: Workspace) -> ServiceError | None:
        """Why no service of this target can be served right now (no agent runs), or None."""
        if agent_pid(workspace) is not None:
            return None
        return ServiceError(
            code=LOCAL_AGENT_NOT_RUNNING,
            status_code=503,
            message="No local agent runs for this workspace, so nothing serves its local services. Fix: "
            "`modelport local start`, or call wait_for_deployment(), which starts it.",
        )

    def endpoint(self, workspace: Workspace, record: service_store.ServiceRecord | None = None) -> str | None:
        """``http://127.0.0.1:<port>`` of the front end of ``record``'s machine (default: this one's),
        known once its agent has run; on another machine, the address is that machine's loopback.
        ``https://<cname or 127.0.0.1>:<port>`` when that agent serves TLS."""
        machine = record.machine_id if record is not None and record.machine_id else this_machine().id
        port = service_store.get_setting(workspace, frontend_port_setting(machine))
        if not port:
            return None
        served = (service_store.get_setting(workspace, agent_setting(machine)) or {}).get("tls")
        if served:
            return f"https://{served.get('cname') or tls_store.LOOPBACK}:{port}"
        return f"http://127.0.0.1:{port}"

    def configure_tls(
        self, workspace: Workspace, cert_file: Path, key_file: Path, cname: str | None
    ) -> CertificateInfo:
        """Serve the local front end over HTTPS with this pair, remembered for later starts.

        A bad pair is refused before anything changes. A running agent already on HTTPS takes
        the new pair for new handshakes without dropping a connection (SIGHUP); one on plain
        HTTP is restarted (its services come back). Returns once the agent serves the pair.
        """
        paths = paths_for(workspace)
        paths.root.mkdir(parents=True, exist_ok=True)
        was_tls = tls_store.installed(paths) is not None
        info = tls_store.install(paths, cert_file, key_file, cname)
        pid = agent_pid(workspace)
        if pid is not None and was_tls and pid > 0:
            os.kill(pid, signal.SIGHUP)
            self._wait_for_certificate(workspace, info.sha256)
        else:
            self.stop_agent(workspace)
            self.ensure_agent(workspace)
        return info

    def disable_tls(self, workspace: Workspace) -> bool:
        """Forget the pair and serve plain HTTP (restarting a running agent). False if TLS was off."""
        if not tls_store.uninstall(paths_for(workspace)):
            return False
        if self.stop_agent(workspace):
            self.ensure_agent(workspace)
        return True

    def _wait_for_certificate(self, workspace: Workspace, sha256: str) -> None:
        deadline = time.monotonic() + AGENT_START_DEADLINE_S
        setting = agent_setting(this_machine().id)
        while time.monotonic() < deadline:
            served = (service_store.get_setting(workspace, setting) or {}).get("tls") or {}
            if served.get("sha256") == sha256:
                return
            time.sleep(POLL_S)
        raise WebserviceException(
            f"The local agent did not take the new certificate within {AGENT_START_DEADLINE_S:.0f} s; "
            f"the reason is in its log {paths_for(workspace).agent_log}:\n"
            + log_tail(paths_for(workspace).agent_log, 20)
        )

    def logs(self, workspace: Workspace, name: str, generation: int, num_lines: int, init: bool) -> str:
        """Replica logs (or, with ``init``, the preparation log: environment build and model download)."""
        paths = paths_for(workspace)
        path = (
            paths.build_log(name, generation) if init else paths.log_dir(name) / f"replicas-g{generation}.log"
        )
        return log_tail(path, num_lines)

    def target_events(self, workspace: Workspace, name: str) -> list[service_store.ServiceEvent]:
        """None: the agent writes every event (autoscale decisions, restarts) to the workspace."""
        return []

    def status(self, workspace: Workspace) -> dict[str, Any]:
        """What ``modelport local status`` prints."""
        pid = agent_pid(workspace)
        machine = this_machine()
        info = service_store.get_setting(workspace, agent_setting(machine.id)) or {}
        return {
            "machine": str(machine),
            "running": pid is not None,
            "pid": pid,
            "frontendUrl": self.endpoint(workspace),
            "tls": info.get("tls") if pid else None,
            "heartbeat": info.get("heartbeat") if pid else None,
            "stateDir": str(paths_for(workspace).root),
            "agentLog": str(paths_for(workspace).agent_log),
        }
