"""``azureml.core.compute.kubernetes``: ``KubernetesCompute``, attached with modelport's options by name."""

from __future__ import annotations

from typing import Any

from modelport.azureml.core.compute.aks import AksCompute
from modelport.azureml.core.compute.compute import ComputeTarget, TargetConfiguration


class KubernetesAttachConfiguration(TargetConfiguration):
    """``KubernetesCompute.attach_configuration(...)``: every modelport option of the target by name.

    ``context=None`` attaches the kubeconfig's current context; ``resource_id`` (an Azure
    connected or managed cluster id) names the context by its last segment when ``context`` is
    not given. ``identity_type``/``identity_ids`` (Azure identities) are ignored with a warning.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        system_namespace: str | None = None,
        cluster_purpose: str | None = None,
        image: str | None = None,
        frontend_service_type: str | None = None,
        frontend_replicas: int | None = None,
        scoring_url: str | None = None,
        store_endpoint_url: str | None = None,
        in_cluster: bool | None = None,
        progress_deadline_s: int | None = None,
        pod_annotations: dict[str, str] | None = None,
        env_mode: str | None = None,
        registry: str | None = None,
        registry_username: str | None = None,
        registry_password: str | None = None,
        registry_insecure: bool | None = None,
        resource_id: str | None = None,
        identity_type: str | None = None,
        identity_ids: list[str] | None = None,
    ) -> None:
        self.cluster_purpose = cluster_purpose
        self.resource_id = resource_id
        self.identity_type = identity_type
        self.identity_ids = identity_ids
        if context is None and resource_id:
            context = resource_id.rstrip("/").rsplit("/", 1)[-1]
        self._set_kubernetes_options(
            {
                "kubeconfig": kubeconfig,
                "context": context,
                "namespace": namespace,
                "system_namespace": system_namespace,
                "image": image,
                "frontend_service_type": frontend_service_type,
                "frontend_replicas": frontend_replicas,
                "scoring_url": scoring_url,
                "store_endpoint_url": store_endpoint_url,
                "in_cluster": in_cluster,
                "progress_deadline_s": progress_deadline_s,
                "pod_annotations": pod_annotations,
                "env_mode": env_mode,
                "registry": registry,
                "registry_username": registry_username,
                "registry_password": registry_password,
                "registry_insecure": registry_insecure,
            }
        )

    def _compute_class(self) -> type[ComputeTarget]:
        return KubernetesCompute

    def _ignored_arguments(self) -> dict[str, Any]:
        return {"identity_type": self.identity_type, "identity_ids": self.identity_ids}


class KubernetesCompute(AksCompute):
    """An ``AksCompute`` attached with modelport's options by name (the issue's Python API)."""

    attach_configuration = staticmethod(KubernetesAttachConfiguration)  # type: ignore[assignment]


__all__ = ["KubernetesAttachConfiguration", "KubernetesCompute"]
