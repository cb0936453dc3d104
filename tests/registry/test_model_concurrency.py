"""Many processes registering one name at once get versions 1..N exactly (no gaps, no duplicates)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import select

from modelport.workspace.tables import models

PROCESSES = 8
REGISTRATIONS = 25


def _register_many(metadata_url: str, model_path: str, worker: int) -> list[int]:
    from modelport.registry.model import Model
    from modelport.workspace import Workspace

    ws = Workspace.get("conc", metadata_url=metadata_url)
    versions = []
    for i in range(REGISTRATIONS):
        # Half of the registrations reuse one content, half bring new content: both paths race.
        path = Path(model_path)
        if i % 2:
            path = path.with_name(f"w{worker}-{i}.bin")
            path.write_bytes(f"{worker}-{i}".encode())
        versions.append(Model.register(ws, path, "contended").version)
    return versions


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite-local", "postgresql-local"])
def test_parallel_registrations_get_versions_1_to_200(
    workspace_factory, backend: str, tmp_path: Path
) -> None:
    ws = workspace_factory(backend, name="conc")
    model = tmp_path / "shared.bin"
    model.write_bytes(b"shared content")
    url = ws.metadata_store.url
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(_register_many, [(url, str(model), w) for w in range(PROCESSES)])
    returned = sorted(v for result in results for v in result)
    assert returned == list(range(1, PROCESSES * REGISTRATIONS + 1))
    with ws.metadata_store.read() as conn:
        stored = sorted(conn.execute(select(models.c.version).where(models.c.name == "contended")).scalars())
    assert stored == returned
    # Each process saw its own versions increase.
    for result in results:
        assert result == sorted(result)
