"""Service keys and access tokens: the one place that signs and verifies them.

Key auth (Azure ML's default on AKS): ``Authorization: Bearer <primary or secondary key>``,
compared in constant time, or a named key, recognised by its SHA-256 (one dictionary lookup: the
hash of a random 256-bit key reveals nothing usable through lookup timing; docs/decisions.md).
Token auth: ``Authorization: Bearer <token>`` where the token is an
HS256 JWT signed with the service's secret, addressed to the service (``aud``) and expiring.
Like Azure ML, a token carries a refresh-after time well before its expiry: clients fetch a new
one after ``refresh_after`` and the old one stays valid for 12 hours more (the SDK's comment on
``get_access_token``), so a client that refreshes late never sees a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from modelport.frontend.routes import AuthPolicy, NamedKey

ISSUER = "modelport"
DEFAULT_REFRESH_AFTER_S = 3600
DEFAULT_TTL_S = DEFAULT_REFRESH_AFTER_S + 12 * 3600
# Verified tokens are remembered (until their expiry) so that a client reusing its token costs a
# dict lookup rather than an HMAC and a JSON parse per request.
_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Token:
    """An access token as ``get_access_token()`` returns it (``AksServiceAccessToken``)."""

    access_token: str
    refresh_after: datetime
    expiry_on: datetime
    token_type: str = "Bearer"

    def to_wire(self) -> dict[str, object]:
        """Azure ML's wire form: ``accessToken``, ``tokenType``, ``refreshAfter``, ``expiryOn`` (epoch s)."""
        return {
            "accessToken": self.access_token,
            "tokenType": self.token_type,
            "refreshAfter": int(self.refresh_after.timestamp()),
            "expiryOn": int(self.expiry_on.timestamp()),
        }


def issue_token(
    secret: bytes,
    service: str,
    ttl_s: int = DEFAULT_TTL_S,
    *,
    refresh_after_s: int | None = None,
    now: float | None = None,
) -> Token:
    """Sign a token for ``service`` valid ``ttl_s`` seconds from ``now`` (epoch seconds, default: now).

    ``refresh_after_s`` defaults to one hour, or to three quarters of ``ttl_s`` for shorter tokens.
    """
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    issued = int(time.time() if now is None else now)
    refresh = refresh_after_s if refresh_after_s is not None else min(DEFAULT_REFRESH_AFTER_S, ttl_s * 3 // 4)
    claims = {"iss": ISSUER, "aud": service, "sub": service, "iat": issued, "exp": issued + ttl_s}
    return Token(
        access_token=jwt.encode(claims, secret, algorithm="HS256"),
        refresh_after=datetime.fromtimestamp(issued + refresh, UTC),
        expiry_on=datetime.fromtimestamp(issued + ttl_s, UTC),
    )


def verify_token(secret: bytes, service: str, token: str) -> float:
    """Return the token's expiry (epoch seconds); raise ``jwt.InvalidTokenError`` when it is not valid.

    Valid means: HS256 signature by ``secret``, addressed to ``service``, issued by modelport, and
    not expired.
    """
    claims = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience=service,
        issuer=ISSUER,
        options={"require": ["exp", "aud", "iss"]},
    )
    return float(claims["exp"])


def keys_match(given: str, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` equals one of ``keys``; every key is compared, each in constant time."""
    given_bytes = given.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.encode("utf-8"))
    return matched


class Authenticator:
    """Checks the ``Authorization`` header of requests to one front end's services."""

    def __init__(self) -> None:
        self._verified: dict[tuple[bytes, str, str], float] = {}

    def check(self, service: str, policy: AuthPolicy, authorization: str | None) -> str | NamedKey | None:
        """Why the request may not pass (the 401 message), or who it passes as: the named key it
        carries, ``None`` for the service's own credentials (or none needed)."""
        if policy.mode == "none":
            return None
        if authorization is None:
            expected = "key" if policy.mode == "key" else "token"
            return f"Authorization header missing; send 'Authorization: Bearer <{expected}>'."
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return "Authorization header must be 'Bearer <credential>'."
        if policy.mode == "key":
            if policy.keys and keys_match(credential, policy.keys):
                return None
            if policy.named_keys:
                named = policy.named_by_digest.get(hashlib.sha256(credential.encode("utf-8")).digest())
                if named is not None:
                    return named
            return "Invalid key: it is not the primary, the secondary or a named key of this service."
        return self._check_token(service, policy, credential)

    def _check_token(self, service: str, policy: AuthPolicy, token: str) -> str | None:
        if policy.token_secret is None:
            return "Token authentication is enabled but the service has no signing secret yet."
        cache_key = (policy.token_secret, service, token)
        expiry = self._verified.get(cache_key)
        now = time.time()
        if expiry is not None and now < expiry:
            return None
        try:
            expiry = verify_token(policy.token_secret, service, token)
        except jwt.ExpiredSignatureError:
            self._verified.pop(cache_key, None)
            return "Token expired; fetch a new one with get_access_token()."
        except jwt.InvalidTokenError as exc:
            return f"Invalid token: {exc}."
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[cache_key] = expiry
        return None
