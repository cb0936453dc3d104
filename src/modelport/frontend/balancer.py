"""Admission of one service's requests: least-outstanding-requests choice, per-replica cap, FIFO queue.

A request takes a slot on the ready replica with the fewest requests in flight, among those
below ``max_concurrent_per_replica`` (ties rotate, so that idle replicas share sequential
traffic). When every replica is full it waits in a FIFO queue for at most ``max_queue_wait_ms``;
a freed slot goes to the oldest waiter. No ready replica, a full queue or a wait that runs out
→ :class:`Overloaded` (the front end answers 503). The counts are kept here, in the event loop,
so that ``in_flight`` per replica and the load sample for the autoscaler cost nothing to read.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from modelport.errors import WebserviceException
from modelport.frontend.autoscaler import LoadSample
from modelport.frontend.routes import ReplicaTarget, ServiceRoute
from modelport.frontend.upstream import ReplicaClient

UNREACHABLE_PAUSE_S = 1.0


class Overloaded(WebserviceException):
    """The service cannot take the request now (answered 503)."""


class Replica:
    """A replica's connection pool and its requests in flight."""

    __slots__ = ("client", "in_flight", "paused_until", "target")

    def __init__(self, target: ReplicaTarget) -> None:
        self.target = target
        self.client = ReplicaClient(target.base_url, target.unix_socket)
        self.in_flight = 0
        self.paused_until = 0.0  # monotonic time before which it gets no request (it refused one)


# Receives the replica slot granted to a request, or why there is none.
Admit = Callable[[Replica | Overloaded], None]


class _Waiter:
    """A queued request: its callback until answered, and its expiry timer."""

    __slots__ = ("admit", "timer")

    def __init__(self, admit: Admit) -> None:
        self.admit: Admit | None = admit
        self.timer: asyncio.TimerHandle | None = None

    def answer(self, outcome: Replica | Overloaded) -> None:
        admit, self.admit = self.admit, None
        if self.timer is not None:
            self.timer.cancel()
        if admit is not None:
            admit(outcome)


class ServiceBalancer:
    """The ready replicas of one service, their load and the queue in front of them."""

    def __init__(self, route: ServiceRoute, replicas: list[Replica]) -> None:
        self.route = route
        self.replicas = replicas
        self.in_flight = 0
        self.queued = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._turn = 0
        self._busy_seconds = 0.0
        self._changed_at = time.monotonic()

    # -- table updates ----------------------------------------------------------------------------
    def update(self, route: ServiceRoute, replicas: list[Replica]) -> None:
        """Take a new route and replica list; queued requests go to any capacity it adds."""
        self.route = route
        self.replicas = replicas
        self._grant_waiting()

    def close(self) -> None:
        """The service left the table: queued requests fail at once."""
        self.replicas = []
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.admit is not None:
                self._count(queued=-1)
                waiter.answer(Overloaded(f"Service {self.route.name} was removed"))

    # -- admission -----------------------------------------------------------------------------
    def admit(self, admit: Admit) -> None:
        """Call ``admit`` with a replica slot (now, or after queueing) or with :class:`Overloaded`."""
        route = self.route
        if not self.replicas:
            admit(Overloaded(f"No ready replicas for service {route.name}"))
            return
        if not self.queued:
            replica = self._take()
            if replica is not None:
                admit(replica)
                return
        if self.queued >= route.max_queued_requests or route.max_queue_wait_ms <= 0:
            admit(Overloaded(f"Too many requests for service {route.name} (overloaded)"))
            return
        waiter = _Waiter(admit)
        waiter.timer = asyncio.get_running_loop().call_later(
            route.max_queue_wait_ms / 1000.0, self._expire, waiter
        )
        self._waiters.append(waiter)
        self._count(queued=1)

    def release(self, replica: Replica) -> None:
        """Give back the slot of a finished request."""
        replica.in_flight -= 1
        self._count(in_flight=-1)
        if self.queued:
            self._grant_waiting()

    def unreachable(self, replica: Replica) -> None:
        """Give back the slot of a request the replica refused, and skip the replica for a moment.

        A replica that died refuses connections until its owner takes it out of the table; without
        the pause, least-outstanding-requests would send it every other request (it is never busy).
        """
        replica.paused_until = time.monotonic() + UNREACHABLE_PAUSE_S
        self.release(replica)

    def _take(self) -> Replica | None:
        replicas = self.replicas
        count = len(replicas)
        if not count:
            return None
        cap = self.route.max_concurrent_per_replica
        start = self._turn % count
        self._turn += 1
        best: Replica | None = None
        now = 0.0
        for index in range(count):
            replica = replicas[(start + index) % count]
            if replica.paused_until:
                now = now or time.monotonic()
                if replica.paused_until > now:
                    continue
                replica.paused_until = 0.0
            if replica.in_flight < cap and (best is None or replica.in_flight < best.in_flight):
                best = replica
                if not replica.in_flight:
                    break
        if best is not None:
            best.in_flight += 1
            self._count(in_flight=1)
        return best

    def _grant_waiting(self) -> None:
        while self._waiters:
            if self._waiters[0].admit is None:  # expired; already uncounted
                self._waiters.popleft()
                continue
            replica = self._take()
            if replica is None:
                return
            self._count(queued=-1)
            self._waiters.popleft().answer(replica)

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.admit is not None:
            route = self.route
            self._count(queued=-1)
            waiter.answer(
                Overloaded(
                    f"Too many requests for service {route.name} (overloaded): no replica was free "
                    f"within max_request_wait_time ({route.max_queue_wait_ms} ms)"
                )
            )

    # -- load ------------------------------------------------------------------------------------
    def _count(self, in_flight: int = 0, queued: int = 0) -> None:
        now = time.monotonic()
        self._busy_seconds += (self.in_flight + self.queued) * (now - self._changed_at)
        self._changed_at = now
        self.in_flight += in_flight
        self.queued += queued

    def load(self) -> LoadSample:
        """The service's load now, for the autoscaler."""
        now = time.monotonic()
        busy = self._busy_seconds + (self.in_flight + self.queued) * (now - self._changed_at)
        return LoadSample(
            service=self.route.name,
            at=now,
            in_flight=self.in_flight,
            queued=self.queued,
            ready_replicas=len(self.replicas),
            max_concurrent_per_replica=self.route.max_concurrent_per_replica,
            busy_seconds=busy,
        )
