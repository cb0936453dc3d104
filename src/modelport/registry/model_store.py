"""Registered model versions in the workspace's metadata store: the rows and the SQL.

A version is a row of ``models`` plus one row of ``model_files`` per stored file. Rows are read
as :data:`MODEL_COLUMNS` (no file lists: listing 10 000 models stays fast); ``Model`` unpacks
them by position. Versions come from the workspace's gap-free counter (kind ``"model"``), taken
in the transaction that inserts the rows, so a registration that fails gives its number back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from modelport.errors import ModelNotFoundException, WebserviceException
from modelport.registry import tags as tag_rules
from modelport.workspace.filesets import LocalFile, StoredFile, restore_collected
from modelport.workspace.store import only_latest_versions
from modelport.workspace.tables import model_files, models, service_models
from modelport.workspace.workspace import current_user

if TYPE_CHECKING:
    from modelport.workspace import Workspace

VERSION_KIND = "model"
# Columns of `models` read for a version, in the table's order.
MODEL_COLUMNS = tuple(models.c)
Filters = Sequence[tuple[str, str | None]]
# ``change(tags, properties) -> (tags, properties)``, run on the stored values in one transaction.
TagChange = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def not_found(name: str, version: int | str) -> ModelNotFoundException:
    """Azure ML's error for a model version that is not registered (``version`` may be ``"latest"``)."""
    return ModelNotFoundException(
        f"ModelNotFound: Model with name {name}, version {version} not found in provided workspace"
    )


def _matches(row: Any, tag_filters: Filters, property_filters: Filters) -> bool:
    if tag_filters and not tag_rules.matches_filters(row.tags, tag_filters):
        return False
    return not property_filters or tag_rules.matches_filters(row.properties, property_filters)


def find_model(
    workspace: Workspace,
    name: str,
    version: int | None,
    framework: str | None,
    tag_filters: Filters,
    property_filters: Filters,
) -> Row[Any] | None:
    """The newest version of ``name`` that matches every filter (``version``: only that one)."""
    query = select(*MODEL_COLUMNS).where(models.c.name == name)
    if version is not None:
        query = query.where(models.c.version == int(version))
    if framework is not None:
        query = query.where(models.c.framework == framework)
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(query.order_by(models.c.version.desc())).all()
    return next((row for row in rows if _matches(row, tag_filters, property_filters)), None)


def list_models(
    workspace: Workspace,
    name: str | None,
    framework: str | None,
    latest: bool,
    tag_filters: Filters,
    property_filters: Filters,
) -> list[Row[Any]]:
    """Versions that match every filter, by name and newest first (``latest``: one per name)."""
    query = select(*MODEL_COLUMNS)
    if name is not None:
        query = query.where(models.c.name == name)
    if framework is not None:
        query = query.where(models.c.framework == framework)
    # Tags and properties are filtered here, not in SQL: with them, the newest version per name
    # is the newest that matches, which the query cannot know.
    if latest and not tag_filters and not property_filters:
        query = only_latest_versions(query, models)
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(query.order_by(models.c.name, models.c.version.desc())).all()
    if not tag_filters and not property_filters:
        return list(rows)  # with ``latest``, the query kept one version per name
    result: list[Row[Any]] = []
    seen: set[str] = set()
    for row in rows:
        if not _matches(row, tag_filters, property_filters):
            continue
        if latest:
            if row.name in seen:
                continue
            seen.add(row.name)
        result.append(row)
    return result


def insert_model(
    workspace: Workspace,
    name: str,
    files: Sequence[LocalFile],
    stored: Sequence[StoredFile],
    created: list[str],
    **columns: Any,
) -> Row[Any]:
    """Record the next version of ``name`` with its stored files, in one transaction.

    ``columns`` are the other ``models`` columns the caller knows; the version, creation time and
    creator are added here. Blobs a concurrent delete collected since the upload are stored
    again first (their digests are added to ``created``).
    """
    with workspace.metadata_store.write() as conn:
        workspace.metadata_store.lock_blobs(conn)
        restore_collected(workspace, files, stored, created)
        version = workspace.metadata_store.next_version(conn, VERSION_KIND, name)
        model_id = conn.execute(
            insert(models)
            .values(
                name=name,
                version=version,
                **columns,
                created_time=datetime.now(UTC),
                created_by=current_user(),
            )
            .returning(models.c.id)
        ).scalar_one()
        conn.execute(
            insert(model_files),
            [
                {"model_id": model_id, "path": f.path, "digest": f.digest, "size": f.size, "mode": f.mode}
                for f in stored
            ],
        )
        return conn.execute(select(*MODEL_COLUMNS).where(models.c.id == model_id)).one()


def file_rows(workspace: Workspace, model_id: int) -> Sequence[Any]:
    """The version's files as stored: rows of (path, digest, size, mode), by path."""
    with workspace.metadata_store.read() as conn:
        return conn.execute(
            select(model_files.c.path, model_files.c.digest, model_files.c.size, model_files.c.mode)
            .where(model_files.c.model_id == model_id)
            .order_by(model_files.c.path)
        ).all()


def _read(conn: Connection, model_id: int) -> Row[Any] | None:
    return conn.execute(select(*MODEL_COLUMNS).where(models.c.id == model_id)).first()


def change_tags_properties(workspace: Workspace, model_id: int, change: TagChange) -> Row[Any] | None:
    """Run ``change`` on the stored tags and properties atomically; the new row (None: no such version)."""
    with workspace.metadata_store.write() as conn:
        row = conn.execute(
            select(models.c.tags, models.c.properties).where(models.c.id == model_id).with_for_update()
        ).first()
        if row is None:
            return None
        tags, properties = change(dict(row.tags or {}), dict(row.properties or {}))
        conn.execute(update(models).where(models.c.id == model_id).values(tags=tags, properties=properties))
        return _read(conn, model_id)


def update_model(workspace: Workspace, model_id: int, values: dict[str, Any]) -> Row[Any] | None:
    """Set ``values`` (columns of ``models``) on the version; the new row (None: no such version)."""
    with workspace.metadata_store.write() as conn:
        result = conn.execute(update(models).where(models.c.id == model_id).values(**values))
        if result.rowcount == 0:
            return None
        return _read(conn, model_id)


def _service_names(conn: Connection, model_id: int) -> list[str]:
    return list(
        conn.execute(
            select(service_models.c.service_name)
            .where(service_models.c.model_id == model_id)
            .order_by(service_models.c.service_name)
        ).scalars()
    )


def services_using(workspace: Workspace, model_id: int) -> list[str]:
    """Names of the services deployed with the version."""
    with workspace.metadata_store.read() as conn:
        return _service_names(conn, model_id)


def delete_model(workspace: Workspace, model_id: int, shown_id: str) -> list[str] | None:
    """Delete the version's rows; return the digests its files referenced (None: no such version).

    Refused, deleting nothing, while a service uses the version; the error names the services
    and the model as ``shown_id``.
    """
    with workspace.metadata_store.write() as conn:
        users = _service_names(conn, model_id)
        if users:
            raise WebserviceException(
                f"Model {shown_id} cannot be deleted: it is used by service(s) {', '.join(users)}. "
                "Fix: delete those services or update them to another model version first.",
                status_code=412,
            )
        digests = list(
            conn.execute(select(model_files.c.digest).where(model_files.c.model_id == model_id)).scalars()
        )
        conn.execute(delete(model_files).where(model_files.c.model_id == model_id))
        result = conn.execute(delete(models).where(models.c.id == model_id))
        return digests if result.rowcount else None
