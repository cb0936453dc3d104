"""Load reports between front-end replicas through the API (the rules: ``load_reports.py``).

Each replica owns one Lease, ``modelport-frontend-load-<identity>`` in the front end's namespace,
labelled ``app.kubernetes.io/component: frontend-load``: every ``REPORT_S`` it applies its
reports into the ``modelport.io/load`` annotation (``renewTime`` marks each write), and reads
the others' by one list. A Lease rather than a ConfigMap: it is the object Kubernetes meant for
small, frequently renewed per-holder records, and the Role already grants it. On a graceful stop
a replica deletes its own; reports unchanged for ``FORGOTTEN_S`` (a replica killed outright)
are deleted by whichever replica notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from modelport.compute.kubernetes import load_reports as lr
from modelport.compute.kubernetes.frontend_manifests import FRONTEND_NAME, frontend_labels
from modelport.compute.kubernetes.objects import FIELD_MANAGER, LABEL_COMPONENT
from modelport.frontend.autoscaler import LoadSample

log = logging.getLogger("modelport.frontend.load")

ANNOTATION_LOAD = "modelport.io/load"
COMPONENT = "frontend-load"


class LoadReporter:
    """Writes this replica's load report and keeps the others' current."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        samples: Callable[[], Iterable[LoadSample]],
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.samples = samples
        self.clock = clock
        self.name = f"{FRONTEND_NAME}-load-{identity}"
        self.labels = {**frontend_labels(), LABEL_COMPONENT: COMPONENT}
        self._local = lr.LocalLoad()
        self._others: dict[str, lr.Seen] = {}
        self._unreadable: set[str] = set()

    def others(self, service: str) -> list[lr.Report]:
        """The other replicas' fresh reports of ``service``."""
        now = self.clock()
        return [reports[service] for reports in lr.fresh(self._others, now) if service in reports]

    async def run(self) -> None:
        """Write and read every ``REPORT_S`` until cancelled; failures are logged and retried."""
        while True:
            try:
                await self._write()
                await self._read()
            except Exception as exc:  # the API is down: the reports go stale, which is bounded
                log.warning("load reports: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(lr.REPORT_S)

    async def remove(self) -> None:
        """Delete this replica's report on a graceful stop (best effort: else it goes stale)."""
        try:
            await self.client.delete(Lease, self.name, namespace=self.namespace)
        except Exception as exc:
            log.warning("could not delete the load report %s: %s: %s", self.name, type(exc).__name__, exc)

    async def _write(self) -> None:
        reports = self._local.reports(self.samples())
        lease = Lease(
            metadata=ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels=self.labels,
                annotations={ANNOTATION_LOAD: lr.encode(reports)},
            ),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(lr.STALE_S),
                renewTime=datetime.now(UTC),
            ),
        )
        await self.client.apply(lease, field_manager=FIELD_MANAGER, force=True)

    async def _read(self) -> None:
        now = self.clock()
        current: dict[str, lr.Seen] = {}
        async for lease in self.client.list(Lease, namespace=self.namespace, labels=dict(self.labels)):
            name = lease.metadata.name if lease.metadata else None
            if name is None or name == self.name or lease.metadata is None:
                continue
            version = lease.metadata.resourceVersion or ""
            previous = self._others.get(name)
            if previous is not None and previous.version == version:
                current[name] = previous
            else:
                text = (lease.metadata.annotations or {}).get(ANNOTATION_LOAD, "{}")
                try:
                    reports = lr.decode(text)
                except ValueError as exc:
                    if name not in self._unreadable:  # once per report, not once a second
                        log.warning("load report %s left out: %s", name, exc)
                        self._unreadable.add(name)
                    continue
                self._unreadable.discard(name)
                current[name] = lr.Seen(version, now, reports)
            if now - current[name].since > lr.FORGOTTEN_S:
                await self._forget(name)
                del current[name]
        self._others = current

    async def _forget(self, name: str) -> None:
        try:
            await self.client.delete(Lease, name, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        log.info("deleted the load report %s: unchanged for %.0f s", name, lr.FORGOTTEN_S)


def combined(
    combiners: dict[str, lr.LoadCombiner], own: LoadSample, reporter: LoadReporter | None
) -> LoadSample:
    """``own`` plus the other replicas' load of the same service (``own`` alone without reports)."""
    if reporter is None:
        return own
    combiner = combiners.setdefault(own.service, lr.LoadCombiner())
    return combiner.combine(own, reporter.others(own.service))
