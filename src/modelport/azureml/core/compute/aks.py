"""``azureml.core.compute.aks``: ``AksCompute``, its provisioning and attach configurations, and the
types of its attributes (``SslConfiguration``, ``SystemService``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.azureml.core.compute.compute import ComputeTarget, TargetConfiguration
from modelport.compute import targets
from modelport.compute.kubernetes.target import COMPUTE_TYPE
from modelport.errors import ComputeTargetException, UserErrorException

if TYPE_CHECKING:
    from modelport.compute.kubernetes.target import KubernetesTarget


class SslConfiguration:
    """TLS settings of a cluster's front end (accepted; TLS is not supported yet)."""

    def __init__(
        self,
        status: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        cname: str | None = None,
        leaf_domain_label: str | None = None,
        overwrite_existing_domain: bool = False,
        renew: bool = False,
    ) -> None:
        if status is not None and status not in ("Enabled", "Disabled", "Auto"):
            raise ComputeTargetException(
                f"Invalid SSL status {status!r}: expected one of Enabled, Disabled, Auto."
            )
        self.status = status
        self.cert = cert
        self.key = key
        self.cname = cname
        self.leaf_domain_label = leaf_domain_label
        self.overwrite_existing_domain = overwrite_existing_domain
        self.renew = renew

    def serialize(self) -> dict[str, Any]:
        """Azure ML's ``sslConfiguration`` dict."""
        return {
            "status": self.status,
            "cert": self.cert,
            "key": self.key,
            "cname": self.cname,
            "leafDomainLabel": self.leaf_domain_label,
            "overwriteExistingDomain": self.overwrite_existing_domain,
            "renew": self.renew,
        }


@dataclass(frozen=True)
class SystemService:
    """A service the target runs for its web services (modelport's front end)."""

    service_type: str
    version: str | None
    public_ip_address: str | None

    def serialize(self) -> dict[str, Any]:
        """Azure ML's ``systemServices`` entry."""
        return {
            "serviceType": self.service_type,
            "version": self.version,
            "publicIpAddress": self.public_ip_address,
        }


class _SslMixin:
    ssl_cname: str | None = None
    ssl_cert_pem_file: str | None = None
    ssl_key_pem_file: str | None = None
    leaf_domain_label: str | None = None
    overwrite_existing_domain: bool = False

    def enable_ssl(
        self,
        ssl_cname: str | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        leaf_domain_label: str | None = None,
        overwrite_existing_domain: bool = False,
    ) -> Any:
        """Either the certificate trio or ``leaf_domain_label``; returns ``self``."""
        trio = (ssl_cname, ssl_cert_pem_file, ssl_key_pem_file)
        if any(trio) and leaf_domain_label:
            raise ComputeTargetException(
                "Invalid configuration, provide either the certificate (ssl_cname, ssl_cert_pem_file, "
                "ssl_key_pem_file) or leaf_domain_label, not both."
            )
        if overwrite_existing_domain and not leaf_domain_label:
            raise ComputeTargetException(
                "Invalid configuration, overwrite_existing_domain requires leaf_domain_label."
            )
        self.ssl_cname, self.ssl_cert_pem_file, self.ssl_key_pem_file = trio
        self.leaf_domain_label = leaf_domain_label
        self.overwrite_existing_domain = overwrite_existing_domain
        self._check_ssl()
        return self

    def _check_ssl(self) -> None:
        trio = (self.ssl_cname, self.ssl_cert_pem_file, self.ssl_key_pem_file)
        if any(trio) and not all(trio):
            raise ComputeTargetException(
                "Invalid configuration, not all ssl information provided. To enable SSL, provide "
                "ssl_cname, ssl_cert_pem_file and ssl_key_pem_file."
            )
        if self.leaf_domain_label:
            raise ComputeTargetException(
                f"leaf_domain_label={self.leaf_domain_label!r} asks Microsoft to issue a certificate for a "
                "cloudapp.azure.com name, which exists only on Azure. Fix: pass your own certificate: "
                "enable_ssl(ssl_cname=..., ssl_cert_pem_file=..., ssl_key_pem_file=...)."
            )
        if self.ssl_cert_pem_file and self.ssl_key_pem_file:
            from pathlib import Path

            from modelport.frontend.tls import check_pair

            # Refused now with the reason, not at the first handshake.
            try:
                check_pair(Path(self.ssl_cert_pem_file), Path(self.ssl_key_pem_file), self.ssl_cname)
            except UserErrorException as exc:
                raise ComputeTargetException(str(exc)) from None

    def _ssl_arguments(self) -> dict[str, Any]:
        # The in-cluster front end does not serve TLS yet: the checked pair is named in the warning.
        return {
            "ssl_cname": self.ssl_cname,
            "ssl_cert_pem_file": self.ssl_cert_pem_file,
            "ssl_key_pem_file": self.ssl_key_pem_file,
        }


