"""Failures injected part-way through registration and download leave nothing behind.

The failures are injected (a store that breaks after some bytes, a database error after the
upload, a file the OS refuses to read) because the real causes — a full disk, a dropped
connection, permissions as a non-root user — cannot be produced on demand here.
"""

from __future__ import annotations

import builtins
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from modelport.errors import ArtifactStoreError, WebserviceException
from modelport.registry.model import Model
from modelport.workspace.tables import model_files, models, version_counters


def _state(ws) -> tuple[int, int, int, list[str]]:
    with ws.metadata_store.read() as conn:
        n_models = conn.execute(select(func.count()).select_from(models)).scalar()
        n_files = conn.execute(select(func.count()).select_from(model_files)).scalar()
        n_counters = conn.execute(select(func.count()).select_from(version_counters)).scalar()
    store = ws.artifact_store
    blobs_root = f"{store.root}/blobs"
    blobs = sorted(store.fs.find(blobs_root)) if store.fs.exists(blobs_root) else []
    tmp_root = f"{store.root}/tmp"
    temps = sorted(store.fs.find(tmp_root)) if store.is_local and store.fs.exists(tmp_root) else []
    return n_models, n_files, n_counters, blobs + temps


@pytest.fixture
def big_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(3):
        (folder / f"part{i}.bin").write_bytes(os.urandom(3 * (1 << 20)))  # several chunks each
    return folder


def _break_store_after(ws, monkeypatch: pytest.MonkeyPatch, good_bytes: int) -> None:
    """Make the artifact store fail once ``good_bytes`` have been written."""
    written = {"n": 0}
    fs = ws.artifact_store.fs
    if ws.artifact_store.is_local:
        real_open = fs.open

        def failing_open(path, mode="rb", **kwargs):  # type: ignore[no-untyped-def]
            handle = real_open(path, mode, **kwargs)
            if "w" not in mode:
                return handle
            real_write = handle.write

            def write(data):  # type: ignore[no-untyped-def]
                written["n"] += len(data)
                if written["n"] > good_bytes:
                    raise OSError(28, "No space left on device")
                return real_write(data)

            handle.write = write
            return handle

        monkeypatch.setattr(fs, "open", failing_open)
    else:
        real_put = fs.put_file

        def failing_put(lpath, rpath, **kwargs):  # type: ignore[no-untyped-def]
            written["n"] += os.path.getsize(lpath)
            if written["n"] > good_bytes:
                raise ConnectionError("connection reset by peer")
            return real_put(lpath, rpath, **kwargs)

        monkeypatch.setattr(fs, "put_file", failing_put)


def test_store_failing_half_way_leaves_no_row_blob_or_version(
    workspace, big_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(workspace)
    _break_store_after(workspace, monkeypatch, good_bytes=4 * (1 << 20))
    with pytest.raises(ArtifactStoreError, match="failed while storing .*Nothing was kept"):
        Model.register(workspace, big_folder, "half")
    assert _state(workspace) == before
    monkeypatch.undo()
    # The version number was not consumed.
    assert Model.register(workspace, big_folder, "half").version == 1


def test_database_failure_after_upload_removes_the_uploaded_blobs(
    workspace, big_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(workspace)

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(workspace.metadata_store, "next_version", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        Model.register(workspace, big_folder, "dbfail")
    assert _state(workspace) == before


def test_failed_registration_keeps_blobs_other_models_use(
    workspace, big_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Model.register(workspace, big_folder, "keeper")
    kept = _state(workspace)

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(workspace.metadata_store, "next_version", broken)
    with pytest.raises(RuntimeError):
        Model.register(workspace, big_folder, "same-content")
    assert _state(workspace) == kept
    monkeypatch.undo()
    target = Model(workspace, "keeper").download(big_folder.parent / "check")
    assert (Path(target) / "part0.bin").read_bytes() == (big_folder / "part0.bin").read_bytes()


def test_unreadable_file_is_reported_before_anything_is_stored(
    workspace, big_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root (the test machines) chmod cannot make a file unreadable, so the OS refusal is injected.
    victim = big_folder / "part2.bin"
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(file) == victim:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("modelport.workspace.filesets.open", refusing_open, raising=False)
    before = _state(workspace)
    with pytest.raises(WebserviceException, match=r"Cannot read model file .*part2\.bin: Permission denied"):
        Model.register(workspace, big_folder, "unreadable")
    assert _state(workspace) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(workspace, big_folder: Path) -> None:
    (big_folder / "part1.bin").chmod(0)
    with pytest.raises(WebserviceException, match="Cannot read model file"):
        Model.register(workspace, big_folder, "unreadable")


def test_download_failing_part_way_leaves_target_untouched(
    workspace, big_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model.register(workspace, big_folder, "dl")
    calls = {"n": 0}
    real_fetch = workspace.artifact_store.fetch

    def flaky_fetch(digest, dest, mode=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise ArtifactStoreError("store unreachable")
        return real_fetch(digest, dest, mode)

    monkeypatch.setattr(workspace.artifact_store, "fetch", flaky_fetch)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(ArtifactStoreError):
        model.download(target)
    assert list(target.iterdir()) == []


def test_stale_temporary_files_of_killed_writers_are_collected(tmp_path: Path) -> None:
    from modelport.workspace import Workspace

    ws = Workspace.create("gc", path=tmp_path)
    tmp_dir = Path(ws.artifact_store.root) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    stale = tmp_dir / "dead.part"
    stale.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_dir / "live.part"
    fresh.write_bytes(b"another writer, still running")
    (tmp_path / "m.bin").write_bytes(b"m")
    Model.register(ws, tmp_path / "m.bin", "m")
    assert not stale.exists() and fresh.exists()
