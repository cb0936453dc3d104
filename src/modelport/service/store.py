"""Reading and writing services' desired state, observed status and events in the workspace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select, update

from modelport.errors import WebserviceException
from modelport.service.spec import ServiceSpec
from modelport.service.states import ServiceError
from modelport.workspace.blobs import discard_unreferenced_blobs
from modelport.workspace.filesets import StoredFile
from modelport.workspace.tables import (
    service_events,
    service_models,
    service_status,
    services,
    source_files,
    workspace_settings,
)

if TYPE_CHECKING:
    from modelport.service.machine import Machine
    from modelport.workspace import Workspace


@dataclass(frozen=True)
class ServiceRecord:
    """A service's desired state."""

    spec: ServiceSpec
    generation: int
    deleting: bool
    created_time: datetime
    updated_time: datetime
    # Local services: the machine whose agent runs them (None: deployed before machines were recorded).
    machine_id: str | None = None
    machine_name: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    """What the target last observed: the generation it saw, the state, the error and details."""

    observed_generation: int
    state: str
    error: ServiceError | None
    detail: dict[str, Any]
    updated_time: datetime


@dataclass(frozen=True)
class ServiceEvent:
    """One line of a service's history."""

    id: int
    time: datetime
    generation: int
    kind: str
    message: str
    data: dict[str, Any] | None


def not_found(name: str) -> WebserviceException:
    """Azure ML's not-found error (callers string-match ``WebserviceNotFound``)."""
    return WebserviceException(
        f"WebserviceNotFound: Webservice with name {name} not found in provided workspace", status_code=404
    )


def _record(row: Any) -> ServiceRecord:
    return ServiceRecord(
        spec=ServiceSpec.model_validate(row.spec),
        generation=row.generation,
        deleting=row.deleting,
        created_time=row.created_time,
        updated_time=row.updated_time,
        machine_id=row.machine_id,
        machine_name=row.machine_name,
    )


def write_service(
    workspace: Workspace,
    spec: ServiceSpec,
    files: Sequence[StoredFile],
    *,
    create: bool,
    overwrite: bool = False,
    message: str,
    machine: Machine | None = None,
) -> int:
    """Record a new generation of ``spec``; return the generation number.

    ``create``: a deploy (refused if the name exists unless ``overwrite``, and if it is another
    machine's local service); otherwise an update of an existing service. Keeps the previous
    generation's source files for a rolling update and collects older ones. ``machine``: the
    machine a deployed local service belongs to; an update keeps the service's.
    """
    now = datetime.now(UTC)
    obsolete: list[str] = []
    with workspace.metadata_store.write() as conn:
        workspace.metadata_store.lock_blobs(conn)
        row = conn.execute(
            select(services.c.generation, services.c.deleting, services.c.machine_id, services.c.machine_name)
            .where(services.c.name == spec.name)
            .with_for_update()
        ).first()
        if row is None and not create:
            raise not_found(spec.name)
        if row is not None and row.deleting:
            raise WebserviceException(
                f"Service {spec.name} is being deleted. Fix: wait for the deletion to finish, then deploy "
                "again."
            )
        if row is not None and create and not overwrite:
            raise WebserviceException(
                f"Service {spec.name} already exists. Fix: pass overwrite=True (CLI: --overwrite) to replace "
                "it, or use update().",
                status_code=409,
            )
        mine = machine.id if machine else None
        if row is not None and create and row.machine_id not in (None, mine):
            raise WebserviceException(
                f"Service {spec.name} is a local service of machine {row.machine_name} (machine id "
                f"{row.machine_id}); it cannot be replaced from here. Fix: delete it on that machine "
                "first, or deploy under another name."
            )
        generation = 1 if row is None else row.generation + 1
        values = {
            "compute_type": spec.compute_type,
            "compute_target": spec.compute_target,
            "updated_time": now,
            "spec": spec.model_dump(mode="json"),
            "generation": generation,
        }
        if create:
            values["machine_id"] = mine
            values["machine_name"] = machine.name if machine else None
        if row is None:
            conn.execute(insert(services).values(name=spec.name, created_time=now, deleting=False, **values))
        else:
            conn.execute(update(services).where(services.c.name == spec.name).values(**values))
        conn.execute(delete(service_models).where(service_models.c.service_name == spec.name))
        if spec.models:
            conn.execute(
                insert(service_models),
                [{"service_name": spec.name, "model_id": m.db_id} for m in spec.models],
            )
        old = source_files.c.generation < generation - 1
        obsolete = list(
            conn.execute(
                select(source_files.c.digest).where((source_files.c.service_name == spec.name) & old)
            ).scalars()
        )
        conn.execute(delete(source_files).where((source_files.c.service_name == spec.name) & old))
        if files:
            conn.execute(
                insert(source_files),
                [
                    {
                        "service_name": spec.name,
                        "generation": generation,
                        "path": f.path,
                        "digest": f.digest,
                        "size": f.size,
                        "mode": f.mode,
                    }
                    for f in files
                ],
            )
        _add_event(conn, spec.name, generation, "operation", message)
    discard_unreferenced_blobs(workspace, obsolete)
    return generation


