"""Test certificates made on the fly with the ``openssl`` CLI (a private CA and leaves it signs),
and the client side of the TLS tests: fingerprints, and load across a certificate rotation."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import wait_until

LOAD_THREADS = 4  # even: half keep their connection, half open one per request
ROUNDS = 3
LOAD_DEADLINE_S = 120.0


@dataclass(frozen=True)
class Issued:
    """A certificate file and its key file."""

    cert: Path
    key: Path


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "test-ca") -> Issued:
    """A self-signed certificate authority."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", f"/CN={name}")  # fmt: skip
    return Issued(cert, key)


def make_leaf(ca: Issued, folder: Path, name: str, sans: str = "DNS:localhost,IP:127.0.0.1") -> Issued:
    """A server certificate for ``sans`` signed by ``ca``, valid for 30 days from now."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}-key.pem", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={sans}\n")
    _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")  # fmt: skip
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
         "-out", str(cert), "-days", "30", "-extfile", str(ext))  # fmt: skip
    return Issued(cert, key)


def rotation_set(folder: Path) -> dict[str, Issued]:
    """``ca``, ``other_ca`` (trusted by nobody here), and ``first`` and ``second``, two leaves of ``ca``."""
    ca = make_ca(folder, "ca")
    return {
        "ca": ca,
        "other_ca": make_ca(folder, "other-ca"),
        "first": make_leaf(ca, folder, "first"),
        "second": make_leaf(ca, folder, "second"),
    }


def fingerprint(issued: Issued) -> str:
    """SHA-256 (hex) of ``issued``'s certificate."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(issued.cert.read_text())).hexdigest()


def served_fingerprint(port: int, ca: Issued, server_hostname: str = "localhost") -> str:
    """SHA-256 (hex) of the certificate a new handshake on loopback ``port`` presents (``ca`` verifies it)."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def rotate_under_load(
    url: str, ca: Issued, rotate: Callable[[], None], headers: dict[str, str], content: bytes
) -> list[str]:
    """POST to ``url`` from clients that keep one connection alive and clients that open a new one
    per request, call ``rotate`` once each has been answered a few times, keep going until each
    has been answered a few more times; returns the failures (the test wants none)."""
    stop = threading.Event()
    failures: list[str] = []
    counts = [0] * LOAD_THREADS

    def load(index: int) -> None:
        client = None
        try:
            while not stop.is_set():
                if client is None or index % 2:  # odd clients: a new connection, a new handshake
                    if client is not None:
                        client.close()
                    client = httpx.Client(verify=ssl.create_default_context(cafile=str(ca.cert)), timeout=60)
                try:
                    answer = client.post(url, content=content, headers=headers)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                counts[index] += 1
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: min(counts) >= ROUNDS, f"every client answered {ROUNDS} times", LOAD_DEADLINE_S)
        before = list(counts)
        rotate()
        wait_until(
            lambda: all(c >= b + ROUNDS for c, b in zip(counts, before, strict=True)),
            f"every client answered {ROUNDS} more times after the rotation",
            LOAD_DEADLINE_S,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(LOAD_DEADLINE_S)
    return failures
