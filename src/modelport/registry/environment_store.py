"""Registered environments in the workspace's metadata store: register, get, list.

A row holds the ``to_dict()`` form of one version (``definition``, with ``version`` left null:
the row's ``version`` column is the truth), its content hash and who registered it when.
Versions come from the workspace's gap-free counter (kind ``"environment"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from modelport.errors import EnvironmentException
from modelport.names import check_environment_name
from modelport.registry.environment import Environment
from modelport.workspace import current_user
from modelport.workspace.store import only_latest_versions
from modelport.workspace.tables import environments

if TYPE_CHECKING:
    from modelport.workspace import Workspace

VERSION_KIND = "environment"
# Azure ML reserves these prefixes for its curated environments [DOC]; registering one here would
# shadow the name users expect to mean the curated environment.
RESERVED_PREFIXES = ("Microsoft", "AzureML")


@dataclass(frozen=True)
class RegisteredEnvironment:
    """One registered version: the environment (``version`` set) and the registry's metadata."""

    environment: Environment
    content_hash: str
    created_time: datetime
    created_by: str


class _SameAsLatest(Exception):
    """Raised inside the write transaction to roll back the version counter when nothing changed."""

    def __init__(self, row: Any) -> None:
        super().__init__()
        self.row = row


def _record(row: Any) -> RegisteredEnvironment:
    env = Environment.from_dict(row.definition)
    env.version = str(row.version)
    return RegisteredEnvironment(
        environment=env,
        content_hash=row.content_hash,
        created_time=row.created_time,
        created_by=row.created_by,
    )


def _stored_definition(env: Environment) -> dict[str, Any]:
    definition = env.to_dict()
    definition["version"] = None
    return definition


def register_environment(workspace: Workspace, env: Environment) -> RegisteredEnvironment:
    """Store ``env`` as the next version of its name, or return the latest version if it is identical."""
    name = check_environment_name(env.name)
    if name.startswith(RESERVED_PREFIXES):
        raise EnvironmentException(
            f"Environment name {name!r} is reserved: names starting with 'Microsoft' or 'AzureML' belong "
            "to Azure ML's curated environments. Fix: choose another name, e.g. 'my-sklearn-env'."
        )
    definition = _stored_definition(env)
    content_hash = env.content_hash
    store = workspace.metadata_store
    try:
        with store.write() as conn:
            # Taking the version first locks the name's counter row (PostgreSQL) or the database
            # (SQLite), so two processes registering the same definition cannot both see "changed".
            version = store.next_version(conn, VERSION_KIND, name)
            latest = conn.execute(
                select(environments)
                .where(environments.c.name == name)
                .order_by(environments.c.version.desc())
            ).first()
            if latest is not None and latest.definition == definition:
                raise _SameAsLatest(latest)
            conn.execute(
                insert(environments).values(
                    name=name,
                    version=version,
                    definition=definition,
                    content_hash=content_hash,
                    created_time=datetime.now(UTC),
                    created_by=current_user(),
                )
            )
            row = conn.execute(
                select(environments).where(environments.c.name == name, environments.c.version == version)
            ).one()
    except _SameAsLatest as same:
        return _record(same.row)
    return _record(row)


def _parse_version(version: str | int | None) -> int | None:
    if version is None:
        return None
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise EnvironmentException(
            f"Invalid environment version {version!r}: versions are 1, 2, 3, ... Fix: pass e.g. version='2'."
        )
    return int(text)


def get_environment(
    workspace: Workspace, name: str, version: str | int | None = None
) -> RegisteredEnvironment:
    """The registered version ``version`` of ``name`` (default: the latest)."""
    number = _parse_version(version)
    query = select(environments).where(environments.c.name == name)
    if number is not None:
        query = query.where(environments.c.version == number)
    with workspace.metadata_store.read() as conn:
        row = conn.execute(query.order_by(environments.c.version.desc())).first()
    if row is None:
        shown = f"version {number}" if number is not None else "any version"
        raise EnvironmentException(
            f"Environment {name!r} ({shown}) is not registered in workspace {workspace.name!r}. "
            "Fix: `modelport environment list` shows the registered environments."
        )
    return _record(row)


def list_environments(workspace: Workspace, name: str | None = None) -> list[RegisteredEnvironment]:
    """The latest version of every environment by name; with ``name``, all its versions, newest first."""
    query = select(environments)
    if name is not None:
        query = query.where(environments.c.name == name).order_by(environments.c.version.desc())
    else:
        query = only_latest_versions(query, environments).order_by(environments.c.name)
    with workspace.metadata_store.read() as conn:
        rows = conn.execute(query).all()
    return [_record(row) for row in rows]