class AksProvisioningConfiguration(_SslMixin, TargetConfiguration):
    """``AksCompute.provisioning_configuration(...)``: validated at construction as Azure ML did.

    ``agent_count`` and ``vm_size`` are recorded (no nodes are provisioned); ``location``, the VNET
    arguments, SSL and an internal load balancer are ignored with one warning at ``create``.
    modelport's options of the target (``context``, ``kubeconfig``, ``namespace``,
    ``system_namespace``, ``image``, ...; see :class:`TargetConfiguration`) are keyword arguments.
    """

    def __init__(
        self,
        agent_count: int | None = None,
        vm_size: str | None = None,
        ssl_cname: str | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        location: str | None = None,
        vnet_resourcegroup_name: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
        service_cidr: str | None = None,
        dns_service_ip: str | None = None,
        docker_bridge_cidr: str | None = None,
        cluster_purpose: str | None = None,
        load_balancer_type: str | None = None,
        load_balancer_subnet: str | None = None,
        **kubernetes_options: Any,
    ) -> None:
        self.agent_count = agent_count
        self.vm_size = vm_size
        self.ssl_cname, self.ssl_cert_pem_file, self.ssl_key_pem_file = (
            ssl_cname,
            ssl_cert_pem_file,
            ssl_key_pem_file,
        )
        self.location = location
        self.vnet_resourcegroup_name = vnet_resourcegroup_name
        self.vnet_name = vnet_name
        self.subnet_name = subnet_name
        self.service_cidr = service_cidr
        self.dns_service_ip = dns_service_ip
        self.docker_bridge_cidr = docker_bridge_cidr
        self.cluster_purpose = cluster_purpose
        self.load_balancer_type = load_balancer_type
        self.load_balancer_subnet = load_balancer_subnet
        self.validate_configuration()
        self._set_kubernetes_options(kubernetes_options)

    def validate_configuration(self) -> None:
        """Raise ``ComputeTargetException`` for the first rule that fails (Azure ML's order)."""
        if self.agent_count is not None and (not isinstance(self.agent_count, int) or self.agent_count <= 0):
            raise ComputeTargetException("Invalid configuration, agent count must be a positive integer.")
        self._check_ssl()
        if any(self._vnet()) and not all(self._vnet()):
            raise ComputeTargetException(
                "Invalid configuration, not all virtual net information provided. To use a custom VNET "
                "configuration, provide vnet_resourcegroup_name, vnet_name, subnet_name, service_cidr, "
                "dns_service_ip and docker_bridge_cidr."
            )

    def _vnet(self) -> tuple[str | None, ...]:
        return (
            self.vnet_resourcegroup_name,
            self.vnet_name,
            self.subnet_name,
            self.service_cidr,
            self.dns_service_ip,
            self.docker_bridge_cidr,
        )

    operation = "create"

    def _compute_class(self) -> type[ComputeTarget]:
        return AksCompute

    def _apply(
        self, workspace: Any, name: str, target: KubernetesTarget, progress: Callable[[str], None]
    ) -> targets.TargetRecord:
        from modelport.compute.kubernetes import cluster

        provisioning = self._provisioning()
        if provisioning:
            asked = ", ".join(f"{key}={value}" for key, value in provisioning.items())
            progress(f"Recorded {asked}: modelport provisions no nodes (the context's are used)")
        return cluster.create(workspace, name, target, provisioning, progress=progress)

    def _provisioning(self) -> dict[str, Any]:
        """What create records of the requested cluster size (the keys of Azure ML's payload)."""
        asked = {"agentCount": self.agent_count, "vmSize": self.vm_size}
        return {key: value for key, value in asked.items() if value is not None}

    def _ignored_arguments(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "vnet_resourcegroup_name": self.vnet_resourcegroup_name,
            "vnet_name": self.vnet_name,
            "subnet_name": self.subnet_name,
            "service_cidr": self.service_cidr,
            "dns_service_ip": self.dns_service_ip,
            "docker_bridge_cidr": self.docker_bridge_cidr,
            **self._ssl_arguments(),
            "load_balancer_type": self.load_balancer_type,
            "load_balancer_subnet": self.load_balancer_subnet,
        }


