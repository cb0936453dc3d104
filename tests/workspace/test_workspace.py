"""Workspace creation, lookup by name and by config file, and the config-file search order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelport.errors import UserErrorException, WorkspaceException
from modelport.workspace import Workspace


def test_create_writes_relative_config_and_opens_by_name_and_config(tmp_path: Path) -> None:
    ws = Workspace.create("demo", path=tmp_path, tags={"team": "ml"}, location="lab")
    config = json.loads((tmp_path / ".modelport" / "config.json").read_text())
    assert config == {
        "workspace_name": "demo",
        "metadata_url": "sqlite:///metadata.db",
        "artifact_url": "artifacts",
    }
    assert (tmp_path / ".modelport" / "metadata.db").is_file()
    assert ws.tags == {"team": "ml"} and ws.location == "lab"
    assert Workspace.get("demo").name == "demo"
    assert Workspace.get("demo", path=tmp_path).created_time == ws.created_time
    assert "demo" in Workspace.list()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    ws = Workspace.create("wal", path=tmp_path)
    with ws.metadata_store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_from_config_searches_upward_from_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    Workspace.create("up", path=tmp_path)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Workspace.from_config().name == "up"
    assert Workspace.from_config(path=deep).name == "up"


def test_project_folder_can_move_because_config_paths_are_relative(tmp_path: Path) -> None:
    Workspace.create("mover", path=tmp_path / "before")
    os.rename(tmp_path / "before", tmp_path / "after")
    ws = Workspace.from_config(path=tmp_path / "after")
    assert ws.artifact_url == str((tmp_path / "after" / ".modelport" / "artifacts").resolve())


@pytest.mark.parametrize(
    "relative",
    [".azureml/config.json", "aml_config/config.json", "config.json"],
)
def test_azureml_config_files_open_the_local_workspace_of_that_name(
    tmp_path: Path, monkeypatch, relative: str
) -> None:
    Workspace.create("amlws", path=tmp_path / "store")
    project = tmp_path / "project"
    (project / relative).parent.mkdir(parents=True, exist_ok=True)
    (project / relative).write_text(
        json.dumps({"subscription_id": "s", "resource_group": "rg", "workspace_name": "amlws", "extra": 1})
    )
    (project / "src").mkdir()
    monkeypatch.chdir(project / "src")
    assert Workspace.from_config().name == "amlws"


def test_azureml_scope_form_is_understood(tmp_path: Path) -> None:
    Workspace.create("scoped", path=tmp_path / "store")
    scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/scoped"
    (tmp_path / "config.json").write_text(json.dumps({"Scope": scope}))
    assert Workspace.from_config(path=tmp_path / "config.json").name == "scoped"


def test_modelport_config_wins_over_azureml_config_in_the_same_tree(tmp_path: Path) -> None:
    Workspace.create("native", path=tmp_path)
    Workspace.create("other", path=tmp_path / "elsewhere")
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(
        json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "other"})
    )
    assert Workspace.from_config(path=tmp_path).name == "native"


def test_azureml_search_order_tries_each_file_through_all_parents_first(tmp_path: Path) -> None:
    Workspace.create("deep", path=tmp_path / "s1")
    Workspace.create("high", path=tmp_path / "s2")
    child = tmp_path / "child"
    (child / "aml_config").mkdir(parents=True)
    (child / "aml_config" / "config.json").write_text(
        json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "deep"})
    )
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(
        json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "high"})
    )
    # .azureml/config.json in a parent beats aml_config/config.json in the folder itself (AML order).
    assert Workspace.from_config(path=child).name == "high"


def test_missing_config_names_what_was_searched(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match=r"No workspace config found.*\.modelport/config\.json"):
        Workspace.from_config(path=tmp_path)


def test_corrupted_config_reports_file_and_position(tmp_path: Path) -> None:
    Workspace.create("broken", path=tmp_path)
    config = tmp_path / ".modelport" / "config.json"
    config.write_text('{"workspace_name": "broken",\n "metadata_url": ')
    with pytest.raises(UserErrorException, match=r"config\.json is not valid JSON \(line 2"):
        Workspace.from_config(path=tmp_path)


def test_azure_config_missing_keys_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"workspace_name": "x"}))
    with pytest.raises(UserErrorException, match="lacks subscription_id, resource_group"):
        Workspace.from_config(path=tmp_path)


def test_azure_config_for_unknown_workspace_says_how_to_create_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "ghost"})
    )
    with pytest.raises(WorkspaceException, match="modelport workspace create ghost"):
        Workspace.from_config(path=tmp_path)


def test_unknown_workspace_name_lists_known_ones(tmp_path: Path) -> None:
    Workspace.create("alpha", path=tmp_path)
    with pytest.raises(WorkspaceException, match=r"'beta' not found \(known workspaces: alpha\)"):
        Workspace.get("beta")


@pytest.mark.parametrize("name", ["a", "-lead", "has space", "x" * 33, "../up", "bad/slash"])
def test_invalid_workspace_names_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(WorkspaceException, match="Invalid workspace name"):
        Workspace.create(name, path=tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_create_twice_needs_exist_ok(tmp_path: Path) -> None:
    first = Workspace.create("twice", path=tmp_path)
    with pytest.raises(WorkspaceException, match="already exists"):
        Workspace.create("twice", path=tmp_path)
    again = Workspace.create("twice", path=tmp_path, exist_ok=True)
    assert again.created_time == first.created_time


def test_bad_metadata_url_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceException, match="Unsupported metadata_url"):
        Workspace.create("badurl", path=tmp_path / "w", metadata_url="mysql://nope/db")
    assert not (tmp_path / "w").exists()
    assert "badurl" not in Workspace.list()


def test_write_config_points_another_folder_at_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.create("shared", path=tmp_path / "store")
    written = ws.write_config(path=tmp_path / "notebooks")
    assert written == tmp_path / "notebooks" / ".modelport" / "config.json"
    assert Workspace.from_config(path=tmp_path / "notebooks").name == "shared"


def test_postgresql_workspace_is_opened_by_url_alone(workspace_factory, pg) -> None:
    ws = workspace_factory("postgresql-local", name="team")
    url = pg.url(ws.metadata_store.engine.url.database)
    # A team member needs only the database URL: the artifact location comes from the database.
    other = Workspace.get("team", metadata_url=url)
    assert other.artifact_url == ws.artifact_url
    with pytest.raises(WorkspaceException, match="holds workspace 'team', not 'wrong'"):
        Workspace.get("wrong", metadata_url=url)


def test_s3_workspace_keeps_secrets_out_of_the_database(workspace_factory) -> None:
    ws = workspace_factory("sqlite-s3", name="objstore")
    with ws.metadata_store.read() as conn:
        stored = conn.exec_driver_sql("SELECT storage_options FROM workspace_info").scalar()
    options = json.loads(stored) if isinstance(stored, str) else stored
    assert "secret" not in options and "key" not in options
    assert options["endpoint_url"].startswith("http://127.0.0.1:")
