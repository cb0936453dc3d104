"""The desired state of a service, as stored in the workspace and read by target drivers."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modelport.config.deployment import EffectiveDeploymentConfig

ComputeType = Literal["local", "kubernetes"]
LOCAL_TARGET = "local"


def auth_digest(mode: str, primary: str | None, secondary: str | None, token_secret: str) -> str:
    """A fingerprint of a service's auth settings; a target reports it once its front end has them."""
    material = f"{mode}|{primary}|{secondary}|{token_secret}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class ModelRef(BaseModel):
    """A model version a service serves."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    db_id: int
    root: str  # the stored top-level entry (file or folder) inside <name>/<version>/

    @property
    def id(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


class EnvironmentRef(BaseModel):
    """The environment replicas run in; ``None`` in a spec means the workspace's own Python."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str | None
    definition: dict[str, Any]
    content_hash: str


class SourceRef(BaseModel):
    """The shipped code: the source folder's name (if any) and the entry script path under the app root."""

    model_config = ConfigDict(frozen=True)

    directory: str | None  # basename of source_directory, unpacked as <app root>/<directory>/
    entry_script: str  # AZUREML_ENTRY_SCRIPT: "<directory>/<entry_script>" or just the script name
    file_count: int


class ServiceSpec(BaseModel):
    """Everything a target needs to run a service; one generation of it."""

    model_config = ConfigDict(frozen=True)

    name: str
    compute_type: ComputeType
    compute_target: str
    models: tuple[ModelRef, ...]
    source: SourceRef
    environment: EnvironmentRef | None
    deployment: EffectiveDeploymentConfig  # keys resolved: primary_key/secondary_key are set
    token_secret: str  # hex; signs this service's access tokens
    description: str | None = None
    tags: dict[str, str] = {}
    properties: dict[str, str] = {}

    @property
    def auth_mode(self) -> Literal["none", "key", "token"]:
        """How clients authenticate: token auth wins over key auth (they are exclusive)."""
        if self.deployment.token_auth_enabled:
            return "token"
        return "key" if self.deployment.auth_enabled else "none"

    @property
    def auth_digest(self) -> str:
        """A fingerprint of the auth settings; the target reports it once its front end applies them."""
        config = self.deployment
        return auth_digest(self.auth_mode, config.primary_key, config.secondary_key, self.token_secret)

    @property
    def model_dir(self) -> str:
        """``AZUREML_MODEL_DIR`` relative to the app root (Azure ML's layout; docs/scoring.md)."""
        if len(self.models) == 1:
            only = self.models[0]
            return f"azureml-models/{only.name}/{only.version}"
        return "azureml-models"