def replace_spec(workspace: Workspace, spec: ServiceSpec, message: str) -> None:
    """Change settings that need no new replicas (keys, tags, properties) without a new generation."""
    with workspace.metadata_store.write() as conn:
        row = conn.execute(
            select(services.c.generation).where(services.c.name == spec.name).with_for_update()
        ).first()
        if row is None:
            raise not_found(spec.name)
        conn.execute(
            update(services)
            .where(services.c.name == spec.name)
            .values(spec=spec.model_dump(mode="json"), updated_time=datetime.now(UTC))
        )
        _add_event(conn, spec.name, row.generation, "operation", message)


def read_service(workspace: Workspace, name: str) -> ServiceRecord | None:
    """The desired state of ``name``, or ``None``."""
    with workspace.metadata_store.read() as conn:
        row = conn.execute(select(services).where(services.c.name == name)).first()
    return _record(row) if row is not None else None


def list_services(workspace: Workspace, compute_type: str | None = None) -> list[ServiceRecord]:
    """Every service's desired state, by name."""
    query = select(services).order_by(services.c.name)
    if compute_type is not None:
        query = query.where(services.c.compute_type == compute_type)
    with workspace.metadata_store.read() as conn:
        return [_record(row) for row in conn.execute(query)]


def claim_service(workspace: Workspace, name: str, machine_id: str, machine_name: str) -> bool:
    """Make a service that belongs to no machine yet this machine's; False if another claimed it first."""
    with workspace.metadata_store.write() as conn:
        claimed = conn.execute(
            update(services)
            .where((services.c.name == name) & services.c.machine_id.is_(None))
            .values(machine_id=machine_id, machine_name=machine_name)
        ).rowcount
    return bool(claimed)


def source_file_list(workspace: Workspace, name: str, generation: int) -> list[StoredFile]:
    """The stored source files of one generation of a service."""
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(
            select(source_files.c.path, source_files.c.digest, source_files.c.size, source_files.c.mode)
            .where((source_files.c.service_name == name) & (source_files.c.generation == generation))
            .order_by(source_files.c.path)
        ).all()
    return [StoredFile(*row) for row in rows]


def read_status(workspace: Workspace, name: str) -> ServiceStatus | None:
    """What the target last reported for ``name``."""
    with workspace.metadata_store.read() as conn:
        row = conn.execute(select(service_status).where(service_status.c.service_name == name)).first()
    if row is None:
        return None
    return ServiceStatus(
        row.observed_generation,
        row.state,
        ServiceError.from_dict(row.error),
        dict(row.detail),
        row.updated_time,
    )


