"""Test certificates made on the fly with the ``openssl`` CLI: a private CA and leaves it signs."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


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