class AksAttachConfiguration(_SslMixin, TargetConfiguration):
    """``AksCompute.attach_configuration(...)``: validated at construction as Azure ML did.

    ``cluster_name`` (or the last segment of ``resource_id``) names the kubeconfig context to
    attach, as ``az aks get-credentials`` names it; ``resource_group`` only completes Azure's
    name. modelport's other options (``kubeconfig``, ``namespace``, ``system_namespace``,
    ``image``, ...; see :class:`TargetConfiguration`) are keyword arguments.
    """

    def __init__(
        self,
        resource_group: str | None = None,
        cluster_name: str | None = None,
        resource_id: str | None = None,
        cluster_purpose: str | None = None,
        load_balancer_type: str | None = None,
        load_balancer_subnet: str | None = None,
        **kubernetes_options: Any,
    ) -> None:
        self.resource_group = resource_group
        self.cluster_name = cluster_name
        self.resource_id = resource_id
        self.cluster_purpose = cluster_purpose
        self.load_balancer_type = load_balancer_type
        self.load_balancer_subnet = load_balancer_subnet
        self.validate_configuration()
        # cluster_name is the context: a second name for it would only be a chance to disagree.
        self._set_kubernetes_options(kubernetes_options, taken={"context": "cluster_name (or resource_id)"})

    def validate_configuration(self) -> None:
        """Raise ``ComputeTargetException`` for the first rule that fails (Azure ML's order)."""
        if self.resource_id:
            parts = self.resource_id.split("/")
            if len(parts) != 9 or parts[6] != "Microsoft.ContainerService":
                raise ComputeTargetException(
                    f"Invalid resource_id provided: {self.resource_id}. Expected "
                    "/subscriptions/<sub>/resourcegroups/<rg>/providers/Microsoft.ContainerService/"
                    "managedClusters/<name>."
                )
            if self.resource_group or self.cluster_name:
                raise ComputeTargetException(
                    "Invalid configuration, specify resource_id or resource_group and cluster_name, not both."
                )
            self.cluster_name = parts[8]
        elif not (self.resource_group and self.cluster_name):
            raise ComputeTargetException(
                "Invalid configuration, provide both resource_group and cluster_name, or resource_id."
            )
        self._check_ssl()
        if self.load_balancer_type is not None and self.load_balancer_type not in (
            "InternalLoadBalancer",
            "PublicIp",
        ):
            raise ComputeTargetException(
                f"Invalid load_balancer_type {self.load_balancer_type!r}: expected InternalLoadBalancer or "
                "PublicIp."
            )
        if self.load_balancer_subnet and self.load_balancer_type != "InternalLoadBalancer":
            raise ComputeTargetException(
                "Invalid configuration, load_balancer_subnet is only allowed with load_balancer_type "
                "InternalLoadBalancer."
            )

    def _compute_class(self) -> type[ComputeTarget]:
        return AksCompute

    def _target_options(self) -> dict[str, Any]:
        return {**self.kubernetes_options, "context": self.cluster_name}

    def _ignored_arguments(self) -> dict[str, Any]:
        return {
            **self._ssl_arguments(),
            "load_balancer_type": self.load_balancer_type,
            "load_balancer_subnet": self.load_balancer_subnet,
        }


