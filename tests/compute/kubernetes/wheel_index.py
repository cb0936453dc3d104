"""A package index inside the real-node testbed's network namespace, for pods to install from.

A wheelhouse is made on the host with ``pip download`` (the node's namespace has no way out),
cached beside the testbed's images, laid out as a simple index (PEP 503: one folder per project)
and served over HTTP on every address of the namespace, so pods reach it at the node's address.
Used by the real-node tests and bench/k8s_node.py.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
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


def probe_wheel(folder: Path, project: str, version: str = "1.0") -> Path:
    """A pure-Python wheel of ``project`` (one empty module) written into ``folder``: a package no
    cache on the node has, so installing it must download it from the index."""
    module = project.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: modelport-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


class Gate:
    """Holds the downloads of one project's files until released, and says when one was asked for:
    a test can keep an install in progress while it arranges what must happen meanwhile."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.requested = threading.Event()
        self._open = threading.Event()

    def release(self) -> None:
        """Let every held and later download through."""
        self._open.set()

    def wait_if_held(self, path: str) -> None:
        """Called by the server for each request path; blocks the project's file downloads."""
        if f"/simple/{self.project}/" in path and path.endswith(".whl"):
            self.requested.set()
            self._open.wait(timeout=DOWNLOAD_TIMEOUT_S)


@contextmanager
def served(house: Path, node_ip: str, extra: Iterable[Path] = (), gate: Gate | None = None) -> Iterator[str]:
    """Serve ``house`` (and the ``extra`` wheels) as a simple index on every address; yields the URL
    pods use. ``gate`` holds the downloads of its project until released."""
    with tempfile.TemporaryDirectory(prefix="modelport-index-") as root:
        for wheel in [*house.glob("*.whl"), *extra]:
            project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
            folder = Path(root) / "simple" / project
            folder.mkdir(parents=True, exist_ok=True)
            (folder / wheel.name).symlink_to(wheel)
        handler = functools.partial(_QuietHandler, gate, directory=root)
        server = ThreadingHTTPServer(("0.0.0.0", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{node_ip}:{server.server_address[1]}/simple/"
        finally:
            if gate is not None:
                gate.release()
            server.shutdown()
            server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def __init__(self, gate: Gate | None, *args: Any, **kwargs: Any) -> None:
        self.gate = gate
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        """Serve the file, once the gate (if any) lets its download through."""
        if self.gate is not None:
            self.gate.wait_if_held(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not the output of a test or a benchmark."""
