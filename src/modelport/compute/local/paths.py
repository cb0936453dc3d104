"""Where the local target keeps its files for a workspace: agent lock and log, services, logs, sockets."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelport.host import Host
from modelport.workspace.config import modelport_home


@dataclass(frozen=True)
class LocalPaths:
    """The local agent's folder for one workspace (``$MODELPORT_HOME/local/<name>-<hash>/``)."""

    root: Path

    @classmethod
    def for_workspace(cls, name: str, metadata_url: str) -> LocalPaths:
        """One folder per workspace database, so two workspaces of the same name never share an agent."""
        digest = hashlib.sha256(metadata_url.encode()).hexdigest()[:10]
        return cls(modelport_home() / "local" / f"{name}-{digest}")

    @property
    def lock(self) -> Path:
        """Held (flock) by the running agent for its whole life."""
        return self.root / "agent.lock"

    @property
    def agent_log(self) -> Path:
        """The agent's own log."""
        return self.root / "agent.log"

    def generation_dir(self, service: str, generation: int) -> Path:
        """The app root of one generation of a service (source folder and azureml-models/)."""
        return self.root / "services" / service / f"g{generation}"

    def service_dir(self, service: str) -> Path:
        """Everything materialised for a service."""
        return self.root / "services" / service

    def log_dir(self, service: str) -> Path:
        """Replica and build logs of a service."""
        return self.root / "logs" / service

    def build_log(self, service: str, generation: int) -> Path:
        """The preparation log (environment build, model download) of a generation."""
        return self.log_dir(service) / f"prepare-g{generation}.log"

    @property
    def sockets(self) -> Path:
        """The replicas' Unix socket files, where the platform has no abstract socket namespace."""
        return self.root / "sockets"

    @staticmethod
    def environments_cache() -> Path:
        """Virtualenvs built per environment content hash, shared by every workspace of this user."""
        return modelport_home() / "envs"


def replica_socket(host: Host, replica_id: str, folder: Path | None) -> str | None:
    """Where a local replica listens for its front end besides its TCP port: chosen here alone.

    Linux's abstract namespace first (no file to clean up, nothing left behind by a SIGKILL).
    Elsewhere a socket file in ``folder``, or, when that path is longer than the platform's
    ``sun_path`` (104 bytes on macOS, whose temporary folders are long), in a private folder
    under the system's temporary directory. None when neither fits: the front end then uses TCP,
    which costs a little latency and nothing else. The random part keeps replicas of different
    agents apart.
    """
    token = secrets.token_hex(6)
    if host.linux_features:
        return f"@modelport-{replica_id}-{token}"
    fallback = Path(tempfile.gettempdir()) / f"modelport-{os.getuid()}"
    for base in (folder, fallback):
        if base is None:
            continue
        path = base / f"{token}.sock"
        if len(os.fsencode(path)) < host.unix_path_max and _private_folder(base):
            return str(path)
    return None


def _private_folder(path: Path) -> bool:
    """Whether ``path`` is (now) a folder of this user's that nobody else may write to."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022
