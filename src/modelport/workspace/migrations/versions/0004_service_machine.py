"""The machine a local service belongs to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for services deployed before: the first agent that runs such a local service claims it.
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("machine_id", sa.String(64)))
        batch.add_column(sa.Column("machine_name", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("machine_name")
        batch.drop_column("machine_id")
