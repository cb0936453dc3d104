"""Service lifecycle: generations, deletion flag, source files, observed status, events, settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("deleting", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "source_files",
        sa.Column(
            "service_name",
            sa.String(32),
            sa.ForeignKey("services.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("path", sa.String(4096), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.Integer, nullable=False),
    )
    op.create_index("ix_source_files_digest", "source_files", ["digest"])
    op.create_table(
        "service_status",
        sa.Column(
            "service_name",
            sa.String(32),
            sa.ForeignKey("services.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("observed_generation", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("error", sa.JSON),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("updated_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "service_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "service_name",
            sa.String(32),
            sa.ForeignKey("services.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON),
    )
    op.create_index("ix_service_events_service", "service_events", ["service_name", "id"])
    op.create_table(
        "workspace_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workspace_settings")
    op.drop_index("ix_service_events_service", "service_events")
    op.drop_table("service_events")
    op.drop_table("service_status")
    op.drop_index("ix_source_files_digest", "source_files")
    op.drop_table("source_files")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("deleting")
        batch.drop_column("generation")
