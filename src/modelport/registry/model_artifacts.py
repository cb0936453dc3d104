"""A model version's files in the artifact store: uploading a file or folder, writing it back out.

Files keep Azure ML's layout (a file under its name, a folder under its name with everything
inside it; :mod:`modelport.workspace.filesets`) and are stored content-addressed, so identical
content is stored once. The version's manifest digest identifies its content as a whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import WebserviceException
from modelport.workspace.artifacts import NoProgress, Progress
from modelport.workspace.filesets import (
    LocalFile,
    MissingPathError,
    StoredFile,
    check_readable,
    collect_files,
    store_files,
)

if TYPE_CHECKING:
    from modelport.workspace import Workspace


class _ByteProgress:
    """Forwards byte counts to the caller's progress, ignoring the store's per-file phases."""

    def __init__(self, target: Progress) -> None:
        self._target = target

    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, amount: int) -> None:
        self._target.advance(amount)


def collect_model_files(
    model_path: str | os.PathLike[str], child_paths: Sequence[str] | None
) -> list[LocalFile]:
    """The files to register from ``model_path``, each checked readable before anything is uploaded."""
    path = Path(model_path)
    if not path.exists():
        raise MissingPathError(
            f"model_path {str(model_path)!r} does not exist (resolved against {os.getcwd()}). Fix: pass "
            "the path of the model file or folder."
        )
    files = collect_files(path, "model_path", child_paths)
    check_readable(files, "model file")
    return files


def upload_model_files(
    workspace: Workspace, files: Sequence[LocalFile], description: str, progress: Progress | None
) -> tuple[list[StoredFile], list[str]]:
    """Store ``files``, reporting bytes to ``progress``; return what was stored and the digests created."""
    store = workspace.artifact_store
    total = sum(f.size for f in files)
    progress = progress or NoProgress()
    # A remote store reads each file twice: once to hash it, once to upload it.
    progress.start(description, total * (1 if store.is_local else 2))
    return store_files(workspace, files, _ByteProgress(progress))


def manifest_digest(stored: Sequence[StoredFile]) -> str:
    """SHA-256 of the version's (path, digest, size) list: equal content, equal digest."""
    canonical = json.dumps(sorted((f.path, f.digest, f.size) for f in stored), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def download_model_files(workspace: Workspace, files: Sequence[Any], target: Path, exist_ok: bool) -> None:
    """Write the stored ``files`` (rows of path, digest, mode) under ``target`` with their layout.

    Files are fetched into a staging folder first, so a failure part-way leaves ``target`` as it
    was.
    """
    clashes = [str(target / f.path) for f in files if (target / f.path).exists()]
    if clashes and not exist_ok:
        raise WebserviceException(
            "File already exists. To overwrite, set exist_ok to True. "
            f"Existing: {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''}"
        )
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".modelport-download-{uuid.uuid4().hex[:12]}"
    try:
        for f in files:
            workspace.artifact_store.fetch(f.digest, staging / f.path, f.mode)
        for f in files:
            destination = target / f.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.is_dir():
                raise WebserviceException(f"Cannot overwrite folder {destination} with a model file.")
            os.replace(staging / f.path, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def file_urls(workspace: Workspace, files: Sequence[Any]) -> dict[str, str]:
    """Stored path → a URL the file can be read from (presigned for object stores)."""
    store = workspace.artifact_store
    urls: dict[str, str] = {}
    for f in files:
        blob = store.blob_path(f.digest)
        urls[f.path] = f"file://{blob}" if store.is_local else store.fs.sign(blob)
    return urls
