"""Sets of local files stored in the artifact store: a model's files, a service's source folder.

Collecting keeps Azure ML's layout (a file is stored under its name, a folder under its name
with everything inside it); storing uploads each file content-addressed and, if anything fails,
removes the blobs this call created before re-raising.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from modelport.errors import WebserviceException
from modelport.workspace.artifacts import Progress
from modelport.workspace.blobs import discard_unreferenced_blobs

if TYPE_CHECKING:
    from modelport.workspace import Workspace


class MissingPathError(WebserviceException, FileNotFoundError):
    """A path to register or ship does not exist (a ``FileNotFoundError``, as in Azure ML)."""


@dataclass(frozen=True)
class LocalFile:
    """A file to store: where it is now, and its POSIX path in the stored layout."""

    local: Path
    stored: str  # e.g. "model.pkl" or "my_model/a/b.bin"
    size: int
    mode: int


@dataclass(frozen=True)
class StoredFile:
    """A stored file: its path in the layout and the blob that holds its content."""

    path: str
    digest: str
    size: int
    mode: int


def safe_relative(path: str, field: str, root_field: str) -> PurePosixPath:
    """``path`` as a relative POSIX path that cannot leave its root (no ``..``, absolute or NUL)."""
    pure = PurePosixPath(path.replace(os.sep, "/"))
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path or not pure.parts:
        raise WebserviceException(
            f"Invalid {field} entry {path!r}: it must be a relative path inside {root_field} (no '..')."
        )
    return pure


def collect_files(
    path: Path,
    field: str,
    child_paths: Sequence[str] | None = None,
    skip_dirs: frozenset[str] = frozenset(),
) -> list[LocalFile]:
    """The files of a file or folder in Azure ML's stored layout (docs/models.md); ``field`` names it."""
    if path.is_file():
        if child_paths:
            raise WebserviceException(f"child_paths can only be given when {field} is a folder.")
        stat = path.stat()
        return [LocalFile(path, path.name, stat.st_size, stat.st_mode)]
    selected: list[Path]
    if child_paths:
        selected = []
        for child in child_paths:
            candidate = path / safe_relative(str(child), "child_paths", field)
            if not candidate.exists():
                raise WebserviceException(
                    f"Invalid child_paths entry {child!r}: {candidate} does not exist under {field}."
                )
            selected.extend(_walk(candidate, field, skip_dirs) if candidate.is_dir() else [candidate])
    else:
        selected = _walk(path, field, skip_dirs)
    files = []
    for found in sorted(set(selected)):
        stat = found.stat()
        files.append(
            LocalFile(found, f"{path.name}/{found.relative_to(path).as_posix()}", stat.st_size, stat.st_mode)
        )
    if not files:
        raise WebserviceException(
            f"{field} {str(path)!r} is an empty folder. Fix: point it at a file or a folder holding files."
        )
    return files


def _walk(folder: Path, field: str, skip_dirs: frozenset[str]) -> list[Path]:
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames.clear()
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if d not in skip_dirs]
        for filename in filenames:
            path = Path(dirpath) / filename
            if not path.exists():
                raise MissingPathError(f"{path} is a broken symbolic link inside {field}.")
            found.append(path)
    return found


def check_readable(files: Iterable[LocalFile], what: str) -> None:
    """Fail before anything is uploaded, naming the unreadable file, rather than half-way through."""
    for source in files:
        try:
            with open(source.local, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise WebserviceException(
                f"Cannot read {what} {source.local}: {exc.strerror or exc}. Fix: check its permissions."
            ) from exc


def store_files(
    workspace: Workspace, files: Sequence[LocalFile], progress: Progress
) -> tuple[list[StoredFile], list[str]]:
    """Upload ``files``; return what was stored and the digests this call created.

    On failure the blobs created so far are removed (unless something else references them).
    """
    created: list[str] = []
    stored: list[StoredFile] = []
    try:
        for source in files:
            blob = workspace.artifact_store.put_file(source.local, progress)
            if blob.created:
                created.append(blob.digest)
            stored.append(StoredFile(source.stored, blob.digest, source.size, source.mode))
    except BaseException:
        discard_unreferenced_blobs(workspace, created)
        raise
    return stored, created


def restore_collected(
    workspace: Workspace, files: Sequence[LocalFile], stored: Sequence[StoredFile], created: list[str]
) -> None:
    """Re-upload reused blobs that a concurrent delete collected after :func:`store_files` saw them.

    Call inside the write transaction that records the files, after ``lock_blobs``: from then
    on no collection can run until the records are committed.
    """
    missing = {f.digest for f in stored} - set(created)
    missing = {d for d in missing if not workspace.artifact_store.exists(d)}
    for source, record in zip(files, stored, strict=True):
        if record.digest in missing:
            workspace.artifact_store.put_file(source.local)
            created.append(record.digest)
            missing.discard(record.digest)
