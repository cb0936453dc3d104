"""Container registries on loopback for the image-mode tests.

* :func:`distribution_registry`: the real registry (Debian's docker-registry, distribution 2.8) that
  the real-node testbed builds (k8s/testbed/build-node.sh), when this machine's testbed cache has
  it; images are put into it through its own v2 upload API.
* :func:`tiny_registry`: a small real HTTP server answering the v2 manifest ``HEAD`` as a
  registry does, with the authentication challenges a real one sends (basic, or a bearer token
  from a token service). It stands in for the registries whose authentication cannot run here
  (a token service needs a signing certificate and a registry configured for it); tests using it
  say so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.servers import free_port, wait_until


def registry_binary() -> Path | None:
    """The testbed's registry binary, if a real-node build left one in the cache."""
    cache = Path(os.environ.get("MODELPORT_K8S_CACHE") or Path.home() / ".cache" / "modelport-k8s")
    found = sorted(cache.glob("node-*/bin/registry"))
    complete = [p for p in found if (p.parent / ".complete").exists()]
    return complete[-1] if complete else None


@contextlib.contextmanager
def distribution_registry(binary: Path, folder: Path) -> Iterator[str]:
    """The real registry on 127.0.0.1, plain HTTP, storing in ``folder``; yields ``host:port``."""
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        [str(binary), "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    address = f"127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"http://{address}/v2/", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                return False

        wait_until(answers, "the registry answering /v2/", deadline_s=30)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


def put_image(address: str, repository: str, tag: str) -> None:
    """Upload a one-layer-less image (a config blob and a manifest) through the registry's v2 API."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    digest = "sha256:" + hashlib.sha256(config.encode()).hexdigest()
    base = f"http://{address}/v2/{repository}"
    started = httpx.post(f"{base}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    upload = location if location.startswith("http") else f"http://{address}{location}"
    separator = "&" if "?" in upload else "?"
    done = httpx.put(f"{upload}{separator}digest={digest}", content=config.encode())
    assert done.status_code == 201, done.text
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": digest,
        },
        "layers": [],
    }
    put = httpx.put(
        f"{base}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": manifest["mediaType"]},
    )
    assert put.status_code == 201, put.text


@dataclass
class TinyRegistry:
    """What the tiny registry holds and how it authenticates; ``requests`` records what it saw."""

    address: str
    tags: set[tuple[str, str]]  # (repository, tag)
    auth: str  # "none", "basic" or "bearer"
    username: str = "robot"
    password: str = "s3cret"
    requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)


@contextlib.contextmanager
def tiny_registry(auth: str = "none", tags: set[tuple[str, str]] | None = None) -> Iterator[TinyRegistry]:
    """A registry's v2 manifest ``HEAD`` with its challenges, on 127.0.0.1 (see the module docstring)."""
    state = TinyRegistry(address="", tags=set(tags or ()), auth=auth)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Requests are recorded in ``state.requests`` instead."""

        def _basic_ok(self) -> bool:
            expected = base64.b64encode(f"{state.username}:{state.password}".encode()).decode()
            return self.headers.get("Authorization") == f"Basic {expected}"

        def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # the token service
            url = urlsplit(self.path)
            state.requests.append(f"GET {self.path}")
            if url.path != "/token":
                self._answer(404)
                return
            query = parse_qs(url.query)
            if not self._basic_ok() or query.get("service") != ["tiny"]:
                self._answer(401)
                return
            token = secrets.token_hex(8)
            state.tokens.add(token)
            self._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode())

        def do_HEAD(self) -> None:
            state.requests.append(f"HEAD {self.path} {self.headers.get('Accept', '')}")
            parts = self.path.split("/manifests/")
            if not self.path.startswith("/v2/") or len(parts) != 2:
                self._answer(404)
                return
            repository, tag = parts[0][len("/v2/") :], parts[1]
            given = self.headers.get("Authorization", "")
            if state.auth == "basic" and not self._basic_ok():
                self._answer(401, {"WWW-Authenticate": 'Basic realm="tiny"'})
                return
            if state.auth == "bearer" and given.removeprefix("Bearer ") not in state.tokens:
                realm = f"http://{state.address}/token"
                scope = f"repository:{repository}:pull"
                challenge = f'Bearer realm="{realm}",service="tiny",scope="{scope}"'
                self._answer(401, {"WWW-Authenticate": challenge})
                return
            self._answer(200 if (repository, tag) in state.tags else 404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
