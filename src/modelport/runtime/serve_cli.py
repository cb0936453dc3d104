"""The command line of ``modelport serve``, without the CLI's libraries.

A replica runs ``python -m modelport serve`` in an environment that holds the runtime's
dependencies only (no typer, rich or SQLAlchemy: docs/decisions.md, "One dependency list, a runtime
subset"), so the flags are parsed here with the standard library; the ``modelport`` CLI's ``serve``
command hands its arguments to :func:`main`. Flags keep the names of Azure ML's ``azmlinfsrv``
(with dashes as aliases) so that existing images and scripts work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from modelport.errors import ModelportError
from modelport.runtime.config import ServeFlags, load_config
from modelport.runtime.server import exec_server


@dataclass(frozen=True)
class Flag:
    """One flag: its :class:`ServeFlags` field (``--field``, ``--field-with-dashes``) and help."""

    field: str
    kind: type
    help: str


FLAGS = (
    Flag("entry_script", str, "Path of score.py (AZUREML_ENTRY_SCRIPT)."),
    Flag("model_dir", str, "Model folder (AZUREML_MODEL_DIR)."),
    Flag("port", int, "Serving port (SERVER_PORT; default 5001)."),
    Flag("host", str, "Address to bind (MODELPORT_HOST; default 127.0.0.1)."),
    Flag(
        "health_port",
        int,
        "Second port, used when SEPERATE_HEALTH_ENDPOINT=true (HEALTH_PORT; default 5000).",
    ),
    Flag("worker_count", int, "Worker processes, each running init() (WORKER_COUNT; default 1)."),
    Flag(
        "access_control_allow_origins",
        str,
        "Comma-separated CORS origins, * for any (AML_CORS_ORIGINS).",
    ),
    Flag("config_file", str, "JSON file of settings (AZUREML_CONFIG_FILE)."),
    Flag(
        "appinsights_instrumentation_key",
        str,
        "Accepted for compatibility; Application Insights export is not supported (use /metrics).",
    ),
    Flag(
        "max_request_bytes",
        int,
        "Largest request body; larger ones get 413 (MODELPORT_MAX_REQUEST_BYTES; default 100 MiB).",
    ),
    Flag("scoring_timeout_ms", int, "Time limit of one run() call (SCORING_TIMEOUT_MS; default 3600000)."),
    Flag(
        "unix_socket",
        str,
        "Also listen on this Unix socket (a path, or @name for Linux's abstract namespace); "
        "MODELPORT_UNIX_SOCKET. The local front end reaches its replicas this way.",
    ),
    Flag(
        "graceful_timeout",
        int,
        "Seconds that requests in flight get to finish after SIGTERM/SIGINT before they are answered "
        "503 (MODELPORT_GRACEFUL_TIMEOUT; default 30; 0 stops at once).",
    ),
    Flag(
        "parent_fd",
        int,
        "Stop (with the workers) when this inherited file descriptor reaches end of file: how the local "
        "agent's replicas die with it where there is no parent-death signal.",
    ),
    Flag(
        "json_encoding",
        str,
        "'standard' (json.dumps, as Azure ML) or 'numpy' (numpy/pandas-aware); MODELPORT_JSON_ENCODING.",
    ),
)

DESCRIPTION = "Run one replica: the entry script's init() once per worker, then run() per scoring request."


def parser(prog: str = "modelport serve") -> argparse.ArgumentParser:
    """The argument parser of ``modelport serve`` (usage errors exit with status 2)."""
    parsed = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, allow_abbrev=False)
    for flag in FLAGS:
        names = [f"--{flag.field}"]
        if "_" in flag.field:
            names.append(f"--{flag.field.replace('_', '-')}")
        parsed.add_argument(*names, dest=flag.field, type=flag.kind, default=None, help=flag.help)
    return parsed


def parse(argv: Sequence[str]) -> ServeFlags:
    """``argv`` (the arguments after ``serve``) as :class:`ServeFlags`."""
    return ServeFlags(**vars(parser().parse_args(list(argv))))


def main(argv: Sequence[str]) -> NoReturn:
    """Validate the flags (a bad one is a one-line error, exit status 1), then become the server."""
    flags = parse(argv)
    try:
        load_config(flags)
    except ModelportError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        sys.exit(1)
    exec_server(flags)
