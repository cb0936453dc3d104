"""Registered environments in a real workspace: versions per name, identical re-registration, get, list."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import func, select

from modelport.errors import EnvironmentException
from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import Environment, EnvironmentReference
from modelport.registry.environment_store import get_environment, list_environments
from modelport.workspace import Workspace
from modelport.workspace.tables import environments, version_counters


def _env(name: str = "sklearn-env", *pip: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["azureml-defaults", *pip], python_version="3.11"
    )
    return env


def _row_count(ws: Workspace, name: str) -> int:
    with ws.metadata_store.read() as conn:
        return int(conn.execute(select(func.count()).where(environments.c.name == name)).scalar_one())


def test_versions_are_strings_per_name_and_identical_definitions_reuse_the_latest(
    workspace: Workspace,
) -> None:
    first = _env().register(workspace)
    assert first.version == "1"
    again = _env().register(workspace)
    assert again.version == "1"
    assert _row_count(workspace, "sklearn-env") == 1
    second = _env("sklearn-env", "joblib").register(workspace)
    assert second.version == "2"
    # Back to the first definition: it differs from the latest (2), so it becomes 3, as in Azure ML.
    assert _env().register(workspace).version == "3"
    assert _env("other-env").register(workspace).version == "1"


def test_environment_variables_make_a_new_version_but_not_a_new_build(workspace: Workspace) -> None:
    base = _env().register(workspace)
    changed = _env()
    changed.environment_variables = {"LOG_LEVEL": "debug"}
    registered = changed.register(workspace)
    assert registered.version == "2"
    assert registered.content_hash == base.content_hash


def test_get_returns_latest_or_the_asked_version(workspace: Workspace) -> None:
    _env().register(workspace)
    _env("sklearn-env", "joblib").register(workspace)
    latest = Environment.get(workspace, "sklearn-env")
    assert latest.version == "2"
    assert "joblib" in latest.python.conda_dependencies.pip_packages  # type: ignore[union-attr]
    first = Environment.get(workspace, "sklearn-env", version="1")
    assert first.to_dict() == {**_env().to_dict(), "version": "1"}
    assert Environment.get(workspace, "sklearn-env", version=1).version == "1"
    assert EnvironmentReference("sklearn-env", "1").resolve(workspace) == first


def test_get_explains_what_is_missing(workspace: Workspace) -> None:
    _env().register(workspace)
    with pytest.raises(EnvironmentException, match=r"'sklearn-env' \(version 9\) is not registered"):
        Environment.get(workspace, "sklearn-env", version="9")
    with pytest.raises(EnvironmentException, match=r"'nope' \(any version\) is not registered"):
        Environment.get(workspace, "nope")
    with pytest.raises(EnvironmentException, match="Invalid environment version 'two'"):
        Environment.get(workspace, "sklearn-env", version="two")
    with pytest.raises(EnvironmentException, match="labels are not supported"):
        Environment.get(workspace, "sklearn-env", label="prod")
    with pytest.raises(EnvironmentException, match="either version or label"):
        Environment.get(workspace, "sklearn-env", version="1", label="prod")


def test_list_gives_the_latest_of_each_name(workspace: Workspace) -> None:
    assert Environment.list(workspace) == {}
    _env("b-env").register(workspace)
    _env("a-env").register(workspace)
    _env("a-env", "joblib").register(workspace)
    listed = Environment.list(workspace)
    assert list(listed) == ["a-env", "b-env"]
    assert (listed["a-env"].version, listed["b-env"].version) == ("2", "1")
    assert [r.environment.version for r in list_environments(workspace, name="a-env")] == ["2", "1"]


def test_registry_records_hash_author_and_time(workspace: Workspace) -> None:
    env = _env()
    record = get_environment(workspace, env.register(workspace).name)
    assert record.content_hash == env.content_hash
    assert record.created_time.utcoffset() is not None
    assert "@" in record.created_by


def test_reserved_names_are_refused_and_leave_nothing_behind(workspace: Workspace) -> None:
    with pytest.raises(EnvironmentException, match="reserved"):
        _env("AzureML-Minimal").register(workspace)
    assert _row_count(workspace, "AzureML-Minimal") == 0
    with workspace.metadata_store.read() as conn:
        assert (
            conn.execute(select(version_counters).where(version_counters.c.name == "AzureML-Minimal")).first()
            is None
        )


def test_reregistering_an_identical_definition_consumes_no_version(workspace: Workspace) -> None:
    _env().register(workspace)
    _env().register(workspace)
    assert _env("sklearn-env", "joblib").register(workspace).version == "2"


def _register_in_process(config_path: str) -> str:
    ws = Workspace.from_config(path=config_path)
    return _env().register(ws).version or ""


def test_concurrent_identical_registrations_make_one_version(workspace: Workspace) -> None:
    config = workspace.store_location.config_path
    assert config is not None
    folder = str(Path(config).parent.parent)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_register_in_process, [folder] * 8)
    assert versions == ["1"] * 8
    assert _row_count(workspace, "sklearn-env") == 1
