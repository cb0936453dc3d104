"""Parsing of repeatable ``KEY=VALUE`` flags (``--tag``, ``--property``) and rich progress bars."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

# Models smaller than this register too quickly for a bar to be worth drawing.
PROGRESS_THRESHOLD_BYTES = 16 * 1024 * 1024
# In logs (no terminal), one progress line at most this often.
PLAIN_INTERVAL_S = 2.0


def parse_pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``; a value without ``=`` is a usage error."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} must be KEY=VALUE, e.g. {flag} stage=prod", param_hint=flag)
        pairs[key] = val
    return pairs


def one_name(positional: str | None, option: str | None, what: str) -> str:
    """The name of a command that takes it as ``NAME`` or ``-n NAME`` (the same name twice is one)."""
    if positional is not None and option is not None and positional != option:
        raise typer.BadParameter(
            f"two names given ({positional!r} and -n {option!r}); give the {what}'s name once, "
            "as NAME or -n NAME",
            param_hint="NAME / -n",
        )
    chosen = positional if positional is not None else option
    if chosen is None:
        raise typer.BadParameter(
            f"the {what} needs a name: give it as NAME or -n NAME", param_hint="NAME / -n"
        )
    return chosen


def parse_filters(values: list[str] | None) -> list[str | list[str]] | None:
    """``--tag k`` (key present) or ``--tag k=v`` (equal) → Azure ML filter items."""
    if not values:
        return None
    return [[k, v] if sep else k for k, sep, v in (value.partition("=") for value in values)]


class BarProgress:
    """Progress of large transfers on stderr: a rich bar on a terminal, plain lines in logs."""

    def __init__(self) -> None:
        self._console = Console(stderr=True)
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._plain: tuple[str, int] | None = None
        self._done = 0
        self._last_line = 0.0

    def start(self, description: str, total: int) -> None:
        """Begin a phase; nothing is drawn when ``total`` is small."""
        if total < PROGRESS_THRESHOLD_BYTES:
            return
        self._done = 0
        if not self._console.is_terminal:
            self._plain = (description, total)
            return
        if self._bar is None:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        """Move on by ``amount`` bytes."""
        self._done += amount
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, amount)
        elif self._plain is not None:
            description, total = self._plain
            now = time.monotonic()
            if self._done >= total or now - self._last_line >= PLAIN_INTERVAL_S:
                self._last_line = now
                percent = 100 * self._done // total
                self._console.print(
                    f"{description}: {percent}% ({self._done / 1e6:.1f}/{total / 1e6:.1f} MB)",
                    highlight=False,
                )

    def close(self) -> None:
        """Stop drawing."""
        if self._bar is not None:
            self._bar.stop()
