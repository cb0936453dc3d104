"""What the front end needs to know about each service: the routing table its owner pushes.

The owner (the local agent, or the in-cluster controller) builds one :class:`ServiceRoute` per
service from the desired and observed state and replaces the whole table with
``FrontEnd.set_routes`` whenever something changes (a replica became ready, keys rotated, a
service was deleted). Replicas absent from the new table receive no new requests; requests
already in flight on them finish (``FrontEnd.in_flight(replica_id)`` tells when they have).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AuthMode = Literal["none", "key", "token"]


@dataclass(frozen=True)
class ReplicaTarget:
    """One ready replica: the scoring server of ``modelport serve`` at ``base_url``."""

    replica_id: str
    base_url: str  # e.g. "http://127.0.0.1:43121" (routes /score, /swagger.json, / on it)
    # The same server's Unix socket (a path, or "@name"), when the front end shares its machine:
    # requests then skip the loopback TCP stack, which is most of the extra hop's cost.
    unix_socket: str | None = None


@dataclass(frozen=True)
class AuthPolicy:
    """How requests to a service authenticate: nothing, a key, or a signed token."""

    mode: AuthMode = "none"
    keys: tuple[str, ...] = ()  # primary and secondary key (mode "key")
    token_secret: bytes | None = None  # HS256 signing secret (mode "token")


def auth_policy(
    mode: AuthMode, primary_key: str | None, secondary_key: str | None, token_secret: str
) -> AuthPolicy:
    """A service's policy from its stored form (spec, or the keys Secret on a cluster).

    Unset keys are left out, so an empty key never matches; ``token_secret`` is hex.
    """
    keys = tuple(key for key in (primary_key, secondary_key) if key)
    return AuthPolicy(mode=mode, keys=keys, token_secret=bytes.fromhex(token_secret))


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
