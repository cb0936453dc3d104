"""HTTPS on the front end over real sockets: handshakes with python ``ssl`` and curl, wrong CA,
plain HTTP refused, and a certificate rotated under steady load without one failed request.

Certificates are made on the fly by openssl (tests/frontend/certs.py); replicas are real
``modelport serve`` processes; every socket is on loopback.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator

import httpx
import orjson
import pytest

from modelport.frontend import tls
from modelport.frontend.routes import ServiceRoute
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.certs import Issued, fingerprint, rotate_under_load, rotation_set, served_fingerprint
from tests.frontend.support import ReplicaProcess, score_url

Pair = tuple[ReplicaProcess, ReplicaProcess]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    return rotation_set(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https(certs: dict[str, Issued], pair: Pair) -> Iterator[BackgroundFrontEnd]:
    context = tls.server_context(certs["first"].cert, certs["first"].key)
    with BackgroundFrontEnd(tls=context) as running:
        running.set_routes(
            {
                "svc": ServiceRoute(
                    "svc", max_concurrent_per_replica=4, replicas=(pair[0].target, pair[1].target)
                )
            }
        )
        yield running


def client_context(ca: Issued) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert))


def test_python_ssl_and_curl_score_over_https(https: BackgroundFrontEnd, certs: dict[str, Issued]) -> None:
    assert https.url.startswith("https://")
    url = score_url(https, "svc").replace("127.0.0.1", "localhost")
    with httpx.Client(verify=client_context(certs["ca"]), timeout=60) as client:
        answer = client.post(url, json={"x": 1})
    assert answer.status_code == 200, answer.text
    assert served_fingerprint(https.port, certs["ca"]) == fingerprint(certs["first"])
    curl = subprocess.run(
        ["curl", "-sS", "--cacert", str(certs["ca"].cert), "-H", "content-type: application/json",
         "-d", '{"x": 2}', "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (curl.returncode, curl.stdout) == (0, "200"), curl.stderr


def test_a_client_trusting_another_ca_is_refused(https: BackgroundFrontEnd, certs: dict[str, Issued]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        served_fingerprint(https.port, certs["other_ca"])
    url = score_url(https, "svc").replace("127.0.0.1", "localhost")
    curl = subprocess.run(
        ["curl", "-sS", "--cacert", str(certs["other_ca"].cert), "-d", "{}", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert curl.returncode == 60, (curl.returncode, curl.stderr)  # curl: peer certificate not verified
    # The front end keeps serving clients that trust the right CA.
    assert served_fingerprint(https.port, certs["ca"]) == fingerprint(certs["first"])


def test_plain_http_on_the_tls_port_gets_a_clear_answer(https: BackgroundFrontEnd) -> None:
    answer = httpx.post(f"http://127.0.0.1:{https.port}/api/v1/service/svc/score", json={}, timeout=30)
    assert answer.status_code == 400
    assert answer.headers["connection"] == "close"
    assert "serves HTTPS only" in orjson.loads(answer.content)["message"]


def test_a_client_that_says_nothing_does_not_stop_others(
    https: BackgroundFrontEnd, certs: dict[str, Issued]
) -> None:
    with socket.create_connection(("127.0.0.1", https.port), timeout=30):
        assert served_fingerprint(https.port, certs["ca"]) == fingerprint(certs["first"])


def test_rotation_under_steady_load_fails_no_request(
    https: BackgroundFrontEnd, certs: dict[str, Issued]
) -> None:
    """Clients on kept-alive connections and clients opening a new one per request run while the
    certificate is replaced; every request must succeed, and new handshakes present the new one."""
    url = score_url(https, "svc").replace("127.0.0.1", "localhost")

    def rotate() -> None:
        https.call(https.frontend.set_tls, tls.server_context(certs["second"].cert, certs["second"].key))

    failures = rotate_under_load(url, certs["ca"], rotate, {"content-type": "application/json"}, b'{"x": 3}')
    assert failures == []
    assert served_fingerprint(https.port, certs["ca"]) == fingerprint(certs["second"])


def test_set_tls_needs_a_tls_front_end(frontend: BackgroundFrontEnd, certs: dict[str, Issued]) -> None:
    with pytest.raises(RuntimeError, match="started with tls"):
        frontend.call(frontend.frontend.set_tls, tls.server_context(certs["first"].cert, certs["first"].key))
