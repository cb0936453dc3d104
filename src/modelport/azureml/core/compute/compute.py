"""``azureml.core.compute.compute``: ``ComputeTarget`` and the base of the target configurations.

A thin layer over modelport's Kubernetes target (its definition in
:mod:`modelport.compute.kubernetes.target`, attach and detach in
:mod:`modelport.compute.kubernetes.cluster`) and the workspace's records of targets
(:mod:`modelport.compute.targets`):

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

import builtins
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from modelport.azureml._compat import warn_ignored
from modelport.compute import targets
from modelport.compute.kubernetes.target import COMPUTE_TYPE
from modelport.errors import ComputeTargetException, ModelportError, UserErrorException

if TYPE_CHECKING:
    from modelport.compute.kubernetes.target import KubernetesTarget

RESERVED_NAMES = targets.RESERVED_NAMES
# KubernetesTarget fields that attach/create set themselves; the rest are the user's options.
_SET_BY_MODELPORT = frozenset({"cluster_purpose", "created", "created_namespaces", "provisioning"})
# Azure-only arguments whose value here is Azure ML's default, so that giving it is not "ignoring" it.
_IGNORED_DEFAULTS = {"load_balancer_type": "PublicIp", "overwrite_existing_domain": False}
SUCCEEDED = targets.SUCCEEDED
FAILED = targets.FAILED
DELETING = targets.DELETING


class TargetConfiguration:
    """Base of the configurations ``ComputeTarget.create``/``attach`` take: modelport's options of the
    Kubernetes target the configuration attaches or creates, and what it does with them.

    Names are those of :class:`~modelport.compute.kubernetes.target.KubernetesTarget`
    (``kubeconfig``, ``context``, ``in_cluster``, ``namespace``, ``system_namespace``, ``image``,
    ``frontend_service_type``, ``frontend_replicas``, ``scoring_url``, ``store_endpoint_url``,
    ``progress_deadline_s``, ``pod_annotations``); they are validated when the configuration is built.
    """

    # The ComputeTarget call that takes this configuration: "attach", or "create" (provisioning).
    operation: ClassVar[str] = "attach"
    cluster_purpose: str | None = None
    kubernetes_options: dict[str, Any]

    def _compute_class(self) -> type[ComputeTarget]:
        """The ``ComputeTarget`` subclass the target reads back as after this operation."""
        raise NotImplementedError

    def _apply(
        self, workspace: Any, name: str, target: KubernetesTarget, progress: Callable[[str], None]
    ) -> targets.TargetRecord:
        """Attach ``target`` as ``name``, all or nothing (a provisioning configuration creates it)."""
        from modelport.compute.kubernetes import cluster

        return cluster.attach(workspace, name, target, progress=progress)

    def _set_kubernetes_options(self, options: dict[str, Any], taken: dict[str, str] | None = None) -> None:
        """Keep and validate ``options``; ``taken`` maps options this class sets to the argument that does."""
        from modelport.compute.kubernetes.target import KubernetesTarget

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
        from modelport.compute.kubernetes.target import target_from_options

        purpose = {"cluster_purpose": self.cluster_purpose} if with_purpose else {}
        return target_from_options(**self._target_options(), **purpose)

    def _ignored_arguments(self) -> dict[str, Any]:
        """Azure-only arguments given to this configuration (named in one warning, then ignored)."""
        return {}


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


def _run(workspace: Any, name: str, config: Any, operation: str, takes: str) -> Any:
    """``ComputeTarget.<operation>`` (``create`` or ``attach``), which ``takes`` such configurations:
    check the call, do it, and return the typed object, which reports the outcome."""
    if not isinstance(config, TargetConfiguration) or config.operation != operation:
        raise ComputeTargetException(
            f"ComputeTarget.{operation} takes {takes} (got {type(config).__name__})."
        )
    _check_new_name(workspace, name)
    warn_ignored(f"ComputeTarget.{operation}()", config._ignored_arguments(), _IGNORED_DEFAULTS, depth=2)
    lines: list[str] = []
    target: KubernetesTarget | None = None
    kind = config._compute_class()
    try:
        target = config._build_target()
        record = config._apply(workspace, name, target, lines.append)
    except (ComputeTargetException, UserErrorException) as exc:
        # attach removed everything it did: only this object remembers the failure.
        now = datetime.now(UTC)
        definition = target.model_dump(mode="json") if target is not None else {}
        error = _error(exc)
        record = targets.TargetRecord(name, COMPUTE_TYPE, definition, FAILED, error, now, now)
        compute = kind._from_record(workspace, record)
        compute._operation = _Operation(FAILED, lines, error)
        return compute
    compute = kind._from_record(workspace, record)
    compute._operation = _Operation(SUCCEEDED, lines)
    return compute


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
    # Set by each subclass's _load from the target's record.
    workspace: Any
    name: str
    provisioning_state: str
    is_attached: bool
    _operation: _Operation | None  # the last attach, create or detach of this object
    # modelport's compute type of a target record -> the class it reads back as; each subclass that
    # reads records back registers itself (``class AksCompute(ComputeTarget, reads="kubernetes")``).
    # (``builtins.type``: the class attribute ``type`` above shadows the built-in in this body.)
    _READS: ClassVar[dict[str, builtins.type[ComputeTarget]]] = {}

    def __init_subclass__(cls, reads: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if reads is not None:
            ComputeTarget._READS[reads] = cls

    def __new__(cls, workspace: Any, name: str) -> Any:
        record = targets.require_target(workspace, name)
        kind = ComputeTarget._READS.get(record.compute_type)
        if kind is None:
            raise ComputeTargetException(
                f"Compute target {name!r} is a {record.compute_type} target, which this facade cannot open."
            )
        # ComputeTarget(ws, name) types it as Azure ML did; AksCompute/KubernetesCompute keep their class.
        return (kind if cls is ComputeTarget else cls)._from_record(workspace, record)

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
        return _run(
            workspace,
            name,
            provisioning_configuration,
            "create",
            "AksCompute.provisioning_configuration(...); modelport creates Kubernetes targets only",
        )

    @staticmethod
    def attach(workspace: Any, name: str, attach_configuration: Any) -> Any:
        """Attach the cluster of ``attach_configuration`` as target ``name``.

        Returns once done: the object's ``wait_for_completion`` reports the outcome.
        """
        return _run(
            workspace,
            name,
            attach_configuration,
            "attach",
            "AksCompute.attach_configuration(...) or KubernetesCompute.attach_configuration(...); "
            "modelport attaches Kubernetes clusters only",
        )

    @staticmethod
    def list(workspace: Any) -> list[Any]:
        """Every attached target of the workspace, typed (the local target is implicit, not listed)."""
        return [
            ComputeTarget._READS[record.compute_type]._from_record(workspace, record)
            for record in targets.list_targets(workspace)
            if record.compute_type in ComputeTarget._READS
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
