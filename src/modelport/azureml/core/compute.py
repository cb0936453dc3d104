"""``azureml.core.compute``: ``ComputeTarget``, ``AksCompute`` and ``KubernetesCompute``.

A thin layer over modelport's Kubernetes target (:mod:`modelport.compute.kubernetes.cluster`)
and the workspace's records of targets (:mod:`modelport.compute.targets`):

* ``ComputeTarget.attach(ws, name, AksCompute.attach_configuration(resource_group, cluster_name))``
  attaches the kubeconfig context named ``cluster_name`` (kubeconfig: ``$KUBECONFIG``, then
  ``~/.kube/config``); ``KubernetesCompute.attach_configuration(kubeconfig=..., context=...,
  namespace=...)`` names everything modelport can set. ``ComputeTarget.create`` installs into the
  current (or a named) context and records ``agent_count``/``vm_size``: no nodes are provisioned.
* Azure ML ran attach and create as asynchronous operations whose failures surfaced in
  ``wait_for_completion``. modelport's attach is synchronous and all or nothing, so ``attach`` and
  ``create`` return once it finished; a failure leaves nothing behind, and the returned object
  carries it (``provisioning_state == "Failed"``) until ``wait_for_completion`` raises Azure ML's
  message. An invalid, reserved or taken name is refused at once, as Azure ML did.
* ``delete()`` of a created target detaches it and warns that the cluster itself stays (modelport
  never deletes clusters); of an attached one it refuses, pointing to ``detach()``.

Every Kubernetes target reads back as ``AksCompute`` (type ``AKS``), the type Azure ML v1 notebooks
check for; ``KubernetesCompute`` is an ``AksCompute`` whose attach configuration takes modelport's
options by name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from modelport.azureml._compat import warn_ignored
from modelport.compute import targets
from modelport.compute.kubernetes.cluster import COMPUTE_TYPE
from modelport.errors import ComputeTargetException, ModelportError, UserErrorException

if TYPE_CHECKING:
    from modelport.compute.kubernetes.cluster import KubernetesTarget

RESERVED_NAMES = targets.RESERVED_NAMES
# KubernetesTarget fields that attach/create set themselves; the rest are the user's options.
_SET_BY_MODELPORT = frozenset({"cluster_purpose", "created", "created_namespaces", "provisioning"})
# Azure-only arguments whose value here is Azure ML's default, so that giving it is not "ignoring" it.
_IGNORED_DEFAULTS = {"load_balancer_type": "PublicIp", "overwrite_existing_domain": False}
SUCCEEDED = targets.SUCCEEDED
FAILED = targets.FAILED
DELETING = targets.DELETING


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

    def _ssl_arguments(self) -> dict[str, Any]:
        # TLS does not exist yet: every SSL argument is ignored (and named in the warning).
        return {
            "ssl_cname": self.ssl_cname,
            "ssl_cert_pem_file": self.ssl_cert_pem_file,
            "ssl_key_pem_file": self.ssl_key_pem_file,
            "leaf_domain_label": self.leaf_domain_label,
            "overwrite_existing_domain": self.overwrite_existing_domain,
        }


class _KubernetesOptions:
    """modelport's options of the Kubernetes target a configuration object attaches or creates.

    Names are those of :class:`~modelport.compute.kubernetes.cluster.KubernetesTarget`
    (``kubeconfig``, ``context``, ``in_cluster``, ``namespace``, ``system_namespace``, ``image``,
    ``frontend_service_type``, ``scoring_url``, ``store_endpoint_url``, ``progress_deadline_s``,
    ``pod_annotations``); they are validated when the configuration is built.
    """

    cluster_purpose: str | None = None
    kubernetes_options: dict[str, Any]

    def _set_kubernetes_options(self, options: dict[str, Any], taken: dict[str, str] | None = None) -> None:
        """Keep and validate ``options``; ``taken`` maps options this class sets to the argument that does."""
        from modelport.compute.kubernetes.cluster import KubernetesTarget

        for name, argument in (taken or {}).items():
            if name in options:
                raise UserErrorException(
                    f"{type(self).__name__}: {name} is given by {argument} here; pass only that."
                )
        allowed = set(KubernetesTarget.model_fields) - _SET_BY_MODELPORT - set(taken or {})
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UserErrorException(
                f"{type(self).__name__}: unknown option(s) {', '.join(unknown)}. modelport's options are "
                f"{', '.join(sorted(allowed))}."
            )
        self.kubernetes_options = {key: value for key, value in options.items() if value is not None}
        # Validate now, as Azure ML validated its configuration objects when they were built; the
        # cluster purpose is checked when the operation runs (Azure ML's service did so too).
        self._build_target(with_purpose=False)

    def _target_options(self) -> dict[str, Any]:
        """The options of this configuration, including those it holds under Azure ML's names."""
        return dict(self.kubernetes_options)

    def _build_target(self, with_purpose: bool = True) -> KubernetesTarget:
        from modelport.compute.kubernetes.cluster import target_from_options

        purpose = {"cluster_purpose": self.cluster_purpose} if with_purpose else {}
        return target_from_options(**self._target_options(), **purpose)

    def _ignored_arguments(self) -> dict[str, Any]:
        """Azure-only arguments given to this configuration (named in one warning, then ignored)."""
        return {}


