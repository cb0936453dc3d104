"""Fixtures for the configuration tests: writing config files and project folders into tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WriteFile = Callable[[str, "str | dict[str, Any]"], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Write text (or a dict, as JSON) to ``tmp_path/<name>`` and return the path."""

    def write(name: str, content: str | dict[str, Any]) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        return path

    return write


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the CWD) with ``src/score.py``, a conda file and extra Dockerfile steps."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    (src / "conda.yml").write_text("dependencies:\n  - python=3.11\n")
    (src / "steps.txt").write_text("RUN echo hello\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path
