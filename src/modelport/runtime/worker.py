"""A worker process: imports the entry script, runs ``init()`` once, then answers scoring requests.

Started by the front process as ``python -m modelport.runtime.worker <fd>``, where ``<fd>`` is its
end of a Unix socket pair. Settings arrive as environment variables, already resolved by the
front process (see :func:`modelport.runtime.config.worker_environment`). One request at a time, in
the main thread, so that ``SIGALRM`` can interrupt a ``run()`` that exceeds the scoring timeout.

Exit status 3 (as Azure ML's server) when the script cannot be loaded or ``init()`` raises; the
traceback goes to the log first.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from modelport.runtime import logs, wire
from modelport.runtime.config import WorkerSettings
from modelport.runtime.entry_script import load_entry_script
from modelport.runtime.scoring import Scorer
from modelport.runtime.swagger import build_documents

log = logging.getLogger("modelport.runtime.worker")

EXIT_BOOT_FAILED = 3
SHIMS_DIR = Path(__file__).with_name("shims")


def _prepare_sys_path(settings: WorkerSettings) -> None:
    # The Azure import paths (azureml.core.model, azureml.contrib.services, ...) resolve to our
    # shims in workers only; they are never visible to ordinary users of the modelport package.
    sys.path.insert(0, str(SHIMS_DIR))
    for extra in (settings.app_root, settings.source_directory):
        if extra is not None and str(extra) not in sys.path:
            sys.path.append(str(extra))


def serve(channel: socket.socket, settings: WorkerSettings) -> int:
    """Load the script, run ``init()``, announce readiness, then answer requests until EOF."""
    _prepare_sys_path(settings)
    try:
        script = load_entry_script(settings.entry_script)
    except BaseException:
        log.exception("Failed to load the entry script %s", settings.entry_script or "main.py")
        return EXIT_BOOT_FAILED
    try:
        script.init()
    except BaseException:
        log.exception("User's init function failed")
        _log_model_dir()
        return EXIT_BOOT_FAILED
    documents = build_documents(script.run, settings.identity, settings.app_root)
    scorer = Scorer(script, timeout_ms=settings.scoring_timeout_ms, numpy_json=settings.numpy_json)
    channel.sendall(wire.encode((wire.READY, os.getpid(), script.style.value, documents)))
    log.info("Worker with pid %d ready for serving traffic", os.getpid())
    reader = channel.makefile("rb")
    while True:
        header = reader.read(wire.HEADER_SIZE)
        if len(header) < wire.HEADER_SIZE:
            return 0
        method, path, query, headers, body = wire.decode(reader.read(wire.frame_length(header)))
        channel.sendall(wire.encode((wire.REPLY, *scorer.handle(method, path, query, headers, body))))


def _log_model_dir() -> None:
    # The usual cause of an init() failure is a model path guess that does not match the layout.
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir or not os.path.isdir(model_dir):
        log.error("AZUREML_MODEL_DIR=%r is not a folder", model_dir)
        return
    lines = []
    for root, _dirs, files in os.walk(model_dir):
        lines.append(root)
        lines.extend(f"  {name}" for name in files)
        if len(lines) > 200:
            break
    log.error("Contents of AZUREML_MODEL_DIR (first 200 lines):\n%s", "\n".join(lines[:200]))


def main(argv: list[str]) -> int:
    """Entry point of a worker process; ``argv[1]`` is the inherited socket's file descriptor."""
    settings = WorkerSettings.from_environ(os.environ)
    logs.configure(settings.log_level)
    channel = socket.socket(fileno=int(argv[1]))
    try:
        return serve(channel, settings)
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
