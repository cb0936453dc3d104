"""The workspace's metadata store: engines for SQLite (WAL) and PostgreSQL, transactions, migrations.

Reads run in ordinary transactions. Writes go through :meth:`MetadataStore.write`, which
serialises writers: ``BEGIN IMMEDIATE`` on SQLite (so that two processes never both read a
counter and then both try to upgrade to a write lock), and row locks taken by the statements
themselves on PostgreSQL.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, Select, Table, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from modelport.errors import WorkspaceException
from modelport.workspace.tables import version_counters

if TYPE_CHECKING:
    import sqlite3

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest migration; a test checks it against alembic's own view of the scripts.
HEAD_REVISION = "0004"
SQLITE_BUSY_TIMEOUT_MS = 60_000
# PostgreSQL advisory lock keys (arbitrary, fixed): schema migration, blob garbage collection.
_MIGRATION_LOCK = 727274
_BLOB_LOCK = 727275

_engines: dict[str, Engine] = {}


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


_engines_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Return a SQLAlchemy URL: ``postgresql://`` and ``postgres://`` use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, json_serializer=_json_dumps, json_deserializer=orjson.loads)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # pysqlite's own transaction handling would defer BEGIN and hide lock upgrades; we
        # issue BEGIN ourselves in the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("modelport_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _engine_for(url: str) -> Engine:
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                parsed = make_url(url)
            except ArgumentError as exc:
                raise WorkspaceException(
                    f"Invalid metadata_url {url!r}: {exc}. Fix: use sqlite:////abs/path/metadata.db "
                    "or postgresql://user:password@host:5432/database."
                ) from exc
            if parsed.get_backend_name() == "sqlite":
                engine = _sqlite_engine(url)
            elif parsed.get_backend_name() == "postgresql":
                engine = create_engine(
                    url, pool_pre_ping=True, json_serializer=_json_dumps, json_deserializer=orjson.loads
                )
            else:
                raise WorkspaceException(
                    f"Unsupported metadata_url {url!r}: modelport stores metadata in SQLite or PostgreSQL. "
                    "Fix: use sqlite:///... or postgresql://..."
                )
            _engines[url] = engine
        return engine


def only_latest_versions(query: Select[Any], table: Table) -> Select[Any]:
    """Restrict ``query`` on a versioned table (``name``, ``version``) to the newest version per name."""
    newest = (
        select(table.c.name, func.max(table.c.version).label("version")).group_by(table.c.name).subquery()
    )
    return query.join(newest, (table.c.name == newest.c.name) & (table.c.version == newest.c.version))


class MetadataStore:
    """Connections, transactions and schema migrations for one workspace database."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _engine_for(self.url)
        self.dialect = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(modelport_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection inside a read transaction (rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Yield a connection inside a serialised write transaction; commit on success, else roll back."""
        with self._write_engine.begin() as conn:
            yield conn

    def next_version(self, conn: Connection, kind: str, name: str) -> int:
        """Hand out the next version (1, 2, 3, ...) of ``name``; call inside :meth:`write`.

        The counter row is incremented in the caller's transaction, so a registration that
        rolls back also gives its version back: versions stay gap-free and unique.
        """
        # The dialect's own INSERT (both have ON CONFLICT), loaded by name: a SQLite workspace
        # never imports the PostgreSQL dialect (CLI start-up, docs/performance.md).
        dialect_insert = importlib.import_module(f"sqlalchemy.dialects.{self.dialect}").insert
        stmt = dialect_insert(version_counters).values(kind=kind, name=name, last_version=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[version_counters.c.kind, version_counters.c.name],
            set_={"last_version": version_counters.c.last_version + 1},
        ).returning(version_counters.c.last_version)
        return int(conn.execute(stmt).scalar_one())

    def lock_blobs(self, conn: Connection) -> None:
        """Serialise blob garbage collection with registrations that reuse existing blobs.

        SQLite write transactions are already serialised; PostgreSQL takes a transaction-scoped
        advisory lock.
        """
        if self.dialect == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_BLOB_LOCK})"))

    def current_revision(self) -> str | None:
        """The schema revision of the database, or None for an empty database."""
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None

    def migrate(self) -> None:
        """Bring the schema to :data:`HEAD_REVISION` (no-op when it is already there)."""
        from alembic import command
        from alembic.config import Config

        with self.write() as conn:
            if self.dialect == "postgresql":
                # Two processes opening a fresh PostgreSQL workspace at once must not both create tables.
                conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ensure_schema(self) -> None:
        """Migrate if needed; refuse a database written by a newer modelport."""
        revision = self.current_revision()
        if revision == HEAD_REVISION:
            return
        if revision is not None and revision > HEAD_REVISION:
            raise WorkspaceException(
                f"The workspace database {self.safe_url} has schema revision {revision}, newer than this "
                f"modelport understands ({HEAD_REVISION}). Fix: upgrade modelport."
            )
        self.migrate()

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def is_empty(self) -> bool:
        """True when the database has no modelport schema yet."""
        return self.current_revision() is None
