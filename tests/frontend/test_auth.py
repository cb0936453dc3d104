"""Key and token authentication: the signing module, and 401s from the front end over real sockets."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import jwt
import pytest

from modelport.frontend.auth import Authenticator, issue_token, keys_match, verify_token
from modelport.frontend.routes import AuthPolicy, ServiceRoute
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.support import ReplicaProcess, post_json, score_url

Pair = tuple[ReplicaProcess, ReplicaProcess]
SECRET = b"s" * 32
KEYS = ("primary-key-123", "secondary-key-456")


def bearer(credential: str) -> dict[str, str]:
    """The Authorization header Azure ML clients send."""
    return {"Authorization": f"Bearer {credential}"}


def test_token_times_follow_azure_ml() -> None:
    token = issue_token(SECRET, "svc", now=1_000_000)
    assert token.token_type == "Bearer"
    assert token.expiry_on - token.refresh_after == timedelta(hours=12)
    assert token.refresh_after.timestamp() == 1_000_000 + 3600
    assert token.to_wire() == {
        "accessToken": token.access_token,
        "tokenType": "Bearer",
        "refreshAfter": 1_000_000 + 3600,
        "expiryOn": 1_000_000 + 13 * 3600,
    }
    short = issue_token(SECRET, "svc", ttl_s=40, now=1_000_000)
    assert short.refresh_after.timestamp() == 1_000_030
    with pytest.raises(ValueError):
        issue_token(SECRET, "svc", ttl_s=0)


def test_verify_checks_signature_service_and_expiry() -> None:
    now = time.time()
    token = issue_token(SECRET, "svc").access_token
    assert verify_token(SECRET, "svc", token) > now
    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(b"other" * 8, "svc", token)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_token(SECRET, "another-svc", token)
    expired = issue_token(SECRET, "svc", ttl_s=60, now=now - 120).access_token
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_token(SECRET, "svc", expired)
    unsigned = jwt.encode({"aud": "svc", "iss": "modelport", "exp": now + 60}, None, algorithm="none")
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_token(SECRET, "svc", unsigned)


def test_keys_match_either_key_only() -> None:
    assert keys_match(KEYS[0], KEYS)
    assert keys_match(KEYS[1], KEYS)
    assert not keys_match("primary-key-12", KEYS)
    assert not keys_match("", KEYS)
    assert not keys_match(KEYS[0], ())


def test_cached_token_still_expires() -> None:
    auth = Authenticator()
    policy = AuthPolicy("token", token_secret=SECRET)
    token = issue_token(SECRET, "svc", ttl_s=2, now=time.time() - 1).access_token
    assert auth.check("svc", policy, f"Bearer {token}") is None
    end = time.monotonic() + 10
    while time.monotonic() < end and auth.check("svc", policy, f"Bearer {token}") is None:
        time.sleep(0.05)  # waiting for the clock to pass the expiry is the behaviour under test
    assert (
        auth.check("svc", policy, f"Bearer {token}")
        == "Token expired; fetch a new one with get_access_token()."
    )
    rotated = AuthPolicy("token", token_secret=b"n" * 32)
    fresh = issue_token(SECRET, "svc").access_token
    assert auth.check("svc", policy, f"Bearer {fresh}") is None
    assert auth.check("svc", rotated, f"Bearer {fresh}") is not None  # a new secret voids cached tokens


def test_key_auth(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    policy = AuthPolicy("key", keys=KEYS)
    frontend.set_routes({"keyed": ServiceRoute("keyed", auth=policy, replicas=(pair[0].target,))})
    url = score_url(frontend, "keyed")
    primary = post_json(url, {}, bearer(KEYS[0]))
    assert primary.status_code == 200
    # The key is not handed to the entry script.
    assert "Authorization" not in primary.json()["headers"]
    assert post_json(url, {}, bearer(KEYS[1])).status_code == 200
    for headers in (bearer("wrong"), None, {"Authorization": KEYS[0]}, {"Authorization": "Basic eDp5"}):
        refused = post_json(url, {}, headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert set(refused.json()) == {"message"}
    # A regenerated key replaces the old value at once.
    rotated = AuthPolicy("key", keys=("new-primary", KEYS[1]))
    frontend.set_routes({"keyed": ServiceRoute("keyed", auth=rotated, replicas=(pair[0].target,))})
    assert post_json(url, {}, bearer(KEYS[0])).status_code == 401
    assert post_json(url, {}, bearer("new-primary")).status_code == 200


def test_token_auth(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    policy = AuthPolicy("token", token_secret=SECRET)
    routes = {
        name: ServiceRoute(name, auth=policy, replicas=(pair[0].target,)) for name in ("tokened", "neighbour")
    }
    frontend.set_routes(routes)
    url = score_url(frontend, "tokened")
    assert post_json(url, {}, bearer(issue_token(SECRET, "tokened").access_token)).status_code == 200
    expired = issue_token(SECRET, "tokened", ttl_s=60, now=time.time() - 3600).access_token
    answer = post_json(url, {}, bearer(expired))
    assert answer.status_code == 401
    assert answer.json() == {"message": "Token expired; fetch a new one with get_access_token()."}
    forged = issue_token(b"f" * 32, "tokened").access_token
    assert post_json(url, {}, bearer(forged)).status_code == 401
    elsewhere = issue_token(SECRET, "neighbour").access_token
    assert post_json(url, {}, bearer(elsewhere)).status_code == 401
    assert post_json(url, {}).status_code == 401


def test_preflight_and_swagger_need_no_credential(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    policy = AuthPolicy("key", keys=KEYS)
    frontend.set_routes({"keyed": ServiceRoute("keyed", auth=policy, replicas=(pair[0].target,))})
    url = score_url(frontend, "keyed")
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert httpx.options(url, headers=preflight).status_code == 200
    assert httpx.options(url).status_code == 401  # a plain OPTIONS is a request like any other
    assert httpx.get(url.replace("/score", "/swagger.json")).status_code == 200
