"""Log format shared by the front process and the workers (the reference server's layout)."""

from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"


def configure(level: str = "INFO") -> None:
    """Send log records to stdout as ``<UTC date time> <level letter> [<pid>] <logger> - <message>``."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(FORMAT)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
