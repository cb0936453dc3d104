"""The local front end's certificate and key, kept in the agent's private folder, never the database.

``<agent folder>/tls/`` (mode 0700) holds one folder per installed certificate (``cert.pem``,
``key.pem`` at 0600) and ``current.json`` naming the one in use with its cname and fingerprint.
Installing writes the new folder first and then replaces ``current.json`` in one rename, so a
reader (the agent starting, or reloading on SIGHUP) sees the old pair or the new one, never half
of each. The workspace database only ever learns the public part (scheme, cname, fingerprint),
through the agent's announcement.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.compute.local.paths import LocalPaths
from modelport.frontend import tls

CURRENT = "current.json"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class InstalledTls:
    """The pair the local front end serves."""

    folder: Path
    cname: str | None

    @property
    def cert_file(self) -> Path:
        """The certificate (chain) in PEM."""
        return self.folder / "cert.pem"

    @property
    def key_file(self) -> Path:
        """The private key in PEM, readable by its owner only."""
        return self.folder / "key.pem"

    def context(self) -> tuple[ssl.SSLContext, tls.CertificateInfo]:
        """Check the pair again (it may have expired since) and load it; ``UserErrorException`` if bad."""
        info = tls.check_pair(self.cert_file, self.key_file, self.cname)
        return tls.server_context(self.cert_file, self.key_file), info

    def public(self, info: tls.CertificateInfo) -> dict[str, Any]:
        """What the agent announces in the workspace: nothing secret."""
        return {"cname": self.cname, **info.to_dict()}


def tls_root(paths: LocalPaths) -> Path:
    """The folder of the installed pairs."""
    return paths.root / "tls"


def install(paths: LocalPaths, cert_file: Path, key_file: Path, cname: str | None) -> tls.CertificateInfo:
    """Check the pair (refused with the reason when bad), copy it in and make it the current one."""
    info = tls.check_pair(cert_file, key_file, cname)
    root = tls_root(paths)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    folder = Path(tempfile.mkdtemp(prefix=info.sha256.replace(":", "")[:16] + "-", dir=root))
    shutil.copyfile(cert_file, folder / "cert.pem")
    key_copy = folder / "key.pem"
    key_copy.touch(mode=0o600)
    shutil.copyfile(key_file, key_copy)
    _write_current(root, {"folder": folder.name, "cname": cname})
    _remove_others(root, keep=folder.name)
    return info


def uninstall(paths: LocalPaths) -> bool:
    """Forget the pair: the front end serves plain HTTP from its next start. False if none was set."""
    root = tls_root(paths)
    if not (root / CURRENT).exists():
        return False
    (root / CURRENT).unlink()
    _remove_others(root, keep=None)
    return True


def installed(paths: LocalPaths) -> InstalledTls | None:
    """The current pair, or None when the local front end serves plain HTTP."""
    root = tls_root(paths)
    try:
        current = json.loads((root / CURRENT).read_text())
    except FileNotFoundError:
        return None
    return InstalledTls(root / current["folder"], current.get("cname"))


def _write_current(root: Path, current: dict[str, Any]) -> None:
    temporary = root / f".{CURRENT}.{os.getpid()}"
    temporary.write_text(json.dumps(current))
    os.replace(temporary, root / CURRENT)


def _remove_others(root: Path, keep: str | None) -> None:
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
