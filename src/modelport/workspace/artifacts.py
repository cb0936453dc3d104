"""Content-addressed artifact storage over fsspec: a local folder by default, or any ``s3://`` URL.

Blobs live at ``<root>/blobs/sha256/<2 hex>/<digest>``. A blob is never half-visible: on a
local folder it is written to ``<root>/tmp/`` while being hashed, fsynced and renamed into
place; on object stores it is hashed first and uploaded straight to its final key, where the
object appears only when the (multipart) upload completes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import fsspec
from fsspec.callbacks import Callback
from fsspec.implementations.local import LocalFileSystem

from modelport.errors import ArtifactStoreError

CHUNK_SIZE = 1 << 20
PIPELINE_CHUNK = 4 << 20
STALE_TEMP_SECONDS = 3600
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class Progress(Protocol):
    """Receives progress of long artifact operations (the CLI draws a bar from it)."""

    def start(self, description: str, total: int) -> None:
        """A phase begins; ``total`` bytes will be processed."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes were processed."""


class NoProgress:
    """The silent default."""

    def start(self, description: str, total: int) -> None:
        """Ignore the phase."""

    def advance(self, amount: int) -> None:
        """Ignore the bytes."""


@dataclass(frozen=True)
class StoredBlob:
    """The result of storing one file: its digest, its size and whether this call created the blob."""

    digest: str
    size: int
    created: bool


class _FsspecProgress(Callback):  # type: ignore[misc]  # fsspec ships no types: Callback is Any
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress

    def call(self, *args: Any, **kwargs: Any) -> None:
        return None

    def relative_update(self, inc: int = 1) -> None:
        super().relative_update(inc)
        self._progress.advance(inc)


def resolve_storage_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Expand ``"${VAR}"`` values from the environment and map modelport's S3 keys to s3fs's.

    Accepted keys: ``endpoint_url``, ``key``, ``secret``, ``region``, plus anything s3fs takes.
    Secrets can stay out of config files by writing ``"${AWS_SECRET_ACCESS_KEY}"``.
    """
    resolved = expand_environment_references(options)
    if "region" in resolved:
        resolved.setdefault("client_kwargs", {})["region_name"] = resolved.pop("region")
    return resolved


def expand_environment_references(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options with each ``"${VAR}"`` value replaced by that environment variable (keys as given)."""
    resolved: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if isinstance(value, str) and (match := _ENV_REF.match(value)):
            env_name = match.group(1)
            if env_name not in os.environ:
                raise ArtifactStoreError(
                    f"storage_options.{name} refers to environment variable {env_name}, which is not set. "
                    f"Fix: export {env_name}=... or put the value in the workspace config."
                )
            value = os.environ[env_name]
        resolved[name] = value
    return resolved


def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """SHA-256 and size of a file, read in fixed-size chunks (constant memory)."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            size += n
            if progress is not None:
                progress.advance(n)
    return digest.hexdigest(), size


def _fsync_dir(path: str) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_and_hash(src: io.RawIOBase, dst: BinaryIO, progress: Progress) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` reading each byte once, hashing in a second thread meanwhile.

    SHA-256 costs about as much as the copy itself; hashlib releases the GIL on large updates,
    so hashing chunk *n* while chunk *n* is written nearly halves the time on two cores. Two
    buffers alternate: a buffer is refilled only after its hash update has finished.
    """
    digest = hashlib.sha256()
    buffers = (bytearray(PIPELINE_CHUNK), bytearray(PIPELINE_CHUNK))
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelport-hash") as hasher:
        pending: Future[None] | None = None
        index = 0
        while True:
            buffer = buffers[index % 2]
            n = src.readinto(buffer)
            if not n:
                break
            chunk = memoryview(buffer)[:n]
            if pending is not None:
                pending.result()
            pending = hasher.submit(digest.update, chunk)
            dst.write(chunk)
            size += n
            progress.advance(n)
            index += 1
        if pending is not None:
            pending.result()
    return digest.hexdigest(), size


