"""The front end's TLS certificate: checked at configure time, loaded into a server context.

A certificate/key pair is refused before anything stores it, each refusal naming the file, the
problem and the fix: not PEM, key not the certificate's, not yet valid or expired, or a cname
the certificate does not name. Only the standard library's ``ssl`` is used (no new dependency;
see docs/decisions.md, "TLS without a crypto package"): ``SSLContext.load_cert_chain`` rejects a
mismatched pair, and the validity dates and names come from the certificate decoder that
``getpeercert()`` itself uses. A development certificate is made with the ``openssl`` CLI.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from modelport.errors import UserErrorException

DEV_VALID_DAYS = 365
OPENSSL_TIMEOUT_S = 60.0
_PEM_CERT = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class CertificateInfo:
    """What the front end reports about the certificate it serves."""

    names: tuple[str, ...]  # the certificate's DNS and IP subject alternative names
    not_before: float  # epoch seconds
    not_after: float
    sha256: str  # fingerprint of the leaf certificate, ``AB:CD:...`` as browsers show it

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``modelport local status``, ``-o json``)."""
        return {
            "names": list(self.names),
            "notBefore": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.not_before)),
            "notAfter": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.not_after)),
            "sha256": self.sha256,
        }


def check_pair(
    cert_file: Path, key_file: Path, cname: str | None = None, *, now: float | None = None
) -> CertificateInfo:
    """The certificate in ``cert_file`` once it is known to fit ``key_file`` and ``cname``.

    Raises ``UserErrorException`` naming the file, the problem and the fix. ``now`` (epoch
    seconds) is for tests; the validity window is checked against it.
    """
    cert_text = _read(cert_file, "--ssl-cert-pem-file")
    _read(key_file, "--ssl-key-pem-file")
    if _PEM_CERT not in cert_text:
        raise UserErrorException(
            f"--ssl-cert-pem-file {cert_file}: no PEM certificate ({_PEM_CERT} ...) in the file. "
            "Fix: pass the certificate in PEM form "
            "(convert DER with `openssl x509 -inform der -in F -out F.pem`)."
        )
    decoded = _decode(cert_file)
    info = _info(cert_text, decoded)
    instant = time.time() if now is None else now
    stamp = CertificateInfo.to_dict(info)
    if instant < info.not_before:
        raise UserErrorException(
            f"--ssl-cert-pem-file {cert_file}: the certificate is not valid before {stamp['notBefore']}. "
            "Fix: wait until then, or check the clock of this machine."
        )
    if instant >= info.not_after:
        raise UserErrorException(
            f"--ssl-cert-pem-file {cert_file}: the certificate expired on {stamp['notAfter']}. "
            "Fix: renew it and pass the new certificate and key."
        )
    if cname is not None and not any(_matches(pattern, cname) for pattern in info.names):
        named = ", ".join(info.names) or "no DNS or IP name"
        raise UserErrorException(
            f"--ssl-cname {cname}: the certificate in {cert_file} names {named}, not {cname}. "
            "Fix: pass a cname the certificate names, or a certificate issued for that name."
        )
    server_context(cert_file, key_file)
    return info


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving the pair; ``UserErrorException`` when the key does not fit."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(str(cert_file), str(key_file), password=lambda: _encrypted(key_file))
    except ssl.SSLError as exc:
        problem = (
            "the private key does not belong to the certificate"
            if "KEY_VALUES_MISMATCH" in str(exc)
            else f"the key could not be read ({exc.reason or exc})"
        )
        raise UserErrorException(
            f"--ssl-key-pem-file {key_file}: {problem}. Fix: pass the unencrypted PEM private key "
            f"that was issued with the certificate in {cert_file}."
        ) from None
    return context


def make_self_signed(folder: Path, cname: str, *, days: int = DEV_VALID_DAYS) -> tuple[Path, Path]:
    """A development certificate and key for ``cname`` (and 127.0.0.1, localhost) in ``folder``.

    Made with the ``openssl`` CLI; raises ``UserErrorException`` when it is missing or fails.
    Returns ``(cert_file, key_file)``; the key file is readable by its owner only.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UserErrorException(
            "--ssl-dev-self-signed needs the `openssl` command, which is not on PATH. Fix: install "
            "OpenSSL (e.g. `apt-get install openssl`), or pass --ssl-cert-pem-file and --ssl-key-pem-file."
        )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_file, key_file = folder / "dev-cert.pem", folder / "dev-key.pem"
    names = dict.fromkeys(
        (f"DNS:{cname}" if not _is_ip(cname) else f"IP:{cname}", "DNS:localhost", "IP:127.0.0.1")
    )
    command = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key_file), "-out", str(cert_file), "-days", str(days), "-subj", f"/CN={cname}",
        "-addext", "subjectAltName=" + ",".join(names),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise UserErrorException(
            f"openssl could not make a development certificate for {cname}: {done.stderr.strip()[-300:]}. "
            "Fix: pass --ssl-cert-pem-file and --ssl-key-pem-file instead."
        )
    key_file.chmod(0o600)
    return cert_file, key_file


def _encrypted(key_file: Path) -> str:
    # Called by OpenSSL only for an encrypted key; without it OpenSSL would prompt on the terminal.
    raise UserErrorException(
        f"--ssl-key-pem-file {key_file}: the private key is encrypted and modelport keeps no passphrase. "
        f"Fix: decrypt it (`openssl pkey -in {key_file} -out key.pem`) and keep the result private."
    )


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise UserErrorException(
            f"{flag} {path}: cannot read it ({exc.strerror}). Fix: pass a readable PEM file."
        ) from None


def _decode(cert_file: Path) -> dict[str, Any]:
    # The decoder behind SSLSocket.getpeercert(); the ssl module has no public one for a file.
    decoder = cast(Callable[[str], dict[str, Any]], ssl._ssl._test_decode_cert)  # type: ignore[attr-defined]
    try:
        return decoder(str(cert_file))
    except ssl.SSLError as exc:
        raise UserErrorException(
            f"--ssl-cert-pem-file {cert_file}: the certificate cannot be parsed ({exc.reason or exc}). "
            "Fix: pass the PEM certificate as your certificate authority issued it."
        ) from None


def _info(cert_text: str, decoded: dict[str, Any]) -> CertificateInfo:
    start = cert_text.index(_PEM_CERT)
    end = cert_text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_text[start:end])).hexdigest().upper()
    names = tuple(value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address"))
    return CertificateInfo(
        names=names,
        not_before=ssl.cert_time_to_seconds(decoded["notBefore"]),
        not_after=ssl.cert_time_to_seconds(decoded["notAfter"]),
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
    )


def _matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching: exact (case-insensitive), or ``*.`` standing for exactly one left-most label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _is_ip(name: str) -> bool:
    return name.replace(".", "").isdigit() or ":" in name
