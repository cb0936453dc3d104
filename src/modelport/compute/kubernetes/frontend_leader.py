"""The front end's leader election against the API: reads and writes the Lease that
:mod:`~modelport.compute.kubernetes.election` decides about.

One :class:`LeaderElection` per front-end process. Each retry period it reads the Lease, asks
``election.decide`` what to do and does it: a create, or a replace carrying the
``resourceVersion`` it decided from (a 409 means another replica wrote first; the next read
shows who). Any other API failure is logged and retried; leadership then lapses by itself after
``election.RENEW_DEADLINE_S`` without a successful write. On a graceful stop the holder writes
an empty ``holderIdentity``, so that another replica takes over at its next read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from modelport.compute.kubernetes import election
from modelport.compute.kubernetes.frontend_manifests import LEADER_LEASE_NAME, frontend_labels

log = logging.getLogger("modelport.frontend.leader")

CONFLICT = 409  # a write from a stale resourceVersion, or a create that lost the race


class LeaderElection:
    """Keeps this replica's view of the Lease current and holds it when the rules say so."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
        name: str = LEADER_LEASE_NAME,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.clock = clock
        self.observed: election.Observed | None = None
        self._last_written: float | None = None
        self._was_leading = False

    @property
    def is_leader(self) -> bool:
        """Whether this replica may make autoscaling decisions now."""
        return election.leading(self._last_written, self.clock())

    async def run(self) -> None:
        """Read, decide and write every retry period until cancelled."""
        while True:
            try:
                await self.step()
            except Exception as exc:  # the API is down or refuses: leadership lapses by itself
                log.warning("leader election: %s: %s", type(exc).__name__, exc)
            self._log_change()
            await asyncio.sleep(election.RETRY_S)

    async def step(self) -> election.Action:
        """One read of the Lease and, when the rules say so, one write."""
        try:
            lease: Lease | None = await self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            lease = None
        self.observed = _observe(self.observed, lease, self.clock())
        action = election.decide(self.observed, self.clock(), self.identity)
        if action.write is not None:
            taking = action.verb != "renew"
            await self._write(action.write, action.version, acquired=taking, previous=lease)
        return action

    async def release(self) -> None:
        """Hand the Lease over on a graceful stop (best effort: else it expires)."""
        if self.observed is None:
            return
        record = election.release(self.observed, self.identity)
        self._last_written = None
        if record is None:
            return
        try:
            await self._write(record, self.observed.version, acquired=False, previous=None)
            log.info("released the leader lease %s/%s", self.namespace, self.name)
        except Exception as exc:
            log.warning("could not release the leader lease: %s: %s", type(exc).__name__, exc)
        self._last_written = None

    async def _write(
        self, record: election.LeaseRecord, version: str | None, acquired: bool, previous: Lease | None
    ) -> None:
        now = datetime.now(UTC)
        kept = previous.spec.acquireTime if previous is not None and previous.spec is not None else None
        spec = LeaseSpec(
            holderIdentity=record.holder,
            leaseDurationSeconds=record.duration_s,
            leaseTransitions=record.transitions,
            acquireTime=now if acquired or kept is None else kept,
            renewTime=now,
        )
        metadata = ObjectMeta(
            name=self.name, namespace=self.namespace, labels=frontend_labels(), resourceVersion=version
        )
        started = self.clock()
        try:
            if version is None:
                stored = await self.client.create(Lease(metadata=metadata, spec=spec))
            else:
                stored = await self.client.replace(Lease(metadata=metadata, spec=spec))
        except ApiError as exc:
            if exc.status.code != CONFLICT:
                raise
            return  # another replica wrote first: the next read shows the winner
        if record.holder == self.identity:
            # Measured from before the write: the API may have stored it at any moment since.
            self._last_written = started
        self.observed = _observe(self.observed, stored, self.clock())

    def _log_change(self) -> None:
        leading = self.is_leader
        if leading != self._was_leading:
            holder = self.observed.record.holder if self.observed and self.observed.record else ""
            if leading:
                log.info("leading: this replica (%s) makes the autoscaling decisions", self.identity)
            else:
                log.info("not leading: the autoscaling decisions are %s's", holder or "nobody's yet")
            self._was_leading = leading


def _observe(previous: election.Observed | None, lease: Lease | None, now: float) -> election.Observed:
    if lease is None or lease.spec is None:
        return election.observe(previous, None, None, None, now)
    spec = lease.spec
    record = election.LeaseRecord(
        spec.holderIdentity or "",
        spec.leaseDurationSeconds or election.LEASE_DURATION_S,
        spec.leaseTransitions or 0,
    )
    renewed = spec.renewTime.isoformat() if spec.renewTime is not None else None
    version = lease.metadata.resourceVersion if lease.metadata is not None else None
    return election.observe(previous, record, version, renewed, now)
