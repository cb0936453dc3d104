"""What the front end needs to know about each service: the routing table its owner pushes.

The owner (the local agent, or the in-cluster controller) builds one :class:`ServiceRoute` per
service from the desired and observed state and replaces the whole table with
``FrontEnd.set_routes`` whenever something changes (a replica became ready, keys rotated, a
service was deleted). Replicas absent from the new table receive no new requests; requests
already in flight on them finish (``FrontEnd.in_flight(replica_id)`` tells when they have).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from modelport.errors import UserErrorException

AuthMode = Literal["none", "key", "token"]
QuotaWindow = Literal["second", "minute", "hour", "day"]
WINDOW_SECONDS: dict[QuotaWindow, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class ReplicaTarget:
    """One ready replica: the scoring server of ``modelport serve`` at ``base_url``."""

    replica_id: str
    base_url: str  # e.g. "http://127.0.0.1:43121" (routes /score, /swagger.json, / on it)
    # The same server's Unix socket (a path, or "@name"), when the front end shares its machine:
    # requests then skip the loopback TCP stack, which is most of the extra hop's cost.
    unix_socket: str | None = None


@dataclass(frozen=True)
class KeyLimits:
    """A named key's limits: a token bucket (``rate`` per second, ``burst``) and a quota per window.

    ``None`` means no such limit. ``burst`` defaults to one second's worth of ``rate`` (at least 1).
    """

    rate: float | None = None
    burst: int | None = None
    quota: int | None = None
    window: QuotaWindow | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise UserErrorException(f"rate must be above 0 requests per second, got {self.rate}.")
        if self.burst is not None and (self.rate is None or self.burst < 1):
            raise UserErrorException(
                f"burst ({self.burst}) needs a rate and must be at least 1. Fix: give a rate with it."
            )
        bad_window = self.window is not None and self.window not in WINDOW_SECONDS
        bad_count = self.quota is not None and self.quota < 1
        if bad_window or bad_count or (self.quota is None) != (self.window is None):
            raise UserErrorException(
                f"quota needs a count of at least 1 and a window (second, minute, hour or day); got "
                f"{self.quota} per {self.window}."
            )

    @property
    def bucket_size(self) -> int:
        """The burst, or one second's worth of the rate."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate or 1))


@dataclass(frozen=True)
class NamedKey:
    """A named key of a service (beyond Azure ML's two): its name, the SHA-256 of its value, its limits.

    Only the hash is stored and sent to the front end: the value is shown once, when it is made.
    """

    name: str
    sha256: str  # hex digest of the key's UTF-8 value
    limits: KeyLimits = field(default_factory=KeyLimits)

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or set(self.sha256) - set("0123456789abcdef"):
            raise UserErrorException(
                f"named key {self.name}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}."
            )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form (the keys Secret on a cluster, the auth digest)."""
        limits = {k: v for k, v in vars(self.limits).items() if v is not None}
        return {"name": self.name, "sha256": self.sha256, "limits": limits}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> NamedKey:
        """The key from :meth:`to_wire`'s form; ``KeyError``, ``TypeError``, ``ValueError`` or
        ``UserErrorException`` when it is not one."""
        limits = dict(data.get("limits") or {})
        return cls(str(data["name"]), str(data["sha256"]), KeyLimits(**limits))


def key_digest(key: str) -> str:
    """The SHA-256 (hex) under which a named key is stored and recognised (docs/decisions.md)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def named_keys_wire(keys: tuple[NamedKey, ...]) -> str:
    """The canonical JSON of a service's named keys (what the keys Secret holds, what the digest hashes)."""
    return json.dumps([key.to_wire() for key in keys], sort_keys=True, separators=(",", ":"))


def parse_named_keys(text: str) -> tuple[NamedKey, ...]:
    """The keys in :func:`named_keys_wire`'s form (empty text: none)."""
    return tuple(NamedKey.from_wire(item) for item in json.loads(text)) if text else ()


@dataclass(frozen=True)
class AuthPolicy:
    """How requests to a service authenticate: nothing, a key, or a signed token."""

    mode: AuthMode = "none"
    keys: tuple[str, ...] = ()  # primary and secondary key (mode "key")
    token_secret: bytes | None = None  # HS256 signing secret (mode "token")
    named_keys: tuple[NamedKey, ...] = ()  # mode "key": recognised by their hash, each with limits

    @cached_property
    def named_by_digest(self) -> dict[bytes, NamedKey]:
        """The named keys by the raw bytes of their SHA-256 (one dictionary lookup per request)."""
        return {bytes.fromhex(key.sha256): key for key in self.named_keys}


def auth_policy(
    mode: AuthMode,
    primary_key: str | None,
    secondary_key: str | None,
    token_secret: str,
    named_keys: tuple[NamedKey, ...] = (),
) -> AuthPolicy:
    """A service's policy from its stored form (spec, or the keys Secret on a cluster).

    Unset keys are left out, so an empty key never matches; ``token_secret`` is hex.
    """
    keys = tuple(key for key in (primary_key, secondary_key) if key)
    return AuthPolicy(mode=mode, keys=keys, token_secret=bytes.fromhex(token_secret), named_keys=named_keys)


@dataclass(frozen=True)
class ServiceRoute:
    """Routing, admission and timeout settings of one service, with its ready replicas."""

    name: str
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    max_concurrent_per_replica: int = 1
    max_queue_wait_ms: int = 500
    max_queued_requests: int = 1024  # beyond this many waiting, 503 at once (bounds the memory held)
    scoring_timeout_ms: int = 60_000
    replicas: tuple[ReplicaTarget, ...] = ()


def service_route(
    name: str, auth: AuthPolicy, settings: Mapping[str, Any], replicas: tuple[ReplicaTarget, ...]
) -> ServiceRoute:
    """A service's route from its front-end settings (the service spec's ``frontend_settings``,
    Azure ML's JSON keys), whichever home the front end has; ``KeyError``, ``TypeError`` or
    ``ValueError`` when the settings are incomplete."""
    return ServiceRoute(
        name=name,
        auth=auth,
        max_concurrent_per_replica=int(settings["maxConcurrentRequestsPerContainer"]),
        max_queue_wait_ms=int(settings["maxQueueWaitMs"]),
        scoring_timeout_ms=int(settings["scoringTimeoutMs"]),
        replicas=replicas,
    )
