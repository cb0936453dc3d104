"""The `modelport workspace` and `modelport model` commands, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.clirun import modelport


def run(*args: str, cwd: Path, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``cwd`` and return the finished process."""
    return modelport(*args, cwd=cwd, rc=check_rc, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    run("workspace", "create", "cliws", "--tag", "team=ml", "-o", "json", cwd=tmp_path)
    (tmp_path / "model.pkl").write_bytes(b"model bytes")
    return tmp_path


def test_workspace_create_show_list(project: Path) -> None:
    shown = json.loads(run("workspace", "show", "-o", "json", cwd=project / ".modelport").stdout)
    assert shown["name"] == "cliws" and shown["tags"] == {"team": "ml"}
    listed = yaml.safe_load(run("workspace", "list", "-o", "yaml", cwd=project).stdout)
    assert listed[0]["name"] == "cliws"
    again = run("workspace", "create", "cliws", cwd=project, check_rc=1)
    assert again.stderr.startswith("Error: A workspace ('cliws') already exists")
    assert "Traceback" not in again.stderr


def test_model_lifecycle_through_the_cli(project: Path) -> None:
    registered = json.loads(
        run(
            "model",
            "register",
            "-n",
            "iris",
            "-p",
            "model.pkl",
            "--tag",
            "stage=dev",
            "--property",
            "acc=0.9",
            "-d",
            "first",
            "--model-framework",
            "ScikitLearn",
            "-t",
            "meta.json",
            "-o",
            "json",
            cwd=project,
        ).stdout
    )
    assert registered["id"] == "iris:1" and registered["tags"] == {"stage": "dev"}
    assert json.loads((project / "meta.json").read_text())["modelId"] == "iris:1"
    run("model", "register", "-n", "iris", "-p", "model.pkl", cwd=project)

    listed = json.loads(run("model", "list", "-o", "json", cwd=project).stdout)
    assert [m["id"] for m in listed] == ["iris:2", "iris:1"]
    latest = json.loads(run("model", "list", "--latest", "--tag", "stage", "-o", "json", cwd=project).stdout)
    assert [m["id"] for m in latest] == ["iris:1"]
    table = run("model", "list", cwd=project).stdout
    assert "iris" in table and "stage=dev" in table

    shown = json.loads(run("model", "show", "-n", "iris", "-o", "json", cwd=project).stdout)
    assert shown["version"] == 2

    updated = json.loads(
        run(
            "model",
            "update",
            "-i",
            "iris:1",
            "--add-tag",
            "owner=me",
            "--remove-tag",
            "stage",
            "--add-property",
            "rows=150",
            "-d",
            "changed",
            "-o",
            "json",
            cwd=project,
        ).stdout
    )
    assert updated["tags"] == {"owner": "me"} and updated["properties"] == {"acc": "0.9", "rows": "150"}
    assert updated["description"] == "changed"
    refused = run("model", "update", "-i", "iris:1", "--add-property", "acc=1.0", cwd=project, check_rc=1)
    assert "properties are immutable" in refused.stderr

    out = run("model", "download", "-i", "iris:1", "-t", "dl", cwd=project).stdout.strip()
    assert Path(out).read_bytes() == b"model bytes"
    clash = run("model", "download", "-i", "iris:1", "-t", "dl", cwd=project, check_rc=1)
    assert "set exist_ok to True" in clash.stderr
    run("model", "download", "-i", "iris:1", "-t", "dl", "--overwrite", cwd=project)

    run("model", "delete", "-i", "iris:2", cwd=project)
    gone = run("model", "show", "-i", "iris:2", cwd=project, check_rc=1)
    assert (
        gone.stderr.strip()
        == "Error: ModelNotFound: Model with name iris, version 2 not found in provided workspace"
    )


def test_errors_are_one_line_with_exit_1_and_usage_errors_exit_2(project: Path) -> None:
    missing = run("model", "register", "-n", "m", "-p", "nope.pkl", cwd=project, check_rc=1)
    assert missing.stderr.count("\n") == 1 and "model_path 'nope.pkl' does not exist" in missing.stderr
    bad_name = run("model", "register", "-n", "bad/name", "-p", "model.pkl", cwd=project, check_rc=1)
    assert "Invalid model name 'bad/name'" in bad_name.stderr
    debug = run("--debug", "model", "register", "-n", "m", "-p", "nope.pkl", cwd=project, check_rc=1)
    assert "Traceback" in debug.stderr
    usage = run("model", "register", "-n", "m", cwd=project, check_rc=2)
    assert "--model-path" in usage.stderr
    bad_pair = run(
        "model", "register", "-n", "m", "-p", "model.pkl", "--tag", "novalue", cwd=project, check_rc=2
    )
    assert "must be KEY=VALUE" in bad_pair.stderr
    nowhere = run("model", "list", cwd=project.parent / "..", check_rc=1)
    assert "No workspace config found" in nowhere.stderr


def test_large_model_registration_draws_a_progress_bar(project: Path) -> None:
    big = project / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    proc = run("model", "register", "-n", "big", "-p", "big.bin", "-o", "json", cwd=project)
    # Not a terminal here, so the progress comes as plain lines ending at 100 %.
    assert "Registering model big: 100% (21.0/21.0 MB)" in proc.stderr
    assert json.loads(proc.stdout)["sizeBytes"] == 20 * 1024 * 1024


def test_workspace_create_takes_the_name_as_n_like_every_other_command(tmp_path: Path) -> None:
    created = json.loads(run("workspace", "create", "-n", "dashn", "-o", "json", cwd=tmp_path).stdout)
    assert created["name"] == "dashn"
    shown = json.loads(run("workspace", "show", "-o", "json", cwd=tmp_path).stdout)
    assert shown["name"] == "dashn"
    other = tmp_path / "other"
    other.mkdir()
    created = json.loads(run("workspace", "create", "--name", "long", "-o", "json", cwd=other).stdout)
    assert created["name"] == "long"
    # The same name twice is one name; two different names, or none, are usage errors.
    same = tmp_path / "same"
    same.mkdir()
    run("workspace", "create", "twice", "-n", "twice", cwd=same)
    both = run("workspace", "create", "one", "-n", "two", cwd=same, check_rc=2)
    assert "two names given ('one' and -n 'two')" in both.stderr
    missing = run("workspace", "create", cwd=same, check_rc=2)
    assert "the workspace needs a name" in missing.stderr