class AksProvisioningConfiguration(_SslMixin, _KubernetesOptions):
    """``AksCompute.provisioning_configuration(...)``: validated at construction as Azure ML did.

    ``agent_count`` and ``vm_size`` are recorded (no nodes are provisioned); ``location``, the VNET
    arguments, SSL and an internal load balancer are ignored with one warning at ``create``.
    modelport's options of the target (``context``, ``kubeconfig``, ``namespace``,
    ``system_namespace``, ``image``, ...; see :class:`_KubernetesOptions`) are keyword arguments.
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


class AksAttachConfiguration(_SslMixin, _KubernetesOptions):
    """``AksCompute.attach_configuration(...)``: validated at construction as Azure ML did.

    ``cluster_name`` (or the last segment of ``resource_id``) names the kubeconfig context to
    attach, as ``az aks get-credentials`` names it; ``resource_group`` only completes Azure's
    name. modelport's other options (``kubeconfig``, ``namespace``, ``system_namespace``,
    ``image``, ...; see :class:`_KubernetesOptions`) are keyword arguments.
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

    def _target_options(self) -> dict[str, Any]:
        return {**self.kubernetes_options, "context": self.cluster_name}

    def _ignored_arguments(self) -> dict[str, Any]:
        return {
            **self._ssl_arguments(),
            "load_balancer_type": self.load_balancer_type,
            "load_balancer_subnet": self.load_balancer_subnet,
        }


class KubernetesAttachConfiguration(_KubernetesOptions):
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
        scoring_url: str | None = None,
        store_endpoint_url: str | None = None,
        in_cluster: bool | None = None,
        progress_deadline_s: int | None = None,
        pod_annotations: dict[str, str] | None = None,
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
                "scoring_url": scoring_url,
                "store_endpoint_url": store_endpoint_url,
                "in_cluster": in_cluster,
                "progress_deadline_s": progress_deadline_s,
                "pod_annotations": pod_annotations,
            }
        )

    def _ignored_arguments(self) -> dict[str, Any]:
        return {"identity_type": self.identity_type, "identity_ids": self.identity_ids}


@dataclass
class _Operation:
    """The outcome of the last attach, create or detach (they run synchronously here)."""

    state: str
    lines: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None


def _error(exc: ModelportError) -> dict[str, Any]:
    """Azure ML's operation error shape for a failed attach or create."""
    status = exc.status_code or HTTPStatus.BAD_REQUEST
    try:
        code = HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        code = "Error"
    return {"code": code, "statusCode": int(status), "message": exc.message}


def _check_new_name(workspace: Any, name: str) -> None:
    """Refuse at once what Azure ML refused at once: reserved, invalid and taken names."""
    if name in RESERVED_NAMES:
        raise UserErrorException(f"Please specify a different target name. {name} is a reserved name.")
    targets.check_target_name(name)
    if targets.get_target(workspace, name) is not None:
        raise ComputeTargetException(
            f"A compute target named {name!r} already exists in workspace {workspace.name!r}. Fix: use it "
            f"(ComputeTarget(ws, {name!r})), choose another name, or detach() it first."
        )


