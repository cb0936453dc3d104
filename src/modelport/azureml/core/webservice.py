"""``azureml.core.webservice``: ``Webservice``, ``AksWebservice``, ``AciWebservice``, ``LocalWebservice``,
``AksEndpoint``, as thin types over :class:`modelport.service.webservice.Webservice`.

Which type a service is follows from how it was deployed: a ``port`` in its deployment config
(``LocalWebservice.deploy_configuration``) makes it a ``LocalWebservice``; every other service is
an ``AksWebservice`` (same states, keys, tokens and front-end URI as on AKS).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.config import InferenceConfig
from modelport.config.deployment import (
    KubernetesDeploymentConfig,
    LocalDeploymentConfig,
    kubernetes_deploy_configuration,
)
from modelport.errors import ConfigValidationError, WebserviceException
from modelport.service import states
from modelport.service import store as service_store
from modelport.service.deploy import deploy as _deploy
from modelport.service.webservice import Webservice as _Webservice

# Where LocalWebservice.reload() finds the entry script and source directory it re-reads.
_SOURCE_SETTING = "azureml.local_source.{name}"
LOCAL_READY_DEADLINE_S = 30.0
POLL_S = 0.1
# Keys of AksWebservice.serialize() that have no counterpart here (no images, no endpoints yet).
_ABSENT_KEYS = ("imageId", "imageDigest", "imageDetails", "createdBy", "isDefault", "trafficPercentile")
_LIST_COMPUTE_TYPES = ("ACI", "AKSENDPOINT", "AKS", "IOT", "MIR", "LOCAL")


@dataclass(frozen=True)
class AutoScaler:
    """``service.autoscaler``."""

    autoscale_enabled: bool
    max_replicas: int
    min_replicas: int
    refresh_period_seconds: int
    target_utilization: int


@dataclass(frozen=True)
class ContainerResourceRequirements:
    """``service.container_resource_requirements``."""

    cpu: float
    memory_in_gb: float
    gpu: int
    cpu_limit: float | None
    memory_in_gb_limit: float | None


@dataclass(frozen=True)
class LivenessProbeRequirements:
    """``service.liveness_probe_requirements``."""

    failure_threshold: int
    success_threshold: int
    timeout_seconds: int
    period_seconds: int
    initial_delay_seconds: int


@dataclass(frozen=True)
class DataCollection:
    """``service.data_collection``."""

    event_hub_enabled: bool
    storage_enabled: bool


class AciServiceDeploymentConfiguration(KubernetesDeploymentConfig):
    """What ``AciWebservice.deploy_configuration`` returns: a single-replica deployment, no autoscaling."""


class LocalWebserviceDeploymentConfiguration(LocalDeploymentConfig):
    """What ``LocalWebservice.deploy_configuration`` returns: served at ``http://localhost:<port>/score``."""


def _kind_of(service: _Webservice) -> str:
    """Azure ML's compute type of a service here: ``LOCAL`` with a port, else ``AKS``."""
    return "LOCAL" if service.deployment_config.port is not None else "AKS"


def _typed(service: _Webservice) -> Any:
    """The facade type of a native service object (the object itself is re-typed, nothing copied)."""
    if _kind_of(service) == "LOCAL":
        return LocalWebservice._wrap(service)
    service.__class__ = AksWebservice
    return service


def deploy_typed(
    workspace: Any,
    name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig | None,
    deployment_config: Any,
    deployment_target: Any,
    overwrite: bool,
    show_output: bool,
) -> Any:
    """``Model.deploy`` of the facade: modelport's deploy, then the Azure ML type of the result."""
    from modelport.compute.local.ports import check_port, free_port

    if isinstance(deployment_config, LocalWebserviceDeploymentConfiguration):
        if deployment_config.port is None:  # Azure ML chose a free port at deploy time
            deployment_config = deployment_config.model_copy(update={"port": free_port()})
        check_port(workspace, name, deployment_config.port)
    service = _deploy(
        workspace,
        name,
        list(models),
        inference_config,
        deployment_config,
        deployment_target,
        overwrite,
        show_output,
    )
    if isinstance(deployment_config, LocalWebserviceDeploymentConfiguration) and inference_config is not None:
        _remember_source(workspace, name, inference_config)
    if isinstance(deployment_config, AciServiceDeploymentConfiguration):
        service.__class__ = AciWebservice
        return service
    return _typed(service)


def _remember_source(workspace: Any, name: str, config: InferenceConfig) -> None:
    entry = config.entry_script or ""
    if not config.source_directory:
        entry = str(Path(entry).resolve())
    service_store.set_setting(
        workspace,
        _SOURCE_SETTING.format(name=name),
        {"entry_script": entry, "source_directory": config.source_directory},
    )


