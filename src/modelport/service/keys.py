"""A service's keys and tokens: a regenerated key, named keys and their limits, a new token
secret, an access token, the header a caller sends.

Keys live in the spec (``ServiceSpec.deployment``; named keys as SHA-256 hashes in
``ServiceSpec.named_keys``); tokens are signed with the spec's secret by
:mod:`modelport.frontend.auth`, which the front end verifies them with. Every function here
returns a new spec; the caller stores it and hands it to the target, which applies it in place.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelport.errors import UserErrorException, WebserviceException
from modelport.frontend.routes import WINDOW_SECONDS, KeyLimits, NamedKey, QuotaWindow, key_digest
from modelport.names import check_key_name
from modelport.service.spec import ServiceSpec

if TYPE_CHECKING:
    from modelport.frontend.auth import Token


def with_new_key(spec: ServiceSpec, key: str, set_key: str | None) -> tuple[ServiceSpec, str]:
    """``spec`` with the ``Primary`` or ``Secondary`` key replaced by ``set_key`` (default: generated).

    Returns the new spec and which key changed (``"Primary"`` or ``"Secondary"``).
    """
    kind = str(key).capitalize() if key is not None else ""
    if kind not in ("Primary", "Secondary"):
        raise WebserviceException(
            f"Error, invalid value provided for key: {key}.\nValid options are: Primary, Secondary"
        )
    value = set_key or secrets.token_urlsafe(24)
    field = "primary_key" if kind == "Primary" else "secondary_key"
    deployment = spec.deployment.model_copy(update={field: value})
    return spec.model_copy(update={"deployment": deployment}), kind


def access_token(spec: ServiceSpec) -> Token:
    """A signed token for the service (token auth only)."""
    # Imported here: the signing library is loaded only by the commands that issue tokens.
    from modelport.frontend.auth import issue_token

    if spec.auth_mode != "token":
        raise WebserviceException(
            f"Service {spec.name} does not use token auth. Fix: deploy or update it with "
            "token_auth_enabled=True (tokenAuthEnabled in deploymentconfig.json), or use get_keys()."
        )
    return issue_token(bytes.fromhex(spec.token_secret), spec.name)


def authorization(spec: ServiceSpec) -> dict[str, str]:
    """The ``Authorization`` header a caller of the service sends (none without auth)."""
    mode = spec.auth_mode
    if mode == "key":
        return {"Authorization": f"Bearer {spec.deployment.primary_key}"}
    if mode == "token":
        return {"Authorization": f"Bearer {access_token(spec).access_token}"}
    return {}


# "20/s", "1200/min", "100000/day": a count and a unit (several spellings of each).
_PER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")
_UNITS: dict[str, QuotaWindow] = {
    **{spelling: "second" for spelling in ("s", "sec", "second")},
    **{spelling: "minute" for spelling in ("m", "min", "minute")},
    **{spelling: "hour" for spelling in ("h", "hr", "hour")},
    **{spelling: "day" for spelling in ("d", "day")},
}
NONE = "none"  # the value that removes a limit in update_key


def _per(field: str, text: str) -> tuple[float, QuotaWindow]:
    match = _PER.match(text.lower())
    unit = _UNITS.get(match.group(2).rstrip("s") or "s") if match else None
    if match is None or unit is None:
        raise UserErrorException(
            f"Invalid {field} {text!r}: write COUNT/UNIT with UNIT one of s, min, h, day, e.g. "
            f"{'20/s' if field == 'rate' else '100000/day'}."
        )
    return float(match.group(1)), unit


def parse_rate(text: str) -> float:
    """Requests per second from ``"20/s"``, ``"600/min"``, ``"1000/h"`` or ``"5000/day"``."""
    count, unit = _per("rate", text)
    if count <= 0:
        raise UserErrorException(f"Invalid rate {text!r}: the count must be above 0.")
    return count / WINDOW_SECONDS[unit]


def parse_quota(text: str) -> tuple[int, QuotaWindow]:
    """``(count, window)`` from ``"100000/day"``; the window is one second, minute, hour or day."""
    count, unit = _per("quota", text)
    if count < 1 or count != int(count):
        raise UserErrorException(f"Invalid quota {text!r}: the count must be a whole number of at least 1.")
    return int(count), unit


def key_limits(rate: str | None, burst: int | None, quota: str | None) -> KeyLimits:
    """The limits ``--rate``, ``--burst`` and ``--quota`` describe (``None``: no such limit)."""
    count, window = parse_quota(quota) if quota is not None else (None, None)
    return KeyLimits(
        rate=parse_rate(rate) if rate is not None else None, burst=burst, quota=count, window=window
    )


def _require_key_auth(spec: ServiceSpec) -> None:
    if spec.auth_mode != "key":
        mode = "no" if spec.auth_mode == "none" else spec.auth_mode
        raise WebserviceException(
            f"Service {spec.name} uses {mode} auth; named keys are checked only with key auth. "
            "Fix: update the service with auth_enabled=True (and token_auth_enabled=False) first."
        )


def _find(spec: ServiceSpec, name: str) -> NamedKey:
    for key in spec.named_keys:
        if key.name == name:
            return key
    known = ", ".join(key.name for key in spec.named_keys) or "none"
    raise WebserviceException(
        f"Service {spec.name} has no named key {name!r} (its named keys: {known}). "
        "Fix: list them with `modelport service keys list`.",
        status_code=404,
    )


def with_named_key(spec: ServiceSpec, name: str, limits: KeyLimits) -> tuple[ServiceSpec, str]:
    """``spec`` with a new named key; returns the new spec and the key's value (shown once, stored hashed)."""
    check_key_name(name)
    _require_key_auth(spec)
    if any(key.name == name for key in spec.named_keys):
        raise WebserviceException(
            f"Service {spec.name} already has a named key {name!r}. Fix: choose another name, or remove "
            "it first to replace its value.",
            status_code=409,
        )
    value = secrets.token_urlsafe(32)
    key = NamedKey(name, key_digest(value), limits)
    return spec.model_copy(update={"named_keys": (*spec.named_keys, key)}), value


