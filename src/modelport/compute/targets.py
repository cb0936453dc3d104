"""The workspace's record of attached compute targets (Kubernetes clusters).

The local target is implicit and never stored. A record holds how to reach the cluster and what
attach installed there (its ``definition``), and the provisioning state Azure ML users know:
``Creating`` while attach runs, ``Succeeded``, ``Failed`` (with the error), ``Deleting``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelport.errors import ComputeTargetException
from modelport.names import RESERVED_COMPUTE_NAMES, check_compute_name
from modelport.workspace.tables import compute_targets

if TYPE_CHECKING:
    from modelport.workspace import Workspace

CREATING = "Creating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
DELETING = "Deleting"
RESERVED_NAMES = RESERVED_COMPUTE_NAMES  # the name the Azure ML facade imports


@dataclass(frozen=True)
class TargetRecord:
    """One attached compute target as stored in the workspace."""

    name: str
    compute_type: str
    definition: dict[str, Any]
    state: str
    error: dict[str, Any] | None
    created_time: datetime
    updated_time: datetime


def check_target_name(name: str) -> str:
    """Azure ML's compute name rule (:func:`modelport.names.check_compute_name`)."""
    return check_compute_name(name)


def not_found(name: str) -> ComputeTargetException:
    """Azure ML's message for a missing target, with the fix."""
    return ComputeTargetException(
        f"ComputeTargetNotFound: Compute Target with name {name} not found in provided workspace. Fix: "
        "attach a cluster first (`modelport computetarget attach kubernetes -n NAME --context CONTEXT`), "
        "or deploy to the local target (omit the target)."
    )


def _record(row: Any) -> TargetRecord:
    return TargetRecord(
        name=row.name,
        compute_type=row.compute_type,
        definition=dict(row.definition),
        state=row.state,
        error=row.error,
        created_time=row.created_time,
        updated_time=row.updated_time,
    )


def add_target(workspace: Workspace, name: str, compute_type: str, definition: dict[str, Any]) -> None:
    """Record a new target in state ``Creating``; refuse a name already taken."""
    check_target_name(name)
    now = datetime.now(UTC)
    try:
        with workspace.metadata_store.write() as conn:
            conn.execute(
                insert(compute_targets).values(
                    name=name,
                    compute_type=compute_type,
                    definition=definition,
                    state=CREATING,
                    error=None,
                    created_time=now,
                    updated_time=now,
                )
            )
    except IntegrityError as exc:
        raise ComputeTargetException(
            f"A compute target named {name!r} already exists in workspace {workspace.name!r}. Fix: choose "
            f"another name, or detach it first (`modelport computetarget detach -n {name}`)."
        ) from exc


def set_state(
    workspace: Workspace,
    name: str,
    state: str,
    error: dict[str, Any] | None = None,
    definition: dict[str, Any] | None = None,
) -> None:
    """Move a target to ``state`` (optionally replacing its definition)."""
    values: dict[str, Any] = {"state": state, "error": error, "updated_time": datetime.now(UTC)}
    if definition is not None:
        values["definition"] = definition
    with workspace.metadata_store.write() as conn:
        conn.execute(update(compute_targets).where(compute_targets.c.name == name).values(**values))


def get_target(workspace: Workspace, name: str) -> TargetRecord | None:
    """The stored target, or None."""
    with workspace.metadata_store.read() as conn:
        row = conn.execute(select(compute_targets).where(compute_targets.c.name == name)).first()
    return _record(row) if row is not None else None


def require_target(workspace: Workspace, name: str) -> TargetRecord:
    """The stored target, or Azure ML's ``ComputeTargetNotFound``."""
    record = get_target(workspace, name)
    if record is None:
        raise not_found(name)
    return record


def list_targets(workspace: Workspace) -> list[TargetRecord]:
    """Every attached target, by name."""
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(select(compute_targets).order_by(compute_targets.c.name)).all()
    return [_record(row) for row in rows]


def remove_target(workspace: Workspace, name: str) -> None:
    """Forget a target (after detach removed what it installed)."""
    with workspace.metadata_store.write() as conn:
        conn.execute(delete(compute_targets).where(compute_targets.c.name == name))
