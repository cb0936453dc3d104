"""The workspace's metadata tables (SQLAlchemy Core), the single source of the schema.

Alembic migrations in ``migrations/versions`` create and evolve exactly these tables; a test
compares the migrated database with this metadata so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import false

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC (SQLite would drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; modelport stores UTC timestamps")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


workspace_info = Table(
    "workspace_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_time", UTCDateTime(), nullable=False),
    Column("location", String(128)),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    # Where the artifacts live, so that a team member needs only the database URL; secrets are
    # never stored here (only ``${VAR}`` references to the environment).
    Column("artifact_url", String(2048), nullable=False),
    Column("storage_options", JSON, nullable=False),
)

# One row per (kind, name): the last version handed out. Incrementing it inside the same
# transaction that inserts the versioned row is what makes versions gap-free and unique under
# concurrent registration (the row lock on PostgreSQL, the database write lock on SQLite).
version_counters = Table(
    "version_counters",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("last_version", Integer, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("framework", String(64)),
    Column("framework_version", String(64)),
    Column("created_time", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # "file" or "folder"
    Column("root", String(1024), nullable=False),  # the stored top-level entry (file or folder name)
    Column("size_bytes", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("content_digest", String(64), nullable=False),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
)

model_files = Table(
    "model_files",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(4096), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mode", Integer, nullable=False),
    Index("ix_model_files_digest", "digest"),
)

environments = Table(
    "environments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_time", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("name", "version", name="uq_environments_name_version"),
)

# Desired state of deployed services: the spec (models, code, environment, effective deployment
# configuration, keys) and its generation, which every deploy or update increments. Target
# drivers reconcile towards it and report in ``service_status``.
services = Table(
    "services",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("compute_type", String(32), nullable=False),
    Column("compute_target", String(64)),
    Column("created_time", UTCDateTime(), nullable=False),
    Column("updated_time", UTCDateTime(), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False, server_default="1"),
    Column("deleting", Boolean, nullable=False, server_default=false()),
    # Local services only: the machine whose agent runs them (service/machine.py).
    Column("machine_id", String(64)),
    Column("machine_name", String(255)),
)

service_models = Table(
    "service_models",
    metadata,
    Column("service_name", String(32), ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="RESTRICT"), primary_key=True),
)

# The service's source directory (or entry script), content-addressed like model files.
source_files = Table(
    "source_files",
    metadata,
    Column("service_name", String(32), ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("path", String(4096), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mode", Integer, nullable=False),
    Index("ix_source_files_digest", "digest"),
)

# Observed state, written by the target driver.
service_status = Table(
    "service_status",
    metadata,
    Column("service_name", String(32), ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
    Column("observed_generation", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("error", JSON),
    Column("detail", JSON, nullable=False),
    Column("updated_time", UTCDateTime(), nullable=False),
)

# What happened to a service, in order: deployment progress (streamed by wait_for_deployment),
# replica starts and crashes, autoscaling decisions with their inputs.
service_events = Table(
    "service_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_name", String(32), ForeignKey("services.name", ondelete="CASCADE"), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Index("ix_service_events_service", "service_name", "id"),
)

# Workspace-wide settings (the local front end's port, the default compute target, ...).
workspace_settings = Table(
    "workspace_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)

# Attached compute targets (Kubernetes clusters); the local target is implicit and not stored.
compute_targets = Table(
    "compute_targets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("compute_type", String(32), nullable=False),
    Column("definition", JSON, nullable=False),  # how to reach the cluster and what was installed
    Column("state", String(32), nullable=False),  # Creating | Succeeded | Failed | Deleting
    Column("error", JSON),
    Column("created_time", UTCDateTime(), nullable=False),
    Column("updated_time", UTCDateTime(), nullable=False),
)
