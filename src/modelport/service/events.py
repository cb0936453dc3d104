"""A service's history: what the workspace recorded and what the target kept, merged by time.

The workspace holds every operation, state change and (locally) every replica restart and
autoscale decision; a cluster keeps its own Events (the in-cluster front end's scale decisions,
the kubelet's kills and restarts), which no agent copies into the workspace. ``modelport service
events`` and ``Webservice.get_events`` read both, so the history is whole on either target.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelport.service import store as service_store

if TYPE_CHECKING:
    from modelport.service.driver import TargetDriver
    from modelport.workspace import Workspace

PAGE = 1000  # read_events' page size


def service_events(
    workspace: Workspace,
    name: str,
    driver: TargetDriver,
    kinds: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[service_store.ServiceEvent]:
    """The service's events of ``kinds`` (all when None) at or after ``since``, oldest first."""
    stored: list[service_store.ServiceEvent] = []
    after = 0
    while True:
        page = service_store.read_events(workspace, name, after, kinds, limit=PAGE)
        stored += page
        if len(page) < PAGE:
            break
        after = page[-1].id
    kept = [e for e in driver.target_events(workspace, name) if not kinds or e.kind in kinds]
    merged = [_aware(e) for e in (*stored, *kept)]
    if since is not None:
        merged = [e for e in merged if e.time >= _utc(since)]
    return sorted(merged, key=lambda e: e.time)


def event_json(event: service_store.ServiceEvent) -> dict[str, Any]:
    """An event as the SDK and ``-o json`` give it (``generation`` None: the target's own event,
    tied to no generation)."""
    return {
        "time": event.time.isoformat(),
        "generation": event.generation or None,
        "kind": event.kind,
        "message": event.message,
    }


def _utc(moment: datetime) -> datetime:
    # SQLite gives back the stored UTC times without their zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(event: service_store.ServiceEvent) -> service_store.ServiceEvent:
    return service_store.ServiceEvent(
        event.id, _utc(event.time), event.generation, event.kind, event.message, event.data
    )
