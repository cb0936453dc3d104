"""The desired state of a service, as stored in the workspace and read by target drivers."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.frontend.routes import NamedKey, named_keys_wire

ComputeType = Literal["local", "kubernetes"]
LOCAL_TARGET = "local"


def auth_digest(
    mode: str, primary: str | None, secondary: str | None, token_secret: str, named_keys: str = "[]"
) -> str:
    """A fingerprint of a service's auth settings; a target reports it once its front end has them.

    ``named_keys`` is the canonical JSON of the named keys (``frontend.routes.named_keys_wire``).
    """
    material = f"{mode}|{primary}|{secondary}|{token_secret}|{named_keys}"
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
    # Keys beyond the primary and secondary, stored as hashes with their limits (key auth only).
    named_keys: tuple[NamedKey, ...] = ()
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
        return auth_digest(
            self.auth_mode,
            config.primary_key,
            config.secondary_key,
            self.token_secret,
            named_keys_wire(self.named_keys),
        )

    @property
    def frontend_settings(self) -> dict[str, Any]:
        """What a front end needs of the service besides its keys: admission, timeouts, autoscaling.

        The one route description of both front-end homes: the local agent reads it from the spec,
        the in-cluster front end from the Deployment's ``modelport.io/frontend`` annotation (this
        dict as JSON); both make the route with ``frontend.routes.service_route``. The keys follow
        the Azure ML service JSON (``Webservice.serialize``), so a person reading the object knows
        them.
        """
        config = self.deployment
        return {
            "maxConcurrentRequestsPerContainer": config.replica_max_concurrent_requests,
            "maxQueueWaitMs": config.max_request_wait_time,
            "scoringTimeoutMs": config.scoring_timeout_ms,
            "numReplicas": config.num_replicas,
            "autoScaler": config.autoscaler_json(),
        }
