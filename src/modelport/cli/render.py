"""Printing of read-command results: ``--output table|json|yaml`` in one place."""

from __future__ import annotations

import enum
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


class OutputFormat(enum.StrEnum):
    """The formats every read command offers."""

    table = "table"
    json = "json"
    yaml = "yaml"


OUTPUT_OPTION = typer.Option(OutputFormat.table, "--output", "-o", help="Output format.")

_stdout = Console(soft_wrap=True)
_stderr = Console(stderr=True, soft_wrap=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def emit(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    fmt: OutputFormat,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print one record (a mapping) or a list of records in the chosen format.

    ``columns`` picks and orders the table columns (json and yaml always print everything).
    A single record prints as a two-column key/value table.
    """
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    if fmt is OutputFormat.yaml:
        import yaml  # only this format needs it; imported here for the CLI's start-up

        typer.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())
        return
    table = Table(title=title, show_lines=False)
    if isinstance(data, Mapping):
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key in columns or list(data):
            table.add_row(key, _cell(data.get(key)))
    else:
        cols = list(columns or (list(data[0]) if data else []))
        for col in cols:
            table.add_column(col, overflow="fold")
        for row in data:
            table.add_row(*(_cell(row.get(col)) for col in cols))
    _stdout.print(table)


@contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Print each warning raised inside the block as one ``Warning:`` line on stderr.

    Also when the block then fails, so that the warnings explaining a failure are not lost.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                note(f"Warning: {warning.message}")


def note(message: str) -> None:
    """Print a progress or status line on stderr, so that stdout stays machine-readable."""
    _stderr.print(message, highlight=False)
