"""Which front-end replica makes the autoscaling decisions: a Lease election, as pure decisions.

Every replica serves traffic; exactly one, the holder of a ``coordination.k8s.io/v1`` Lease,
writes replica counts (two writers would each plan from their own view and fight). The Lease
record is ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` and
``leaseTransitions``; every write carries the ``resourceVersion`` it was decided from, so of two
replicas that decide at once the API server accepts one write and refuses the other (409), and
the loser re-reads. :mod:`~modelport.compute.kubernetes.frontend_leader` does the reads and
writes; this module only decides, from what was read and an injected monotonic clock.

The rules, each retry period (``RETRY_S``):

* no Lease → **create** it, held by this replica;
* held by this replica → **renew** (a new ``renewTime``);
* held by another, and the record last changed less than ``leaseDurationSeconds`` ago *by this
  replica's clock* → **follow**;
* held by nobody (released on a graceful stop), or unchanged for ``leaseDurationSeconds`` →
  **acquire** (``leaseTransitions`` + 1).

Expiry is measured from when this replica *saw* the record change, never from the
``renewTime`` written in it: that is another machine's wall clock, and a skew between the two
would shorten or stretch the lease. A holder counts itself leader only until ``renew_deadline_s``
after its last successful write, which is shorter than the lease: a holder cut off from the API
stops deciding before anyone else may take over, so two leaders never overlap as long as the
clocks run at the same rate (not the same time). Hand-over bounds: a leader that stops
gracefully releases the Lease, and another replica leads within one retry period; a leader that
dies without releasing is replaced within ``duration + retry`` periods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

LEASE_DURATION_S = 6  # leaseDurationSeconds: how long a silent holder keeps the Lease
RENEW_DEADLINE_S = 4.0  # a holder that could not renew for this long stops deciding
RETRY_S = 1.0  # how often each replica reads (and the holder renews) the Lease

Verb = Literal["create", "renew", "acquire", "follow"]


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of the Lease: who holds it, for how long, how often it changed hands."""

    holder: str  # "" when released
    duration_s: int
    transitions: int = 0


@dataclass(frozen=True)
class Observed:
    """The Lease as this replica last read it, and since when (its own monotonic clock) it is unchanged.

    ``record`` None: there is no Lease. ``renewed`` is the ``renewTime`` text, read only to notice
    that the holder renewed (a change), never compared with a clock.
    """

    record: LeaseRecord | None
    version: str | None  # resourceVersion: the precondition of the next write
    renewed: str | None
    since: float


@dataclass(frozen=True)
class Action:
    """What to do now: ``write`` (a record to store under ``version``), or only wait until ``expires``."""

    verb: Verb
    write: LeaseRecord | None
    version: str | None
    expires: float | None  # follow: when the holder's Lease runs out, unless it renews


def observe(
    previous: Observed | None,
    record: LeaseRecord | None,
    version: str | None,
    renewed: str | None,
    now: float,
) -> Observed:
    """The observation after a read at ``now``: its ``since`` moves only when the record changed."""
    if previous is not None and (previous.record, previous.renewed) == (record, renewed):
        return replace(previous, version=version)
    return Observed(record, version, renewed, now)


def decide(observed: Observed, now: float, identity: str, duration_s: int = LEASE_DURATION_S) -> Action:
    """The next step of replica ``identity`` after reading ``observed`` (rules in the module doc)."""
    record = observed.record
    if record is None:
        return Action("create", LeaseRecord(identity, duration_s, 0), None, None)
    if record.holder == identity:
        return Action("renew", replace(record, duration_s=duration_s), observed.version, None)
    expires = observed.since + record.duration_s
    if record.holder and now < expires:
        return Action("follow", None, None, expires)
    return Action(
        "acquire", LeaseRecord(identity, duration_s, record.transitions + 1), observed.version, None
    )


def release(observed: Observed, identity: str) -> LeaseRecord | None:
    """The record that hands the Lease over on a graceful stop; None when this replica does not hold it."""
    record = observed.record
    if record is None or record.holder != identity:
        return None
    return replace(record, holder="")


def leading(last_written: float | None, now: float, renew_deadline_s: float = RENEW_DEADLINE_S) -> bool:
    """Whether a holder whose last successful create/renew/acquire was at ``last_written`` may decide."""
    return last_written is not None and now - last_written < renew_deadline_s
