"""Fixtures of the front-end tests: replica processes, the gate, a front end, request threads."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.support import Gate, ReplicaFactory, ReplicaProcess


@pytest.fixture(scope="session")
def replica_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the replicas' logs and the gate's files."""
    return tmp_path_factory.mktemp("frontend")


@pytest.fixture(scope="session")
def replicas(replica_root: Path) -> Iterator[ReplicaFactory]:
    """Starts replica processes; all are stopped at the end of the session."""
    factory = ReplicaFactory(replica_root)
    yield factory
    for replica in factory.started:
        replica.stop()


@pytest.fixture(scope="session")
def pair(replicas: ReplicaFactory) -> tuple[ReplicaProcess, ReplicaProcess]:
    """Two long-lived replicas with four workers each (so they can run requests concurrently)."""
    return replicas.start("r1", workers=4), replicas.start("r2", workers=4)


@pytest.fixture
def gate(replica_root: Path) -> Gate:
    """The release switch of blocked run() calls."""
    return Gate(replica_root)


@pytest.fixture
def frontend() -> Iterator[BackgroundFrontEnd]:
    """A front end on loopback with an empty routing table."""
    with BackgroundFrontEnd() as running:
        yield running


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for requests that must be in flight at the same time."""
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor
