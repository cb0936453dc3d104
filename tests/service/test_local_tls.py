"""HTTPS on the local target: the real agent and its front end, certificates made by openssl,
python ``ssl`` and curl over loopback (docs/frontend.md, "TLS")."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from modelport.compute.local.driver import LocalDriver
from modelport.errors import UserErrorException
from modelport.service.webservice import Webservice
from tests.clirun import modelport
from tests.frontend.certs import Issued, fingerprint, rotate_under_load, rotation_set, served_fingerprint
from tests.servers import wait_until
from tests.service.test_local_keys import _deploy

pytestmark = pytest.mark.local_target
SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    return rotation_set(tmp_path_factory.mktemp("tls"))


def port_of(uri: str) -> int:
    return int(uri.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def test_local_https_from_configuration_to_rotation(local_ws, iris_model, write_source, certs) -> None:
    driver = LocalDriver()
    service = _deploy(local_ws, "tls-svc", write_source, [iris_model], auth_enabled=True)
    key = service.get_keys()[0]
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    driver.configure_tls(local_ws, certs["first"].cert, certs["first"].key, None)
    uri = Webservice(local_ws, "tls-svc").scoring_uri
    assert uri.startswith("https://127.0.0.1:")
    port = port_of(uri)
    verify = ssl.create_default_context(cafile=str(certs["ca"].cert))
    wait_until(lambda: httpx.post(uri, content=SAMPLE, headers=headers, verify=verify).status_code == 200,
               "the service to answer over HTTPS after the agent restarted", 120)  # fmt: skip
    curl = subprocess.run(
        ["curl", "-sS", "--cacert", str(certs["ca"].cert), "-H", f"Authorization: Bearer {key}",
         "-H", "content-type: application/json", "-d", SAMPLE, uri],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (curl.returncode, json.loads(curl.stdout or "null")) == (0, [0]), curl.stderr
    wrong_ca = subprocess.run(
        ["curl", "-sS", "--cacert", str(certs["other_ca"].cert), uri], capture_output=True, timeout=60
    )
    assert wrong_ca.returncode == 60
    plain = httpx.post(uri.replace("https://", "http://"), content=SAMPLE, headers=headers)
    assert plain.status_code == 400 and "serves HTTPS only" in plain.json()["message"]

    # The key lives in the agent's private folder, never in the workspace database (WAL included).
    # grep reads it in another process: opening the file here would drop SQLite's POSIX locks.
    key_body = certs["first"].key.read_text().splitlines()[1]
    database = Path(local_ws.metadata_store.url.removeprefix("sqlite:///"))
    assert database.is_file()
    found = subprocess.run(["grep", "-rqF", key_body, str(database.parent)], timeout=60)
    assert found.returncode == 1

    # A bad pair is refused before anything changes.
    with pytest.raises(UserErrorException, match="does not belong to the certificate"):
        driver.configure_tls(local_ws, certs["first"].cert, certs["second"].key, None)
    with pytest.raises(UserErrorException, match="--ssl-cname elsewhere.example: the certificate"):
        driver.configure_tls(local_ws, certs["second"].cert, certs["second"].key, "elsewhere.example")
    assert served_fingerprint(port, certs["ca"], "127.0.0.1") == fingerprint(certs["first"])

    # Rotation under steady load: keep-alive clients and one-connection-per-request clients.
    def rotate() -> None:
        driver.configure_tls(local_ws, certs["second"].cert, certs["second"].key, None)

    failures = rotate_under_load(uri, certs["ca"], rotate, headers, SAMPLE.encode())
    assert failures == []
    assert served_fingerprint(port, certs["ca"], "127.0.0.1") == fingerprint(certs["second"])

    # Remembered: a restarted agent serves the same certificate on the same port.
    driver.stop_agent(local_ws)
    driver.ensure_agent(local_ws)
    assert served_fingerprint(port, certs["ca"], "127.0.0.1") == fingerprint(certs["second"])


def test_cli_development_certificate_and_back_to_http(local_ws, tmp_path: Path) -> None:
    local_ws.write_config(path=tmp_path)
    started = modelport("local", "start", "--ssl-dev-self-signed", cwd=tmp_path)
    printed = started.stdout.split("SHA-256 fingerprint: ", 1)[1].split()[0]
    status = json.loads(modelport("local", "status", "-o", "json", cwd=tmp_path).stdout)
    assert status["frontendUrl"].startswith("https://localhost:")
    assert status["tls"]["sha256"] == printed
    port = port_of(status["frontendUrl"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = (
            False,
            ssl.CERT_NONE,
        )  # self-signed: checked by fingerprint
        with context.wrap_socket(raw) as conn:
            der = conn.getpeercert(binary_form=True)
    assert der is not None
    digest = hashlib.sha256(der).hexdigest().upper()
    assert printed.replace(":", "") == digest

    refused = modelport("local", "start", "--ssl-cname", "x.example", cwd=tmp_path, rc=1)
    assert "--ssl-cname needs a certificate" in refused.stderr
    modelport("local", "start", "--ssl-disable", cwd=tmp_path)
    status = json.loads(modelport("local", "status", "-o", "json", cwd=tmp_path).stdout)
    assert status["frontendUrl"].startswith("http://127.0.0.1:") and status["tls"] is None
