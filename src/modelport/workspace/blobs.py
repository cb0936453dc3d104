"""Garbage collection of content-addressed blobs that nothing references any more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, union

from modelport._notes import note
from modelport.workspace.tables import model_files, source_files

if TYPE_CHECKING:
    from modelport.workspace import Workspace


def discard_unreferenced_blobs(workspace: Workspace, digests: Sequence[str]) -> None:
    """Remove the given blobs unless a model or a service's source still references them.

    Runs under the blob lock (see ``MetadataStore.lock_blobs``) so that a registration reusing
    one of these blobs cannot slip in between the check and the removal. Failures to remove are
    reported, not raised: the data is safe either way, only space is lost.
    """
    if not digests:
        return
    wanted = list(set(digests))
    with workspace.metadata_store.write() as conn:
        workspace.metadata_store.lock_blobs(conn)
        referenced = set(
            conn.execute(
                union(
                    select(model_files.c.digest).where(model_files.c.digest.in_(wanted)),
                    select(source_files.c.digest).where(source_files.c.digest.in_(wanted)),
                )
            ).scalars()
        )
        orphans = [d for d in dict.fromkeys(digests) if d not in referenced]
        workspace.artifact_store.delete_many(
            orphans, lambda d, exc: note(f"warning: could not remove unused blob {d[:12]}: {exc}")
        )
