"""``modelport environment register|list|show`` run as the real command against a real workspace."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from modelport.registry.environment import ContainerRegistry, Environment
from modelport.workspace import Workspace
from tests.clirun import modelport

CONDA = "name: x\ndependencies:\n  - python=3.10\n  - pip:\n    - azureml-defaults\n    - joblib\n"


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return modelport(*args, "--path", str(folder), rc=None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder holding a fresh SQLite workspace's config."""
    Workspace.create("ws", path=tmp_path)
    return tmp_path


def test_register_from_conda_file_then_list_and_show(folder: Path) -> None:
    conda = folder / "conda.yml"
    conda.write_text(CONDA)
    first = _cli(folder, "environment", "register", "-n", "sk", "--conda-file", str(conda), "-o", "json")
    assert first.returncode == 0, first.stderr
    registered = json.loads(first.stdout)
    assert (registered["name"], registered["version"], registered["python"]) == ("sk", "1", "3.10")
    assert "Environment 'sk' is version 1." in first.stderr
    again = _cli(folder, "environment", "register", "-n", "sk", "--conda-file", str(conda), "-o", "json")
    assert json.loads(again.stdout)["version"] == "1"

    listed = json.loads(_cli(folder, "environment", "list", "-o", "json").stdout)
    assert [(e["name"], e["version"]) for e in listed] == [("sk", "1")]
    shown = json.loads(_cli(folder, "environment", "show", "-n", "sk", "--version", "1", "-o", "json").stdout)
    assert shown["definition"]["python"]["condaDependencies"]["dependencies"][1] == {
        "pip": ["azureml-defaults", "joblib"]
    }
    assert shown["contentHash"] == Environment.from_dict(shown["definition"]).content_hash
    table = _cli(folder, "environment", "show", "-n", "sk")
    assert table.returncode == 0 and "contentHash" in table.stdout


def test_register_from_pip_requirements_and_from_a_saved_folder(folder: Path) -> None:
    req = folder / "requirements.txt"
    req.write_text("scikit-learn==1.4.2\n")
    pip = _cli(
        folder, "environment", "register", "-n", "pip-env", "--pip-requirements", str(req), "-o", "json"
    )
    assert json.loads(pip.stdout)["pipPackages"] == ["scikit-learn==1.4.2"]
    saved = Environment.from_docker_image(
        "image-env",
        "reg.example/py:3.11",
        container_registry=ContainerRegistry("reg.example", "bot", "s3cret"),
    )
    saved.save_to_directory(folder / "saved")
    from_dir = _cli(folder, "environment", "register", "--directory", str(folder / "saved"), "-o", "yaml")
    assert from_dir.returncode == 0, from_dir.stderr
    assert "name: image-env" in from_dir.stdout
    assert "python: user-managed (python)" in from_dir.stdout
    shown = _cli(folder, "environment", "show", "-n", "image-env", "-o", "json").stdout
    assert "s3cret" not in shown
    assert json.loads(shown)["definition"]["docker"]["baseImageRegistry"] == {
        "address": "reg.example",
        "username": "bot",
        "password": "***",
    }
    names = [e["name"] for e in json.loads(_cli(folder, "environment", "list", "-o", "json").stdout)]
    assert names == ["image-env", "pip-env"]


def test_errors_are_one_line_with_exit_code_1_and_usage_errors_2(folder: Path) -> None:
    missing = _cli(folder, "environment", "show", "-n", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "Error: Environment 'nope' (any version) is not registered in workspace 'ws'. "
        "Fix: `modelport environment list` shows the registered environments."
    ]
    no_file = _cli(folder, "environment", "register", "-n", "e", "--conda-file", str(folder / "absent.yml"))
    assert no_file.returncode == 1
    assert "Cannot read conda specification file" in no_file.stderr
    both = _cli(folder, "environment", "register", "-n", "e", "-c", "a.yml", "-r", "b.txt")
    assert both.returncode == 2
    assert "give only one of --conda-file, --pip-requirements" in both.stderr
    nothing = _cli(folder, "environment", "register", "-n", "e")
    assert nothing.returncode == 2
