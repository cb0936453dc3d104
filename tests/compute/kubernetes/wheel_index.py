"""A package index inside the real-node testbed's network namespace, for pods to install from.

A wheelhouse is made on the host with ``pip download`` (the node's namespace has no way out),
cached beside the testbed's images, laid out as a simple index (PEP 503: one folder per project)
and served over HTTP on every address of the namespace, so pods reach it at the node's address.
Used by the real-node tests and bench/k8s_node.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from modelport.compute.envplan import runtime_requirements
from tests.compute.kubernetes.testbed import image

DOWNLOAD_TIMEOUT_S = 900


def wheelhouse(requirements: Sequence[str], outside: Sequence[str]) -> Path:
    """Wheels of ``requirements`` and modelport's runtime, with their dependencies (cached).

    ``outside`` runs ``pip download`` back in the host's namespace, where the package index is.
    """
    wanted = sorted({*requirements, *runtime_requirements()})
    key = hashlib.sha256(json.dumps([sys.version_info[:2], wanted]).encode()).hexdigest()[:12]
    house = image.cache_dir().parent / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    staging = house.with_name(house.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    download = [*outside, sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"]
    done = subprocess.run(
        [*download, "-d", str(staging), *wanted], capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip download failed:\n{done.stderr[-4000:]}")
    (staging / ".complete").touch()
    shutil.rmtree(house, ignore_errors=True)
    staging.rename(house)
    return house


@contextmanager
def served(house: Path, node_ip: str) -> Iterator[str]:
    """Serve ``house`` as a simple index on every address; yields the URL pods use."""
    with tempfile.TemporaryDirectory(prefix="modelport-index-") as root:
        for wheel in house.glob("*.whl"):
            project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
            folder = Path(root) / "simple" / project
            folder.mkdir(parents=True, exist_ok=True)
            (folder / wheel.name).symlink_to(wheel)
        server = ThreadingHTTPServer(("0.0.0.0", 0), functools.partial(_QuietHandler, directory=root))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{node_ip}:{server.server_address[1]}/simple/"
        finally:
            server.shutdown()
            server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not the output of a test or a benchmark."""
