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
    with workspace.metadata_store.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert workspace.metadata_store.current_revision() == HEAD_REVISION


def test_a_workspace_at_an_older_revision_is_migrated_with_its_data(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import select

    from modelport.workspace import Workspace
    from modelport.workspace.store import MetadataStore
    from modelport.workspace.tables import services

    ws = Workspace.create("old", path=tmp_path)
    with ws.metadata_store.write() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert MetadataStore(ws.metadata_store.url).current_revision() == "0001"
    with ws.metadata_store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO services (name, compute_type, created_time, updated_time, spec) "
            "VALUES ('kept', 'local', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '{}')"
        )
    reopened = Workspace.get("old", path=tmp_path)
    assert reopened.metadata_store.current_revision() == HEAD_REVISION
    with reopened.metadata_store.read() as conn:
        row = conn.execute(select(services.c.name, services.c.generation, services.c.deleting)).one()
    assert tuple(row) == ("kept", 1, False)
