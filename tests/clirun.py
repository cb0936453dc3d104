"""Running the ``modelport`` command as a user does: a subprocess, its output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def modelport(
    *args: str,
    cwd: Path | None = None,
    rc: int | None = 0,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m modelport ARGS``; assert the exit code unless ``rc`` is None.

    ``COLUMNS`` is wide so that usage-error boxes do not wrap the messages tests look for.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=timeout,
    )
    if rc is not None:
        assert proc.returncode == rc, (proc.stdout, proc.stderr)
    return proc
