"""Fixtures shared by the whole suite: isolated MODELPORT_HOME, real database and S3 servers,
and workspaces on each supported combination of metadata and artifact store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import PostgresServer, S3Server, postgres_server, s3_server

# Every workspace-backed test runs on each of these: the embedded default, the team database
# with local artifacts, and object storage.
BACKENDS = ("sqlite-local", "postgresql-local", "sqlite-s3")


@pytest.fixture(autouse=True)
def modelport_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own MODELPORT_HOME so that workspace indexes never leak between tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """The session's S3-protocol server."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with s3_server() as server:
        yield server


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workspace_factory(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Create workspaces on a given backend: ``workspace_factory("postgresql-s3", name="ws")``."""
    from modelport import Workspace

    def make(backend: str = "sqlite-local", name: str = "ws", path: Path | None = None) -> Workspace:
        metadata_kind, artifact_kind = backend.split("-")
        kwargs: dict[str, object] = {}
        if metadata_kind == "postgresql":
            server: PostgresServer = request.getfixturevalue("pg")
            kwargs["metadata_url"] = server.create_database(_unique("ws_"))
        if artifact_kind == "s3":
            s3srv: S3Server = request.getfixturevalue("s3")
            kwargs["artifact_url"] = f"s3://{_unique('bucket-')}/artifacts"
            kwargs["storage_options"] = s3srv.storage_options()
        folder = path or tmp_path / _unique("ws-")
        return Workspace.create(name, path=folder, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each supported metadata/artifact combination in turn."""
    return str(request.param)


@pytest.fixture
def workspace(workspace_factory, backend: str):  # type: ignore[no-untyped-def]
    """A fresh workspace on each backend."""
    return workspace_factory(backend)
