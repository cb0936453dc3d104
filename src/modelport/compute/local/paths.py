"""Where the local target keeps its files for a workspace: agent lock and log, services, logs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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

    @staticmethod
    def environments_cache() -> Path:
        """Virtualenvs built per environment content hash, shared by every workspace of this user."""
        return modelport_home() / "envs"
