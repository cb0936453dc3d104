"""The leader election's decisions (``election.py``): pure, with an injected clock.

The API server's part — a write carrying a stale ``resourceVersion`` is refused — is played by
:class:`LeaseStore` below, a few lines with the same rule; the testbed test
(``test_frontend_testbed.py``) runs the real one.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelport.compute.kubernetes import election as e


@dataclass
class LeaseStore:
    """One Lease with the API server's optimistic concurrency: a write must name the current version."""

    record: e.LeaseRecord | None = None
    version: int = 0
    renewals: int = 0  # stands in for renewTime: changes on every write

    def read(self, previous: e.Observed | None, now: float) -> e.Observed:
        version = str(self.version) if self.record is not None else None
        return e.observe(previous, self.record, version, str(self.renewals), now)

    def write(self, record: e.LeaseRecord, version: str | None) -> bool:
        current = str(self.version) if self.record is not None else None
        if version != current:
            return False  # 409 Conflict
        self.record, self.version, self.renewals = record, self.version + 1, self.renewals + 1
        return True


class Replica:
    """One front end's election state: what it last saw and when it last wrote successfully."""

    def __init__(self, identity: str, store: LeaseStore) -> None:
        self.identity, self.store = identity, store
        self.observed: e.Observed | None = None
        self.last_written: float | None = None

    def step(self, now: float) -> e.Action:
        self.observed = self.store.read(self.observed, now)
        action = e.decide(self.observed, now, self.identity)
        if action.write is not None and self.store.write(action.write, action.version):
            if action.write.holder == self.identity:
                self.last_written = now
            self.observed = self.store.read(self.observed, now)
        return action

    def leading(self, now: float) -> bool:
        return e.leading(self.last_written, now)


def test_no_lease_is_created_held_by_the_first_replica() -> None:
    store = LeaseStore()
    a = Replica("a", store)
    assert a.step(0.0).verb == "create"
    assert store.record == e.LeaseRecord("a", e.LEASE_DURATION_S, 0)
    assert a.leading(0.0)


def test_holder_renews_and_others_follow_until_the_lease_expires() -> None:
    store = LeaseStore()
    a, b = Replica("a", store), Replica("b", store)
    a.step(0.0)
    follow = b.step(0.5)
    assert follow.verb == "follow" and follow.expires == 0.5 + e.LEASE_DURATION_S
    for now in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        assert a.step(now).verb == "renew"
        assert b.step(now + 0.5).verb == "follow"  # every renewal restarts b's count
        assert a.leading(now + 0.5) and not b.leading(now + 0.5)
    assert store.record is not None and store.record.transitions == 0


def test_a_silent_holder_is_replaced_after_the_lease_duration_by_the_follower_clock() -> None:
    store = LeaseStore()
    a, b = Replica("a", store), Replica("b", store)
    a.step(0.0)
    b.step(0.0)  # b sees the record change at 0.0
    # a stops renewing (killed, or cut off from the API). Until the duration has passed on b's
    # clock since b last saw a change, b follows.
    assert b.step(e.LEASE_DURATION_S - 0.1).verb == "follow"
    taken = b.step(e.LEASE_DURATION_S)
    assert taken.verb == "acquire"
    assert store.record == e.LeaseRecord("b", e.LEASE_DURATION_S, 1)
    assert b.leading(e.LEASE_DURATION_S)
    # a stopped deciding before b started: its renew deadline is shorter than the lease.
    assert not a.leading(e.RENEW_DEADLINE_S)
    assert e.RENEW_DEADLINE_S < e.LEASE_DURATION_S


def test_expiry_ignores_the_renew_time_written_by_another_clock() -> None:
    # The holder's renewTime may be far in the past or future (skewed clocks): only changes count.
    observed = e.observe(None, e.LeaseRecord("a", 6, 0), "1", "1999-01-01T00:00:00+00:00", now=100.0)
    assert e.decide(observed, 105.0, "b").verb == "follow"
    assert e.decide(observed, 106.0, "b").verb == "acquire"
    # The same record read again does not restart the count; a renewal does.
    again = e.observe(observed, e.LeaseRecord("a", 6, 0), "1", "1999-01-01T00:00:00+00:00", now=105.0)
    assert again.since == 100.0
    renewed = e.observe(again, e.LeaseRecord("a", 6, 0), "2", "1999-01-01T00:00:02+00:00", now=105.0)
    assert renewed.since == 105.0 and e.decide(renewed, 110.0, "b").verb == "follow"


