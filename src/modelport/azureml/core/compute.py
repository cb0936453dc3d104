"""``azureml.core.compute``: ``ComputeTarget`` and ``AksCompute``.

The configuration objects validate as Azure ML's did (§1.5 of the spec). Creating, attaching and
looking up Kubernetes targets lands with the Kubernetes target; until then those calls raise a
``ComputeTargetException`` saying so, and services deploy to the local target (pass no
``deployment_target``).
"""

from __future__ import annotations

from typing import Any

from modelport.errors import ComputeTargetException, UserErrorException

RESERVED_NAMES = ("amlcompute", "local", "containerinstance")
_LANDS_LATER = (
    "Kubernetes compute targets land with modelport's Kubernetes target, which does not exist yet. "
    "Fix: deploy without deployment_target (and without compute_target_name): services then run on "
    "the local target."
)


def _not_found(name: str) -> ComputeTargetException:
    return ComputeTargetException(
        f"ComputeTargetNotFound: Compute Target with name {name} not found in provided workspace. "
        + _LANDS_LATER
    )


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


class AksProvisioningConfiguration(_SslMixin):
    """``AksCompute.provisioning_configuration(...)``: validated at construction as Azure ML did."""

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

    def validate_configuration(self) -> None:
        """Raise ``ComputeTargetException`` for the first rule that fails (Azure ML's order)."""
        if self.agent_count is not None and (not isinstance(self.agent_count, int) or self.agent_count <= 0):
            raise ComputeTargetException("Invalid configuration, agent count must be a positive integer.")
        self._check_ssl()
        vnet = (
            self.vnet_resourcegroup_name,
            self.vnet_name,
            self.subnet_name,
            self.service_cidr,
            self.dns_service_ip,
            self.docker_bridge_cidr,
        )
        if any(vnet) and not all(vnet):
            raise ComputeTargetException(
                "Invalid configuration, not all virtual net information provided. To use a custom VNET "
                "configuration, provide vnet_resourcegroup_name, vnet_name, subnet_name, service_cidr, "
                "dns_service_ip and docker_bridge_cidr."
            )


class AksAttachConfiguration(_SslMixin):
    """``AksCompute.attach_configuration(...)``: validated at construction as Azure ML did.

    ``cluster_name`` will name the kubeconfig context to attach once the Kubernetes target exists.
    """

    def __init__(
        self,
        resource_group: str | None = None,
        cluster_name: str | None = None,
        resource_id: str | None = None,
        cluster_purpose: str | None = None,
        load_balancer_type: str | None = None,
        load_balancer_subnet: str | None = None,
    ) -> None:
        self.resource_group = resource_group
        self.cluster_name = cluster_name
        self.resource_id = resource_id
        self.cluster_purpose = cluster_purpose
        self.load_balancer_type = load_balancer_type
        self.load_balancer_subnet = load_balancer_subnet
        self.validate_configuration()

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


class ComputeTarget:
    """Azure ML's ``ComputeTarget``; no Kubernetes target can be attached yet (see the module doc)."""

    def __init__(self, workspace: Any, name: str) -> None:
        raise _not_found(name)

    @staticmethod
    def _refuse(name: str) -> ComputeTargetException:
        if name in RESERVED_NAMES:
            raise UserErrorException(f"Compute target name {name!r} is reserved; choose another name.")
        return ComputeTargetException(f"Cannot create or attach compute target {name!r}: {_LANDS_LATER}")

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> Any:
        """Provisioning a cluster lands with the Kubernetes target: raises ``ComputeTargetException``."""
        raise ComputeTarget._refuse(name)

    @staticmethod
    def attach(workspace: Any, name: str, attach_configuration: Any) -> Any:
        """Attaching a cluster lands with the Kubernetes target: raises ``ComputeTargetException``."""
        raise ComputeTarget._refuse(name)

    @staticmethod
    def list(workspace: Any) -> list[Any]:
        """Attached targets: none yet (the local target needs no attaching)."""
        return []


class AksCompute(ComputeTarget):
    """Azure ML's ``AksCompute``: its configuration objects work; attach/create wait for Kubernetes."""

    class ClusterPurpose:
        """Values of ``cluster_purpose``."""

        FAST_PROD = "FastProd"
        DEV_TEST = "DevTest"

    # The configuration classes take exactly these factories' arguments and validate them.
    provisioning_configuration = staticmethod(AksProvisioningConfiguration)
    attach_configuration = staticmethod(AksAttachConfiguration)


__all__ = [
    "AksAttachConfiguration",
    "AksCompute",
    "AksProvisioningConfiguration",
    "ComputeTarget",
    "SslConfiguration",
]
