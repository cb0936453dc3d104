"""``azureml.core.webservice.aks``: ``AksWebservice``, ``AksServiceDeploymentConfiguration``,
``AksEndpoint`` and the attribute types of an AKS service.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.azureml.core.webservice.webservice import Webservice, register_type
from modelport.config.deployment import (
    AksServiceDeploymentConfiguration,
    KubernetesDeploymentConfig,
    kubernetes_deploy_configuration,
)
from modelport.errors import ConfigValidationError, WebserviceException
from modelport.names import check_service_name
from modelport.service.webservice import Webservice as _Webservice


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


class AksWebservice(Webservice):
    """Azure ML's ``AksWebservice``: deployed to an attached cluster when a target is named, else locally."""

    deploy_configuration = staticmethod(kubernetes_deploy_configuration)

    def serialize(self) -> dict[str, Any]:
        """Azure ML's dict form of an AKS service (with its ``namespace``)."""
        return {**super().serialize(), "namespace": self.namespace}

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


def _as_aks(service: _Webservice) -> AksWebservice:
    service.__class__ = AksWebservice
    return service  # type: ignore[return-value]


register_type("AKS", _as_aks)


class AksEndpoint(AksWebservice):
    """Azure ML's ``AksEndpoint``: accepted as one service; no versions or traffic split yet."""

    # Azure ML's classes each have their own factory arguments; the facade mirrors them, so this
    # one does not accept the AksWebservice factory's.
    @staticmethod
    def deploy_configuration(  # type: ignore[override]
        version_name: str | None = None, traffic_percentile: float | None = None, **knobs: Any
    ) -> KubernetesDeploymentConfig:
        """Validate as Azure ML did, then return a plain deployment config (one warning)."""
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


__all__ = [
    "AksEndpoint",
    "AksServiceDeploymentConfiguration",
    "AksWebservice",
    "AutoScaler",
    "ContainerResourceRequirements",
    "DataCollection",
    "LivenessProbeRequirements",
]
