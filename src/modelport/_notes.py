"""Notes for the user (``Registering model x``, replaced tags): printed to stderr.

Azure ML printed such lines; modelport prints them on stderr so that a command's stdout stays
machine-readable (``--output json``). ``MODELPORT_QUIET=1`` silences them.
"""

from __future__ import annotations

import os
import sys


def note(message: str) -> None:
    """Print one informational line for the user."""
    if os.environ.get("MODELPORT_QUIET") not in {"1", "true", "yes"}:
        print(message, file=sys.stderr, flush=True)