def write_status(
    workspace: Workspace,
    name: str,
    *,
    observed_generation: int,
    state: str,
    error: ServiceError | None,
    detail: dict[str, Any],
) -> None:
    """Record the observed state (drivers call this); a service deleted meanwhile is ignored."""
    values = {
        "observed_generation": observed_generation,
        "state": state,
        "error": error.to_dict() if error else None,
        "detail": detail,
        "updated_time": datetime.now(UTC),
    }
    with workspace.metadata_store.write() as conn:
        if conn.execute(select(services.c.name).where(services.c.name == name)).first() is None:
            return
        changed = conn.execute(
            update(service_status).where(service_status.c.service_name == name).values(**values)
        ).rowcount
        if not changed:
            conn.execute(insert(service_status).values(service_name=name, **values))


def _add_event(
    conn: Connection, name: str, generation: int, kind: str, message: str, data: dict[str, Any] | None = None
) -> None:
    conn.execute(
        insert(service_events).values(
            service_name=name,
            time=datetime.now(UTC),
            generation=generation,
            kind=kind,
            message=message,
            data=data,
        )
    )


def add_event(
    workspace: Workspace,
    name: str,
    generation: int,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Append a line to the service's history (ignored when the service no longer exists)."""
    with workspace.metadata_store.write() as conn:
        if conn.execute(select(services.c.name).where(services.c.name == name)).first() is not None:
            _add_event(conn, name, generation, kind, message, data)


def read_events(
    workspace: Workspace, name: str, after_id: int = 0, kinds: Sequence[str] | None = None, limit: int = 1000
) -> list[ServiceEvent]:
    """Events of ``name`` after ``after_id``, oldest first."""
    query = select(service_events).where(
        (service_events.c.service_name == name) & (service_events.c.id > after_id)
    )
    if kinds:
        query = query.where(service_events.c.kind.in_(list(kinds)))
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(query.order_by(service_events.c.id).limit(limit)).all()
    return [ServiceEvent(r.id, r.time, r.generation, r.kind, r.message, r.data) for r in rows]


def mark_deleting(workspace: Workspace, name: str) -> bool:
    """Flag ``name`` for deletion (the driver stops it, then removes it); False if it does not exist."""
    with workspace.metadata_store.write() as conn:
        return bool(
            conn.execute(update(services).where(services.c.name == name).values(deleting=True)).rowcount
        )


def remove_service(workspace: Workspace, name: str) -> None:
    """Delete every row of ``name`` and the source blobs nothing else uses."""
    with workspace.metadata_store.write() as conn:
        digests = list(
            conn.execute(select(source_files.c.digest).where(source_files.c.service_name == name)).scalars()
        )
        for table, column in (
            (service_events, service_events.c.service_name),
            (service_status, service_status.c.service_name),
            (source_files, source_files.c.service_name),
            (service_models, service_models.c.service_name),
        ):
            conn.execute(delete(table).where(column == name))
        conn.execute(delete(services).where(services.c.name == name))
    discard_unreferenced_blobs(workspace, digests)


def get_setting(workspace: Workspace, key: str, default: Any = None) -> Any:
    """A workspace-wide setting."""
    with workspace.metadata_store.read() as conn:
        stored = conn.execute(
            select(workspace_settings.c.value).where(workspace_settings.c.key == key)
        ).scalar()
    return default if stored is None else stored["value"]


def set_setting(workspace: Workspace, key: str, value: Any) -> None:
    """Store a workspace-wide setting."""
    # Wrapped in an object: SQLite's JSON column affinity would turn a bare number into an integer
    # that no JSON decoder accepts back.
    stored = {"value": value}
    with workspace.metadata_store.write() as conn:
        if not conn.execute(
            update(workspace_settings).where(workspace_settings.c.key == key).values(value=stored)
        ).rowcount:
            conn.execute(insert(workspace_settings).values(key=key, value=stored))
