"""What the CLI imports to start: light commands must not load the metadata store.

Start-up time itself is measured by bench/cli_startup.py (timing goals live in bench/); this
checks the behaviour that keeps it short, in a subprocess as a user runs the command.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Loaded on first use only: the metadata store (SQLAlchemy, Alembic) and what stands on it.
HEAVY = ("sqlalchemy", "alembic")
LAYERS = ("modelport.workspace", "modelport.registry", "modelport.config", "modelport.service")


def _imported_by(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from modelport.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["serve", "--help"]])
def test_light_commands_do_not_import_the_metadata_store(args: list[str]) -> None:
    modules = _imported_by(args)
    assert "modelport.cli.main" in modules
    assert not [name for name in modules if name.split(".")[0] in HEAVY or name.startswith(LAYERS)]