class ComputeTarget:
    """Azure ML's ``ComputeTarget``: ``ComputeTarget(ws, name)`` returns the attached target, typed.

    Attributes are Azure ML's (``name``, ``type``, ``provisioning_state``, ``is_attached``,
    ``cluster_purpose``, ...) plus ``kubernetes``: the target's modelport definition.
    """

    type: str | None = None

    def __new__(cls, workspace: Any, name: str) -> Any:
        record = targets.require_target(workspace, name)
        if record.compute_type != COMPUTE_TYPE:
            raise ComputeTargetException(
                f"Compute target {name!r} is a {record.compute_type} target, which this facade cannot open."
            )
        # ComputeTarget(ws, name) types it as Azure ML did; AksCompute/KubernetesCompute keep their class.
        kind = AksCompute if cls is ComputeTarget else cls
        return kind._from_record(workspace, record)

    def __init__(self, workspace: Any, name: str) -> None:
        # __new__ loaded the target; Python calls __init__ with the same arguments afterwards.
        pass

    @classmethod
    def _from_record(cls, workspace: Any, record: targets.TargetRecord) -> Any:
        compute = object.__new__(cls)
        compute._operation = None
        compute._load(workspace, record)
        return compute

    def _load(self, workspace: Any, record: targets.TargetRecord) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(workspace={self.workspace!r}, name={self.name}, "
            f"type={self.type}, provisioning_state={self.provisioning_state})"
        )

    # ------------------------------------------------------------------------ create / attach
    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> Any:
        """Create target ``name`` in the configured (default: current) kubeconfig context.

        Returns once done: the object's ``wait_for_completion`` reports the outcome.
        """
        if not isinstance(provisioning_configuration, AksProvisioningConfiguration):
            raise ComputeTargetException(
                "ComputeTarget.create takes AksCompute.provisioning_configuration(...); modelport creates "
                f"Kubernetes targets only (got {type(provisioning_configuration).__name__})."
            )
        _check_new_name(workspace, name)
        warn_ignored(
            "ComputeTarget.create()", provisioning_configuration._ignored_arguments(), _IGNORED_DEFAULTS
        )
        return AksCompute._run(workspace, name, provisioning_configuration)

    @staticmethod
    def attach(workspace: Any, name: str, attach_configuration: Any) -> Any:
        """Attach the cluster of ``attach_configuration`` as target ``name``.

        Returns once done: the object's ``wait_for_completion`` reports the outcome.
        """
        kinds = {AksAttachConfiguration: AksCompute, KubernetesAttachConfiguration: KubernetesCompute}
        kind = kinds.get(type(attach_configuration))
        if kind is None:
            raise ComputeTargetException(
                "ComputeTarget.attach takes AksCompute.attach_configuration(...) or "
                "KubernetesCompute.attach_configuration(...); modelport attaches Kubernetes clusters only "
                f"(got {type(attach_configuration).__name__})."
            )
        _check_new_name(workspace, name)
        warn_ignored("ComputeTarget.attach()", attach_configuration._ignored_arguments(), _IGNORED_DEFAULTS)
        return kind._run(workspace, name, attach_configuration)

    @classmethod
    def _run(cls, workspace: Any, name: str, config: _KubernetesOptions) -> Any:
        """Attach (or create, for a provisioning configuration) and return the typed object."""
        from modelport.compute.kubernetes import cluster

        lines: list[str] = []
        target: KubernetesTarget | None = None
        try:
            target = config._build_target()
            if isinstance(config, AksProvisioningConfiguration):
                provisioning = config._provisioning()
                if provisioning:
                    asked = ", ".join(f"{key}={value}" for key, value in provisioning.items())
                    lines.append(f"Recorded {asked}: modelport provisions no nodes (the context's are used)")
                record = cluster.create(workspace, name, target, provisioning, progress=lines.append)
            else:
                record = cluster.attach(workspace, name, target, progress=lines.append)
        except (ComputeTargetException, UserErrorException) as exc:
            # attach removed everything it did: only this object remembers the failure.
            now = datetime.now(UTC)
            definition = target.model_dump(mode="json") if target is not None else {}
            error = _error(exc)
            record = targets.TargetRecord(name, COMPUTE_TYPE, definition, FAILED, error, now, now)
            compute = cls._from_record(workspace, record)
            compute._operation = _Operation(FAILED, lines, error)
            return compute
        compute = cls._from_record(workspace, record)
        compute._operation = _Operation(SUCCEEDED, lines)
        return compute

    @staticmethod
    def list(workspace: Any) -> list[Any]:
        """Every attached target of the workspace, typed (the local target is implicit, not listed)."""
        return [
            AksCompute._from_record(workspace, record)
            for record in targets.list_targets(workspace)
            if record.compute_type == COMPUTE_TYPE
        ]

    # ------------------------------------------------------------------------ state
    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        """Report the last attach, create or detach as Azure ML's polling did.

        Prints ``Provisioning operation finished, operation "<state>"``; a failed operation raises
        Azure ML's message with its status code and error. Without an operation (an object from
        ``ComputeTarget(ws, name)``): ``Long running operation information not known``.
        """
        if self._operation is None:
            self.refresh_state()
            raise ComputeTargetException(
                "Long running operation information not known, unable to poll. Current state is "
                f"{self.provisioning_state}"
            )
        operation = self._operation
        if show_output:
            for line in operation.lines:
                print(line)
        print(f'Provisioning operation finished, operation "{operation.state}"')
        if not is_delete_operation:
            self.refresh_state()
        if operation.state != SUCCEEDED:
            error = operation.error or {}
            raise ComputeTargetException(
                "Compute object provisioning polling reached non-successful terminal state, current "
                f"provisioning state: {self.provisioning_state}\nProvisioning operation error:\n"
                f"StatusCode: {error.get('statusCode')}\nMessage: {error.get('message')}",
                status_code=error.get("statusCode"),
            )

    def refresh_state(self) -> None:
        """Re-read the target from the workspace (``ComputeTargetNotFound`` once it is gone)."""
        record = targets.get_target(self.workspace, self.name)
        if record is None:
            if self._operation is not None and self._operation.state == FAILED:
                return  # a failed attach leaves nothing: the object keeps what it knows
            raise targets.not_found(self.name)
        self._load(self.workspace, record)

    def get_status(self) -> str:
        """Refresh and return ``provisioning_state`` (``Creating``, ``Succeeded``, ``Deleting``, ...)."""
        self.refresh_state()
        return self.provisioning_state

    # ------------------------------------------------------------------------ detach / delete
    def detach(self) -> None:
        """Remove what attach installed and forget the target; the cluster keeps running.

        Refused at once while services run on the target. Afterwards ``provisioning_state`` is
        ``Deleting`` and ``wait_for_completion(is_delete_operation=True)`` reports the outcome.
        """
        from modelport.compute.kubernetes import cluster

        lines: list[str] = []
        notes = cluster.detach(self.workspace, self.name, progress=lines.append)
        self.provisioning_state = DELETING
        self._operation = _Operation(SUCCEEDED, lines + notes)

    def delete(self) -> None:
        """Created target: detach it, warning that the cluster itself stays. Attached: refused.

        Azure ML deleted the AKS cluster it had created; modelport never deletes a cluster.
        """
        if self.is_attached:
            raise ComputeTargetException(
                f"Compute target {self.name!r} was attached, not created: delete() is refused for attached "
                f"clusters, as in Azure ML. Fix: {self.name}.detach() removes it from the workspace (the "
                "cluster keeps running)."
            )
        warnings.warn(
            f"ComputeTarget.delete(): {self.name} is detached (what modelport installed is removed); the "
            "cluster itself is not deleted: modelport never deletes clusters.",
            UserWarning,
            stacklevel=2,
        )
        self.detach()

    def serialize(self) -> dict[str, Any]:
        """The target as a dict (Azure ML's shape); subclasses say what they know."""
        raise NotImplementedError


class AksCompute(ComputeTarget):
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
    def attach(workspace: Any, name: str, attach_configuration: Any) -> Any:  # type: ignore[override]
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
        from modelport.compute.kubernetes.cluster import KubernetesTarget

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
        from modelport.compute.kubernetes.cluster import connect

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


class KubernetesCompute(AksCompute):
    """An ``AksCompute`` attached with modelport's options by name (the issue's Python API)."""

    attach_configuration = staticmethod(KubernetesAttachConfiguration)  # type: ignore[assignment]


__all__ = [
    "AksAttachConfiguration",
    "AksCompute",
    "AksProvisioningConfiguration",
    "ComputeTarget",
    "KubernetesAttachConfiguration",
    "KubernetesCompute",
    "SslConfiguration",
    "SystemService",
]