class AksCompute(ComputeTarget, reads=COMPUTE_TYPE):
    """Azure ML's ``AksCompute``: a Kubernetes cluster attached to (or created in) the workspace."""

    type = "AKS"

    class ClusterPurpose:
        """Values of ``cluster_purpose``."""

        FAST_PROD = "FastProd"
        DEV_TEST = "DevTest"

    # The configuration classes take exactly these factories' arguments and validate them.
    provisioning_configuration = staticmethod(AksProvisioningConfiguration)
    attach_configuration = staticmethod(AksAttachConfiguration)

    @staticmethod
    def attach(workspace: Any, name: str, attach_configuration: Any) -> Any:
        """Azure ML's deprecated ``AksCompute.attach(ws, name, resource_id)`` form is refused.

        Given an attach configuration it does what ``ComputeTarget.attach`` does.
        """
        if isinstance(attach_configuration, str):
            raise ComputeTargetException(
                "AksCompute.attach(workspace, name, resource_id) is deprecated. Fix: "
                "ComputeTarget.attach(ws, name, AksCompute.attach_configuration(resource_id=...))."
            )
        return ComputeTarget.attach(workspace, name, attach_configuration)

    def _load(self, workspace: Any, record: targets.TargetRecord) -> None:
        from modelport.compute.kubernetes.target import KubernetesTarget

        target = KubernetesTarget.model_validate(record.definition)
        self.workspace = workspace
        self.name = record.name
        self.kubernetes = target
        subscription = getattr(workspace, "subscription_id", None)
        group = getattr(workspace, "resource_group", None)
        self.id = (
            f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{workspace.name}/computes/{record.name}"
            if subscription and group
            else None
        )
        self.location = getattr(workspace, "location", None)
        self.tags: dict[str, str] | None = None
        self.description: str | None = None
        self.created_on = record.created_time
        self.modified_on = record.updated_time
        self.provisioning_state = record.state
        self.provisioning_errors = [{"error": record.error}] if record.error else None
        self.cluster_resource_id: str | None = None  # no Azure resource behind a kubeconfig context
        self.cluster_location: str | None = None
        self.is_attached = not target.created
        self.agent_vm_size = target.provisioning.get("vmSize")
        self.agent_count = target.provisioning.get("agentCount")
        self.cluster_purpose = target.cluster_purpose
        version = target.image.rsplit(":", 1)[1] if ":" in target.image.rsplit("/", 1)[-1] else None
        self.system_services = [SystemService("ScoringFrontEnd", version, target.scoring_url)]
        self.ssl_configuration = SslConfiguration(status="Disabled")
        self.load_balancer_type = "PublicIp" if target.frontend_service_type == "LoadBalancer" else None
        self.load_balancer_subnet: str | None = None

    @property
    def cluster_fqdn(self) -> str | None:
        """The cluster's API server URL, from the kubeconfig (None when it cannot be read)."""
        from modelport.compute.kubernetes.connection import connect

        try:
            client = connect(self.kubernetes)
        except (ComputeTargetException, OSError):  # OSError: credential files the kubeconfig names are gone
            return None
        try:
            return str(client.config.cluster.server)
        finally:
            client.close()

    def get_credentials(self) -> dict[str, Any]:
        """Not supported: the cluster's credentials are the kubeconfig the target names."""
        raise ComputeTargetException(
            f"get_credentials() is not supported: target {self.name!r} reaches its cluster with kubeconfig "
            f"{self.kubernetes.kubeconfig or '$KUBECONFIG or ~/.kube/config'}, context "
            f"{self.kubernetes.context or '(current)'}; use that file."
        )

    def update(self, update_configuration: Any) -> None:
        """Not supported: TLS and load balancer changes need TLS support modelport does not have yet."""
        raise ComputeTargetException(
            "AksCompute.update is not supported: modelport's front end has no TLS yet and its service type "
            "is set at attach. Fix: detach() and attach again with frontend_service_type=..."
        )

    def serialize(self) -> dict[str, Any]:
        """Azure ML's ``AksCompute.serialize()`` shape, plus ``properties.properties.kubernetes``."""
        target = self.kubernetes
        return {
            "id": self.id,
            "name": self.name,
            "tags": self.tags,
            "location": self.location,
            "properties": {
                "computeType": self.type,
                "computeLocation": self.cluster_location,
                "description": self.description,
                "resourceId": self.cluster_resource_id,
                "isAttachedCompute": self.is_attached,
                "provisioningState": self.provisioning_state,
                "provisioningErrors": self.provisioning_errors,
                "properties": {
                    "agentVmSize": self.agent_vm_size,
                    "agentCount": self.agent_count,
                    "clusterPurpose": self.cluster_purpose,
                    "clusterFqdn": self.cluster_fqdn,
                    "systemServices": [service.serialize() for service in self.system_services],
                    "sslConfiguration": self.ssl_configuration.serialize(),
                    "loadBalancerType": self.load_balancer_type,
                    "loadBalancerSubnet": self.load_balancer_subnet,
                    "kubernetes": {
                        "kubeconfig": target.kubeconfig,
                        "context": target.context,
                        "inCluster": target.in_cluster,
                        "namespace": target.namespace,
                        "systemNamespace": target.system_namespace,
                        "image": target.image,
                        "frontendServiceType": target.frontend_service_type,
                        "scoringUrl": target.scoring_url,
                    },
                },
            },
        }


__all__ = [
    "AksAttachConfiguration",
    "AksCompute",
    "AksProvisioningConfiguration",
    "SslConfiguration",
    "SystemService",
]
