"""Entry point of the ``modelport`` command: global options, sub-command groups, exit codes.

Exit codes: 0 success, 1 a failure (the error printed as one line naming the field and the fix),
2 a usage error (unknown option, missing argument). ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys

import typer

from modelport import __version__
from modelport.cli.helppage import HelpGroup
from modelport.errors import ModelportError

app = typer.Typer(
    name="modelport",
    help="Deploy registered machine-learning models as web services, locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=HelpGroup,
)

_state: dict[str, bool] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    _state["debug"] = debug


def _register(args: list[str]) -> None:
    # Only the command asked for is imported. Without one (--version, --help, a typo), the groups
    # are listed by name and help alone: no command module is imported (docs/performance.md).
    from modelport.cli import groups

    wanted = next((a for a in args if not a.startswith("-")), None)
    if wanted in groups.GROUPS:
        app.add_typer(groups.group(wanted), name=wanted)
        return
    for name in [wanted] if wanted in groups.COMMANDS else list(groups.COMMANDS):
        app.command(name, context_settings=groups.COMMAND_SETTINGS)(groups.command(name))
    if wanted not in groups.COMMANDS:
        for name in groups.GROUPS:
            app.add_typer(groups.new_group(name), name=name)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and exit code 1 (usage errors: 2)."""
    args = sys.argv[1:] if argv is None else argv
    _register(args)
    _state["debug"] = "--debug" in args
    try:
        # Standalone mode: typer turns usage errors into exit code 2 and success into 0.
        app(args, prog_name="modelport")
    except (ModelportError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if _state["debug"]:
            raise
        message = exc.message if isinstance(exc, ModelportError) else str(exc)
        typer.echo(f"Error: {message}", err=True)
        sys.exit(1)