def without_named_key(spec: ServiceSpec, name: str) -> ServiceSpec:
    """``spec`` without the named key ``name``."""
    _find(spec, name)
    return spec.model_copy(update={"named_keys": tuple(k for k in spec.named_keys if k.name != name)})


def with_key_limits(
    spec: ServiceSpec, name: str, rate: str | None, burst: int | str | None, quota: str | None
) -> ServiceSpec:
    """``spec`` with the limits of named key ``name`` changed: ``None`` keeps a limit, ``"none"``
    removes it (a rate removed takes its burst along)."""
    key = _find(spec, name)
    old = key.limits
    changes: dict[str, Any] = {}
    if rate is not None:
        changes["rate"] = None if rate == NONE else parse_rate(rate)
        if rate == NONE:
            changes["burst"] = None
    if burst is not None:
        changes["burst"] = None if burst == NONE else _burst(burst)
    if quota is not None:
        changes["quota"], changes["window"] = (None, None) if quota == NONE else parse_quota(quota)
    updated = replace(key, limits=replace(old, **changes))
    return spec.model_copy(
        update={"named_keys": tuple(updated if k.name == name else k for k in spec.named_keys)}
    )


def _burst(value: int | str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserErrorException(
            f"Invalid burst {value!r}: give a whole number of requests, or 'none'."
        ) from None


def describe(key: NamedKey) -> dict[str, Any]:
    """A named key as ``keys list`` shows it: name and limits, never the value or its hash."""
    limits = key.limits
    return {
        "name": key.name,
        "rate": f"{limits.rate:g}/s" if limits.rate is not None else None,
        "burst": limits.bucket_size if limits.rate is not None else None,
        "quota": f"{limits.quota}/{limits.window}" if limits.quota is not None else None,
    }


def with_new_token_secret(spec: ServiceSpec) -> ServiceSpec:
    """``spec`` with a new token-signing secret: every token issued so far stops verifying."""
    if spec.auth_mode != "token":
        raise WebserviceException(
            f"Service {spec.name} does not use token auth, so it has no tokens to revoke. Fix: rotate keys "
            "with regen_key() or remove named keys instead."
        )
    return spec.model_copy(update={"token_secret": secrets.token_hex(32)})
