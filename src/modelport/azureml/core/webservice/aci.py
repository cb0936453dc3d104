"""``azureml.core.webservice.aci``: ``AciWebservice``, whose configs deploy to the default target."""

from __future__ import annotations

import warnings

from modelport.azureml._compat import AzureArgumentIgnoredWarning
from modelport.azureml.core.webservice.aks import AksWebservice
from modelport.config.deployment import KubernetesDeploymentConfig

# ACI arguments with no counterpart on the default target: named in the one warning.
_DROPPED = (
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


class AciServiceDeploymentConfiguration(KubernetesDeploymentConfig):
    """What ``AciWebservice.deploy_configuration`` returns: a single-replica deployment, no autoscaling."""


class AciWebservice(AksWebservice):
    """Azure ML's ``AciWebservice``: its configs deploy to the default (local) target as one replica."""

    # Azure ML's classes each have their own factory arguments; the facade mirrors them, so this
    # one does not accept the AksWebservice factory's.
    @staticmethod
    def deploy_configuration(  # type: ignore[override]
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
        dropped = [key for key in _DROPPED if given[key] is not None]
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


__all__ = ["AciServiceDeploymentConfiguration", "AciWebservice"]
