"""Initial schema: workspace, version counters, models and their files, environments, services.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_info",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(128)),
        sa.Column("description", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("artifact_url", sa.String(2048), nullable=False),
        sa.Column("storage_options", sa.JSON, nullable=False),
    )
    op.create_table(
        "version_counters",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("framework", sa.String(64)),
        sa.Column("framework_version", sa.String(64)),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("root", sa.String(1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
    )
    op.create_table(
        "model_files",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.String(4096), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.Integer, nullable=False),
    )
    op.create_index("ix_model_files_digest", "model_files", ["digest"])
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_environments_name_version"),
    )
    op.create_table(
        "services",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("compute_type", sa.String(32), nullable=False),
        sa.Column("compute_target", sa.String(64)),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
    )
    op.create_table(
        "service_models",
        sa.Column(
            "service_name",
            sa.String(32),
            sa.ForeignKey("services.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="RESTRICT"), primary_key=True),
    )


def downgrade() -> None:
    for table in (
        "service_models",
        "services",
        "environments",
        "model_files",
        "models",
        "version_counters",
        "workspace_info",
    ):
        op.drop_table(table)