def test_a_released_lease_is_taken_at_the_next_read() -> None:
    store = LeaseStore()
    a, b = Replica("a", store), Replica("b", store)
    a.step(0.0)
    b.step(0.1)
    assert a.observed is not None
    released = e.release(a.observed, "a")
    assert released is not None and store.write(released, a.observed.version)
    assert b.step(0.2).verb == "acquire"  # no wait for the lease duration
    assert store.record == e.LeaseRecord("b", e.LEASE_DURATION_S, 1)
    # Releasing what one does not hold writes nothing.
    assert e.release(a.store.read(None, 0.3), "a") is None


def test_of_two_replicas_taking_over_at_once_exactly_one_wins() -> None:
    store = LeaseStore()
    a, b, c = Replica("a", store), Replica("b", store), Replica("c", store)
    a.step(0.0)
    b.observed = store.read(None, 0.0)
    c.observed = store.read(None, 0.0)
    # a has died; b and c both decide from the same version at the same moment.
    later = float(e.LEASE_DURATION_S)
    b_action = e.decide(store.read(b.observed, later), later, "b")
    c_action = e.decide(store.read(c.observed, later), later, "c")
    assert b_action.verb == c_action.verb == "acquire" and b_action.version == c_action.version
    assert b_action.write is not None and c_action.write is not None
    assert store.write(b_action.write, b_action.version)
    assert not store.write(c_action.write, c_action.version)  # 409: stale resourceVersion
    # c re-reads and follows the winner.
    assert c.step(later + e.RETRY_S).verb == "follow"
    assert store.record is not None and store.record.holder == "b"


def test_two_replicas_creating_at_once_exactly_one_wins() -> None:
    store = LeaseStore()
    first = e.decide(store.read(None, 0.0), 0.0, "a")
    second = e.decide(store.read(None, 0.0), 0.0, "b")
    assert first.verb == second.verb == "create"
    assert first.write is not None and second.write is not None
    assert store.write(first.write, first.version)
    assert not store.write(second.write, second.version)  # 409 AlreadyExists


def test_leadership_lapses_without_a_successful_write() -> None:
    assert not e.leading(None, 0.0)
    assert e.leading(10.0, 10.0 + e.RENEW_DEADLINE_S - 0.01)
    assert not e.leading(10.0, 10.0 + e.RENEW_DEADLINE_S)


def test_at_most_one_replica_leads_at_any_moment_of_a_run_with_failures() -> None:
    # A deterministic schedule: replicas step in turn, a's writes start failing at t=20 (cut off
    # from the API), b dies at t=40. At every instant, at most one replica may decide, and after
    # each loss someone leads again within duration + retry.
    store = LeaseStore()
    replicas = [Replica(name, store) for name in "abc"]
    cut_off, dead = {"a": 20.0}, {"b": 40.0}
    t = 0.0
    leaderless_since: float | None = None
    while t < 60.0:
        for index, replica in enumerate(replicas):
            now = t + index * 0.1
            if now >= dead.get(replica.identity, 1e9):
                continue
            if now >= cut_off.get(replica.identity, 1e9):
                replica.observed = store.read(replica.observed, now)  # reads still work; writes fail
                continue
            replica.step(now)
        leaders = [r.identity for r in replicas if r.leading(t + 0.25)]
        assert len(leaders) <= 1, (t, leaders)
        if leaders:
            leaderless_since = None
        elif leaderless_since is None:
            leaderless_since = t
        else:
            assert t - leaderless_since <= e.LEASE_DURATION_S + e.RETRY_S, t
        t += e.RETRY_S
    assert store.record is not None and store.record.holder == "c" and store.record.transitions == 2
