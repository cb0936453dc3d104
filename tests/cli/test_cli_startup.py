"""What the CLI imports to start, and that the help it draws quickly is typer's own.

Start-up time itself is measured by bench/cli_startup.py (timing goals live in bench/); this
checks the behaviour that keeps it short, in a subprocess as a user runs the command.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from modelport.cli import groups
from modelport.cli.helppage import DEFERRED_MODULES
from tests.clirun import modelport

# Loaded on first use only: the metadata store (SQLAlchemy, Alembic) and what stands on it.
HEAVY = ("sqlalchemy", "alembic")
LAYERS = ("modelport.workspace", "modelport.registry", "modelport.config", "modelport.service")
# What a help page never draws (DEFERRED_MODULES), and what only some commands need.
NOT_FOR_HELP = (*DEFERRED_MODULES, "markdown_it", "pygments")
NOT_FOR_LIST = ("yaml", "rich.progress", "alembic", *NOT_FOR_HELP)
# A fixed width and colours on, so that two runs draw byte-comparable pages.
PAGE_ENV = {"COLUMNS": "100", "FORCE_COLOR": "1", "TERM": "xterm-256color"}


def _run(args: list[str], before: str = "", cwd: Path | None = None) -> tuple[str, set[str]]:
    """stdout of ``main(args)`` in a fresh interpreter (after running ``before``), and its modules."""
    code = (
        "import sys\n"
        f"{before}\n"
        "from modelport.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print('\\x00' + '\\n'.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **PAGE_ENV},
    )
    assert result.returncode == 0, result.stderr
    page, _, modules = result.stdout.rpartition("\x00")
    return page, set(modules.split())


def _under(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("args", [["--version"], ["--help"], [], ["serve", "--help"]])
def test_light_commands_do_not_import_the_metadata_store(args: list[str]) -> None:
    _, modules = _run(args)
    assert "modelport.cli.main" in modules
    assert not _under(modules, HEAVY + LAYERS)
    assert not _under(modules, NOT_FOR_HELP)


@pytest.mark.parametrize("args", [["--help"], [], ["model", "--help"]])
def test_help_page_is_typers_own(args: list[str]) -> None:
    """The page drawn with rich's markdown and traceback deferred is the one typer draws normally.

    The groups' pages only: a command's own page (``model list --help``) and usage errors load
    typer's renderer as typer does.
    """
    page, modules = _run(args)
    assert not _under(modules, NOT_FOR_HELP)
    plain_page, plain_modules = _run(args, before="import typer.rich_utils")
    assert "rich.markdown" in plain_modules  # the comparison really is with the plain import
    assert "Usage: " in page and "\x1b[" in page  # drawn by rich, in colour
    assert page == plain_page


def test_deferred_names_load_the_real_classes() -> None:
    """After the light load, the real modules import as usual and typer's names still work."""
    code = (
        "import sys\n"
        "from modelport.cli.helppage import DEFERRED_MODULES, load_rich_help\n"
        "load_rich_help()\n"
        "assert not [m for m in DEFERRED_MODULES if m in sys.modules]\n"
        "from typer import rich_utils\n"
        "import rich.markdown, rich.traceback\n"
        "assert type(rich_utils.Markdown('# title')) is rich.markdown.Markdown\n"
        "assert rich_utils.Traceback.from_exception == rich.traceback.Traceback.from_exception\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_model_list_imports_only_what_it_draws(tmp_path: Path) -> None:
    modelport("workspace", "create", "startup", cwd=tmp_path, timeout=120)
    page, modules = _run(["model", "list"], cwd=tmp_path)
    assert "name" in page and "version" in page  # the (empty) table was drawn
    assert not _under(modules, NOT_FOR_LIST)


def test_static_command_table_matches_the_commands() -> None:
    """``--help`` lists groups from groups.GROUPS without importing them; the table must not drift."""
    cli_dir = Path(groups.__file__).parent
    with_groups = set()
    for path in cli_dir.glob("*.py"):
        module = importlib.import_module(f"modelport.cli.{path.stem}")
        if isinstance(getattr(module, "app", None), typer.Typer) and path.stem != "main":
            with_groups.add(module.__name__)
    assert with_groups == {group.module for group in groups.GROUPS.values()}
    for name, group in groups.GROUPS.items():
        app = groups.group(name)
        assert app.info.help == group.help, name
        assert app.registered_commands or app.registered_groups, f"group {name} has no commands"
    for name in groups.COMMANDS:
        assert callable(groups.command(name)), name
