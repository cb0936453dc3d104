"""Configure-time checks of a certificate/key pair (``frontend/tls.py``), on certificates made by openssl."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from modelport.errors import UserErrorException
from modelport.frontend import tls
from tests.frontend.certs import Issued, make_ca, make_leaf


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Issued:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def leaf(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    return make_leaf(
        ca, tmp_path_factory.mktemp("leaf"), "svc", "DNS:svc.example.com,DNS:*.apps.example.com,IP:127.0.0.1"
    )


def test_a_good_pair_gives_names_dates_and_the_fingerprint_openssl_reports(leaf: Issued) -> None:
    info = tls.check_pair(leaf.cert, leaf.key, "svc.example.com")
    assert info.names == ("svc.example.com", "*.apps.example.com", "127.0.0.1")
    assert info.not_before < info.not_after
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(leaf.cert)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown.strip().split("=", 1)[1] == info.sha256


@pytest.mark.parametrize("cname", ["a.apps.example.com", "127.0.0.1", "SVC.example.com"])
def test_cnames_the_certificate_names_are_accepted(leaf: Issued, cname: str) -> None:
    tls.check_pair(leaf.cert, leaf.key, cname)


@pytest.mark.parametrize("cname", ["other.example.com", "a.b.apps.example.com", "apps.example.com"])
def test_a_cname_the_certificate_does_not_name_is_refused(leaf: Issued, cname: str) -> None:
    with pytest.raises(
        UserErrorException, match=rf"--ssl-cname {cname}: the certificate in .* names svc.example.com"
    ):
        tls.check_pair(leaf.cert, leaf.key, cname)


def test_a_key_of_another_certificate_is_refused_naming_the_key_file(
    ca: Issued, leaf: Issued, tmp_path: Path
) -> None:
    other = make_leaf(ca, tmp_path, "other")
    with pytest.raises(
        UserErrorException, match=rf"--ssl-key-pem-file {other.key}: the private key does not belong"
    ):
        tls.check_pair(leaf.cert, other.key)


def test_expired_and_not_yet_valid_certificates_are_refused(leaf: Issued) -> None:
    info = tls.check_pair(leaf.cert, leaf.key)
    with pytest.raises(UserErrorException, match="the certificate expired on .* Fix: renew it"):
        tls.check_pair(leaf.cert, leaf.key, now=info.not_after + 1)
    with pytest.raises(UserErrorException, match="not valid before"):
        tls.check_pair(leaf.cert, leaf.key, now=info.not_before - 1)


def test_files_that_are_not_pem_certificates_are_refused(leaf: Issued, tmp_path: Path) -> None:
    der = tmp_path / "cert.der"
    subprocess.run(
        ["openssl", "x509", "-in", str(leaf.cert), "-outform", "der", "-out", str(der)], check=True
    )
    with pytest.raises(UserErrorException, match=rf"--ssl-cert-pem-file {der}: no PEM certificate"):
        tls.check_pair(der, leaf.key)
    with pytest.raises(UserErrorException, match=r"--ssl-cert-pem-file .*missing.pem: cannot read it"):
        tls.check_pair(tmp_path / "missing.pem", leaf.key)
    with pytest.raises(UserErrorException, match=r"--ssl-key-pem-file"):
        tls.check_pair(leaf.cert, leaf.cert)


def test_a_development_certificate_serves_its_cname_and_loopback(tmp_path: Path) -> None:
    cert, key = tls.make_self_signed(tmp_path / "dev", "dev.local")
    info = tls.check_pair(cert, key, "dev.local")
    assert set(info.names) == {"dev.local", "localhost", "127.0.0.1"}
    assert key.stat().st_mode & 0o077 == 0
    context = tls.server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_an_encrypted_key_is_refused_without_a_prompt(leaf: Issued, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted-key.pem"
    subprocess.run(
        ["openssl", "pkey", "-in", str(leaf.key), "-aes256", "-passout", "pass:x", "-out", str(encrypted)],
        check=True,
    )
    with pytest.raises(UserErrorException, match="the private key is encrypted"):
        tls.check_pair(leaf.cert, encrypted)