class ArtifactStore:
    """Stores and fetches blobs by SHA-256 under one fsspec URL."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **resolve_storage_options(storage_options))
        except (ImportError, ValueError, TypeError) as exc:
            raise ArtifactStoreError(
                f"Cannot open artifact_url {url!r}: {exc}. Fix: use a local folder or s3://bucket/prefix "
                "with storage_options endpoint_url/key/secret."
            ) from exc
        self.root = self.root.rstrip("/")
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def blob_path(self, digest: str) -> str:
        """Where the blob with ``digest`` lives in the store."""
        return f"{self.root}/blobs/sha256/{digest[:2]}/{digest}"

    def _error(self, action: str, exc: BaseException) -> ArtifactStoreError:
        return ArtifactStoreError(
            f"Artifact store {self.url!r} failed while {action}: {exc}. Nothing was kept. "
            "Fix: check the store is reachable and writable (credentials, free space), then retry."
        )

    def ensure_root(self) -> None:
        """Make sure the store can be written: create the folder, or the bucket if it is missing."""
        try:
            if self.is_local:
                self.fs.makedirs(self.root, exist_ok=True)
                return
            bucket = self.root.split("/", 1)[0]
            if not self.fs.exists(bucket):
                self.fs.mkdir(bucket)
        except Exception as exc:
            raise self._error("preparing the store", exc) from exc

    def exists(self, digest: str) -> bool:
        """True when the blob is stored."""
        try:
            return bool(self.fs.exists(self.blob_path(digest)))
        except Exception as exc:
            raise self._error("checking a blob", exc) from exc

    def put_file(self, local_path: Path, progress: Progress | None = None) -> StoredBlob:
        """Store one local file; identical content already in the store is not written again."""
        progress = progress or NoProgress()
        try:
            if self.is_local:
                return self._put_local(local_path, progress)
            return self._put_remote(local_path, progress)
        except ArtifactStoreError:
            raise
        except OSError as exc:
            if (
                isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError)
                and not Path(local_path).is_file()
            ):
                raise
            raise self._error(f"storing {local_path}", exc) from exc
        except Exception as exc:
            raise self._error(f"storing {local_path}", exc) from exc

    def _put_local(self, local_path: Path, progress: Progress) -> StoredBlob:
        tmp_dir = f"{self.root}/tmp"
        self.fs.makedirs(tmp_dir, exist_ok=True)
        self._remove_stale_temps(tmp_dir)
        tmp = f"{tmp_dir}/{uuid.uuid4().hex}.part"
        progress.start(f"storing {Path(local_path).name}", Path(local_path).stat().st_size)
        try:
            with open(local_path, "rb", buffering=0) as src, self.fs.open(tmp, "wb") as dst:
                hexdigest, size = _copy_and_hash(src, dst, progress)
                dst.flush()
                # Durable before the metadata row that points at it is committed.
                os.fsync(dst.fileno())
            final = self.blob_path(hexdigest)
            if self.fs.exists(final):
                self.fs.rm_file(tmp)
                return StoredBlob(hexdigest, size, created=False)
            self.fs.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            _fsync_dir(os.path.dirname(final))
            return StoredBlob(hexdigest, size, created=True)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)
            raise

    def _remove_stale_temps(self, tmp_dir: str) -> None:
        # Left behind only by a process killed mid-write; never visible as blobs.
        cutoff = time.time() - STALE_TEMP_SECONDS
        for entry in os.scandir(tmp_dir):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    def _put_remote(self, local_path: Path, progress: Progress) -> StoredBlob:
        size = Path(local_path).stat().st_size
        progress.start(f"hashing {Path(local_path).name}", size)
        hexdigest, size = hash_file(Path(local_path), progress)
        final = self.blob_path(hexdigest)
        if self.fs.exists(final):
            return StoredBlob(hexdigest, size, created=False)
        progress.start(f"uploading {Path(local_path).name}", size)
        self.fs.put_file(str(local_path), final, callback=_FsspecProgress(progress))
        return StoredBlob(hexdigest, size, created=True)

    def fetch(self, digest: str, dest: Path, mode: int | None = None) -> None:
        """Write the blob to ``dest`` atomically (a temporary file beside it, then rename)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            self.fs.get_file(self.blob_path(digest), str(tmp))
            if mode is not None:
                os.chmod(tmp, mode & 0o777)
            os.replace(tmp, dest)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, ArtifactStoreError):
                raise self._error(f"fetching blob {digest[:12]} to {dest}", exc) from exc
            raise

    def delete(self, digest: str) -> None:
        """Remove a blob (absent blobs are fine)."""
        path = self.blob_path(digest)
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error(f"deleting blob {digest[:12]}", exc) from exc
        if self.is_local:
            with contextlib.suppress(OSError):  # the prefix folder is removed once it is empty
                os.rmdir(os.path.dirname(path))

    def delete_many(self, digests: list[str], on_error: Callable[[str, Exception], None]) -> None:
        """Remove several blobs, reporting (not raising) each failure; used for best-effort cleanup."""
        for digest in digests:
            try:
                self.delete(digest)
            except Exception as exc:
                on_error(digest, exc)