class Webservice(_Webservice):
    """Azure ML's ``Webservice``: ``Webservice(ws, name)`` returns the subclass it was deployed as."""

    def __new__(cls, workspace: Any = None, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if cls is Webservice and workspace is not None and name is not None:
            native = _Webservice(workspace, name)
            if _kind_of(native) == "LOCAL":
                return LocalWebservice._wrap(native)
            return super().__new__(AksWebservice)
        return super().__new__(cls)

    @staticmethod
    def list(  # type: ignore[override]
        workspace: Any,
        compute_type: str | None = None,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        image_digest: str | None = None,
    ) -> list[Any]:
        """Services of the workspace, typed; ``compute_type`` ``AKS`` or ``LOCAL`` (``ACI``: none)."""
        kind = compute_type.upper() if compute_type is not None else None
        if kind is not None and kind not in _LIST_COMPUTE_TYPES:
            raise WebserviceException(
                f'Invalid compute type "{compute_type}". Valid options are "{",".join(_LIST_COMPUTE_TYPES)}"'
            )
        found = _Webservice.list(
            workspace, model_name=model_name, model_id=model_id, tags=tags, properties=properties
        )
        return [_typed(s) for s in found if kind is None or _kind_of(s) == kind]

    @staticmethod
    def deserialize(workspace: Any, payload: dict[str, Any]) -> Any:
        """The service named in ``payload``, as ``Webservice(workspace, payload['name'])`` returns it."""
        return Webservice(workspace, payload["name"])

    def serialize(self) -> dict[str, Any]:
        """Azure ML's dict form: modelport's, plus Azure's keys that have no value here (``None``)."""
        payload = {**dict.fromkeys(_ABSENT_KEYS), **super().serialize(), "versionType": None}
        payload["computeType"] = self.compute_type
        payload["namespace"] = self.namespace
        return payload

    @property
    def compute_type(self) -> str:
        """``AKS`` for services on a Kubernetes target (Azure ML's name), ``Local`` otherwise."""
        return "AKS" if self._spec.compute_type == "kubernetes" else super().compute_type

    # ------------------------------------------------------------------ AKS attributes
    @property
    def autoscaler(self) -> AutoScaler:
        """Autoscaling settings."""
        c = self.deployment_config
        return AutoScaler(
            c.autoscale_enabled,
            c.autoscale_max_replicas,
            c.autoscale_min_replicas,
            c.autoscale_refresh_seconds,
            c.autoscale_target_utilization,
        )

    @property
    def container_resource_requirements(self) -> ContainerResourceRequirements:
        """CPU, memory and GPU requests and limits."""
        c = self.deployment_config
        return ContainerResourceRequirements(
            c.cpu_cores, c.memory_gb, c.gpu_cores, c.cpu_cores_limit, c.memory_gb_limit
        )

    @property
    def liveness_probe_requirements(self) -> LivenessProbeRequirements:
        """Liveness probe settings."""
        c = self.deployment_config
        return LivenessProbeRequirements(
            c.failure_threshold,
            c.success_threshold,
            c.timeout_seconds,
            c.period_seconds,
            c.initial_delay_seconds,
        )

    @property
    def data_collection(self) -> DataCollection:
        """Model data collection (stored flag only)."""
        return DataCollection(False, self.deployment_config.collect_model_data)

    @property
    def enable_app_insights(self) -> bool:
        """Accepted and stored; no monitoring export yet."""
        return bool(self.deployment_config.enable_app_insights)

    @property
    def namespace(self) -> str | None:
        """Kubernetes namespace the service runs in (``None`` on the local target)."""
        return self.deployment_config.namespace or self.observed.get("namespace")

    @property
    def deployment_status(self) -> dict[str, Any]:
        """The target's latest report (replicas, autoscaling decision)."""
        return self.observed

    image_id = None
    image_digest = None
    image = None
    created_by = None


class AksWebservice(Webservice):
    """Azure ML's ``AksWebservice``: deployed to an attached cluster when a target is named, else locally."""

    deploy_configuration = staticmethod(kubernetes_deploy_configuration)


class AciWebservice(AksWebservice):
    """Azure ML's ``AciWebservice``: its configs deploy to the default (local) target as one replica."""

    @staticmethod
    def deploy_configuration(
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        location: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        enable_app_insights: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        dns_name_label: str | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        collect_model_data: bool | None = None,
        cmk_vault_base_url: str | None = None,
        cmk_key_name: str | None = None,
        cmk_key_version: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
    ) -> AciServiceDeploymentConfiguration:
        """Accept an ACI configuration; it deploys to the default target as a single replica (one warning)."""
        given = dict(locals())
        dropped = [
            key
            for key in (
                "location",
                "ssl_enabled",
                "ssl_cert_pem_file",
                "ssl_key_pem_file",
                "ssl_cname",
                "dns_name_label",
                "cmk_vault_base_url",
                "cmk_key_name",
                "cmk_key_version",
                "vnet_name",
                "subnet_name",
            )
            if given[key] is not None
        ]
        warnings.warn(
            "AciWebservice.deploy_configuration(): ACI does not exist here; the service deploys to the "
            "default (local) target as a single replica without autoscaling"
            + (f"; ignored: {', '.join(dropped)}." if dropped else "."),
            AzureArgumentIgnoredWarning,
            stacklevel=2,
        )
        return AciServiceDeploymentConfiguration(
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            tags=tags,
            properties=properties,
            description=description,
            auth_enabled=bool(auth_enabled),  # ACI's default: no auth
            enable_app_insights=enable_app_insights,
            primary_key=primary_key,
            secondary_key=secondary_key,
            collect_model_data=collect_model_data,
            num_replicas=1,
            autoscale_enabled=False,
        )


class AksEndpoint(AksWebservice):
    """Azure ML's ``AksEndpoint``: accepted as one service; no versions or traffic split yet."""

    @staticmethod
    def deploy_configuration(
        version_name: str | None = None, traffic_percentile: float | None = None, **knobs: Any
    ) -> KubernetesDeploymentConfig:
        """Validate as Azure ML did, then return a plain deployment config (one warning)."""
        from modelport.names import check_service_name

        if version_name is not None:
            check_service_name(version_name)
        if traffic_percentile is not None and not 0 <= traffic_percentile <= 100:
            raise ConfigValidationError(
                ["Invalid configuration, traffic_percentile cannot be negative or greater than 100."]
            )
        warnings.warn(
            "AksEndpoint: endpoint versions and traffic split are not supported yet; the endpoint "
            "deploys as one service (version_name and traffic_percentile ignored).",
            AzureArgumentIgnoredWarning,
            stacklevel=2,
        )
        return kubernetes_deploy_configuration(**knobs)

    def create_version(self, version_name: str, *args: Any, **kwargs: Any) -> None:
        """Not supported yet."""
        raise WebserviceException("AksEndpoint versions are not supported by modelport yet.")

    update_version = create_version
    delete_version = create_version


_LOCAL_STATES = {
    states.TRANSITIONING: "deploying",
    states.HEALTHY: "running",
    states.FAILED: "failed",
    states.UNSCHEDULABLE: "failed",
    states.DELETING: "deleted",
}


class LocalWebservice:
    """Azure ML's ``LocalWebservice``: one service served at ``http://localhost:<port>/score``, no auth.

    Runs on the local target (processes, not Docker); the workspace's local agent listens on the
    port. States are Azure ML's lower-case local ones.
    """

    def __init__(self, workspace: Any, name: str, must_exist: bool = True) -> None:
        self._service = _Webservice(workspace, name)

    @classmethod
    def _wrap(cls, service: _Webservice) -> LocalWebservice:
        local = cls.__new__(cls)
        local._service = service
        return local

    @staticmethod
    def deploy_configuration(port: int | None = None) -> LocalWebserviceDeploymentConfiguration:
        """``port``: an int in 1..65535 (``None``: a free port chosen at deploy time)."""
        return LocalWebserviceDeploymentConfiguration(port=port)

    def __getattr__(self, attribute: str) -> Any:
        # Everything Azure ML's LocalWebservice shares with other services (name, models, tags,
        # environment, error, get_logs, serialize's base) comes from the service itself.
        if attribute == "_service":  # not set yet: no recursion through __getattr__
            raise AttributeError(attribute)
        return getattr(self._service, attribute)

    @property
    def port(self) -> int:
        """The port the service is served on."""
        return int(self._service.deployment_config.port)

    @property
    def scoring_uri(self) -> str:
        """``http://localhost:<port>/score``."""
        return f"http://localhost:{self.port}/score"

    @property
    def swagger_uri(self) -> str:
        """``http://localhost:<port>/swagger.json``."""
        return f"http://localhost:{self.port}/swagger.json"

    @property
    def state(self) -> str:
        """``deploying``, ``running``, ``failed``, ``deleted`` or ``unknown``."""
        return _LOCAL_STATES.get(self._service.state, "unknown")

    @property
    def compute_type(self) -> str:
        """``Local``."""
        return "Local"

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        """Wait until the service answers on its port (raises with the error object if it fails)."""
        self._service.wait_for_deployment(show_output=show_output, timeout_sec=timeout_sec)
        deadline = time.monotonic() + LOCAL_READY_DEADLINE_S
        while True:
            problem = self._service.observed.get("portError")
            if problem:
                raise WebserviceException(f"Local webservice {self.name} cannot listen: {problem}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise WebserviceException(
                    f"Local webservice {self.name} is Healthy but nothing answers on port {self.port} after "
                    f"{LOCAL_READY_DEADLINE_S:.0f} s. Check `modelport local logs`."
                )
            time.sleep(POLL_S)
            self._service.update_deployment_state()
        if show_output:
            print(f"Local webservice is running at http://localhost:{self.port}", flush=True)

    def run(self, input_data: Any) -> Any:
        """POST ``input_data`` to ``http://localhost:<port>/score``; the parsed JSON answer."""
        body = input_data if isinstance(input_data, str | bytes) else json.dumps(input_data)
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/score",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=None,
        )
        if response.status_code != 200:
            raise WebserviceException(
                f"Error: Scoring was unsuccessful.\nResponse Code: {response.status_code}\n"
                f"Content: {response.content!r}",
                status_code=response.status_code,
            )
        return response.json()

    def reload(self, wait: bool = False) -> None:
        """Re-read the entry script and source directory; models, environment and settings stay.

        Rolls out a new generation with a fresh snapshot of the source (old replicas serve until
        the new ones are ready); nothing is rebuilt.
        """
        source = service_store.get_setting(self._service.workspace, _SOURCE_SETTING.format(name=self.name))
        if not source:
            raise WebserviceException(
                f"Local webservice {self.name} was not deployed through "
                "LocalWebservice.deploy_configuration, so its source directory is not known. Fix: "
                "update(inference_config=...)."
            )
        config = InferenceConfig(
            source["entry_script"],
            source_directory=source["source_directory"],
            environment=self._service.environment,
        )
        self._service.update(inference_config=config)
        if wait:
            self.wait_for_deployment()

    def update(
        self,
        models: list[Any] | None = None,
        image_config: Any = None,
        deployment_config: LocalDeploymentConfig | None = None,
        wait: bool = False,
        inference_config: InferenceConfig | None = None,
    ) -> None:
        """New models and/or a new inference config (a new generation). The port cannot change in place."""
        if deployment_config is not None and deployment_config.port not in (None, self.port):
            raise WebserviceException(
                f"Local webservice {self.name} listens on port {self.port}; changing it needs a new "
                "deployment. Fix: Model.deploy(..., overwrite=True) with "
                "LocalWebservice.deploy_configuration(port=...)."
            )
        if image_config is not None:
            raise WebserviceException("image_config is not supported: modelport builds no images.")
        if models is None and inference_config is None:
            return
        self._service.update(models=models, inference_config=inference_config)
        if inference_config is not None:
            _remember_source(self._service.workspace, self.name, inference_config)
        if wait:
            self.wait_for_deployment()

    def delete(
        self, delete_cache: bool = True, delete_image: bool = False, delete_volume: bool = True
    ) -> None:
        """Stop and remove the service (the port is released)."""
        self._service.delete()
        service_store.set_setting(self._service.workspace, _SOURCE_SETTING.format(name=self.name), None)

    def serialize(self) -> dict[str, Any]:
        """Azure ML's local form: the service's dict with ``port``, local URIs and the lower-case state."""
        return {
            **self._service.serialize(),
            "state": self.state,
            "port": self.port,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
        }

    @staticmethod
    def list(
        workspace: Any, model_name: str | None = None, model_id: str | None = None, all: bool | None = None
    ) -> list[LocalWebservice]:
        """Local webservices of the workspace."""
        return Webservice.list(workspace, compute_type="LOCAL", model_name=model_name, model_id=model_id)

    def get_keys(self) -> Any:
        """Local webservices have no auth (as in Azure ML)."""
        raise NotImplementedError("Local web services do not support authentication keys.")

    regen_key = get_keys
    get_token = get_keys
    get_access_token = get_keys

    def __repr__(self) -> str:
        return f"LocalWebservice(workspace={self._service.workspace!r}, name={self.name}, port={self.port})"


__all__ = [
    "AciWebservice",
    "AksEndpoint",
    "AksWebservice",
    "LocalWebservice",
    "Webservice",
]
