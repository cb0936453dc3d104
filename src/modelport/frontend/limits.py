"""Per-key rate limits and quotas (docs/frontend.md, "Named keys, rate limits and quotas"), deterministic.

**Rate: a token bucket.** The bucket holds at most ``burst`` tokens and refills at ``rate`` per
second: ``tokens(t) = min(burst, tokens(t₀) + (t − t₀) × rate)``. A request takes one token; with
less than one left it is refused with ``Retry-After = ⌈(1 − tokens) ÷ rate⌉`` seconds (at least
1: the header counts whole seconds), the time until a token is back. Over any interval of ``T``
seconds a key gets at most ``burst + rate × T`` requests.

**Quota: a fixed window.** Windows are aligned on the clock (a ``day`` is a UTC day, as epoch
seconds are): window ``w = ⌊t ÷ length⌋``. At most ``quota`` requests are admitted per window;
beyond that every request is refused until the window ends, ``Retry-After = ⌈end − t⌉``.

The quota is checked first and a request refused for its rate does not count against the quota
(it was not served). Time comes only from the ``now`` the caller passes (epoch seconds), so the
same calls always give the same answers; a clock that steps back refills nothing.

Each front-end process keeps its own counts: with ``N`` front-end replicas a key gets at most
``N`` times its limits (docs/decisions.md, "Key limits per front-end replica").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from modelport.frontend.routes import WINDOW_SECONDS, KeyLimits

Outcome = Literal["admitted", "rate_limited", "quota_exceeded"]


@dataclass(frozen=True)
class Admission:
    """Whether one request of a key may pass; when not, why and after how many seconds to retry."""

    outcome: Outcome
    retry_after_s: int = 0
    message: str = ""

    @property
    def admitted(self) -> bool:
        """The request may pass."""
        return self.outcome == "admitted"


ADMITTED = Admission("admitted")


class KeyLimiter:
    """The token bucket and quota window of one named key."""

    __slots__ = ("_last", "_tokens", "_used", "_window", "limits", "name")

    def __init__(self, name: str, limits: KeyLimits) -> None:
        self.name = name
        self.limits = limits
        self._tokens = float(limits.bucket_size)  # a new key may burst at once
        self._last: float | None = None
        self._window = -1  # index of the quota window ``_used`` counts
        self._used = 0

    def admit(self, now: float) -> Admission:
        """Take one request at ``now`` (epoch seconds), or say why not and when to retry."""
        limits = self.limits
        if limits.quota is not None and limits.window is not None:
            length = WINDOW_SECONDS[limits.window]
            window = int(now // length)
            if window != self._window:
                self._window, self._used = window, 0
            if self._used >= limits.quota:
                retry = max(1, math.ceil((window + 1) * length - now))
                return Admission(
                    "quota_exceeded",
                    retry,
                    f"Quota exceeded for key {self.name}: {limits.quota} requests per {limits.window}; "
                    f"the window resets in {retry} s.",
                )
        if limits.rate is not None:
            if self._last is not None and now > self._last:
                self._tokens = min(limits.bucket_size, self._tokens + (now - self._last) * limits.rate)
            self._last = now if self._last is None else max(self._last, now)
            if self._tokens < 1.0:
                retry = max(1, math.ceil((1.0 - self._tokens) / limits.rate))
                return Admission(
                    "rate_limited",
                    retry,
                    f"Rate limit exceeded for key {self.name}: {limits.rate:g} requests per second "
                    f"(burst {limits.bucket_size}); retry after {retry} s.",
                )
            self._tokens -= 1.0
        if limits.quota is not None:
            self._used += 1
        return ADMITTED


class KeyLimiters:
    """The limiters of one front end's named keys, by service and key name.

    :meth:`configure` follows the routing table: a key whose limits did not change keeps its
    counts (a table push must not refill buckets), a changed or new key starts afresh, a removed
    key is forgotten.
    """

    def __init__(self) -> None:
        self._limiters: dict[tuple[str, str], KeyLimiter] = {}

    def configure(self, limits: dict[tuple[str, str], KeyLimits]) -> None:
        """Keep limiters for exactly these ``(service, key name)`` pairs with these limits."""
        kept: dict[tuple[str, str], KeyLimiter] = {}
        for pair, wanted in limits.items():
            limiter = self._limiters.get(pair)
            kept[pair] = (
                limiter if limiter is not None and limiter.limits == wanted else KeyLimiter(pair[1], wanted)
            )
        self._limiters = kept

    def admit(self, service: str, key: str, now: float) -> Admission:
        """:meth:`KeyLimiter.admit` of the key (admitted when it has no limiter: no limits)."""
        limiter = self._limiters.get((service, key))
        return ADMITTED if limiter is None else limiter.admit(now)
