"""The Alembic migrations create exactly the schema of ``tables.py``, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelport.workspace.store import HEAD_REVISION, MIGRATIONS_DIR
from modelport.workspace.tables import metadata


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_table_definitions(workspace) -> None:
    with workspace._store.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert workspace._store.current_revision() == HEAD_REVISION
