"""Progress bars of large transfers (``model register``): rich on a terminal, plain lines in logs.

Its own module because ``rich.progress`` is slow to import and only registration draws bars
(CLI start-up, docs/performance.md).
"""

from __future__ import annotations

import time

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
