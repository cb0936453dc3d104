"""Fixtures of the scoring-server tests: entry scripts, a trained iris model, running servers.

Every test talks to a real server process over real sockets. ``implementation`` is
``modelport`` (``modelport serve``) and, when ``MODELPORT_TEST_AZMLINFSRV=1``, also
``azmlinfsrv``: Azure ML's own server from PyPI, installed once into a separate virtualenv in the
pytest cache, so that the same black-box cases run against both. Tests of behaviour only modelport
has take ``modelport_only``. Readiness is polled with a deadline, never slept for.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.servers import free_port

READY_DEADLINE_S = 90.0
REFERENCE_ENV = "MODELPORT_TEST_AZMLINFSRV"
REFERENCE_PACKAGES = ("azureml-inference-server-http", "scikit-learn")
SCRIPTS_DIR = Path(__file__).with_name("scripts")
# The reference joins only when asked: installing it needs the package index.
IMPLEMENTATIONS = ["modelport", "azmlinfsrv"] if os.environ.get(REFERENCE_ENV) == "1" else ["modelport"]


@dataclass
class Server:
    """A scoring server process under test."""

    implementation: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    app_root: Path
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """A keep-alive HTTP client for this server (closed when the server stops)."""
        client = httpx.Client(base_url=self.url, timeout=timeout)
        self.clients.append(client)
        return client

    def log(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, deadline_s: float = READY_DEADLINE_S) -> int:
        """Wait for the process to exit by itself and return its status."""
        servers.wait_until(lambda: self.process.poll() is not None, "the server to exit", deadline_s)
        return int(self.process.returncode)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and its workers."""
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers of a killed front process must not outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class ServerFactory:
    """Starts servers of one implementation for entry scripts and cleans them up."""

    def __init__(self, implementation: str, command: list[str], root: Path) -> None:
        self.implementation = implementation
        self.command = command
        self.root = root
        self.servers: list[Server] = []

    def start(
        self,
        script: str | None,
        *,
        script_text: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        wait: bool = True,
        app_files: dict[str, str] | None = None,
    ) -> Server:
        """Start a server for ``scripts/<script>.py`` (or ``script_text``); wait until ``GET /`` answers."""
        app_root = Path(self._mkdtemp())
        for name, text in (app_files or {}).items():
            (app_root / name).parent.mkdir(parents=True, exist_ok=True)
            (app_root / name).write_text(text)
        argv = [*self.command]
        if script is not None or script_text is not None:
            text = script_text if script_text is not None else (SCRIPTS_DIR / f"{script}.py").read_text()
            (app_root / "score.py").write_text(textwrap.dedent(text))
            argv += ["--entry_script", str(app_root / "score.py")]
        port = free_port()
        argv += ["--port", str(port), *args]
        log_path = app_root / "server.log"
        full_env = {**os.environ, "AML_APP_ROOT": str(app_root), "PYTHONUNBUFFERED": "1", **(env or {})}
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                argv,
                cwd=app_root,
                env=full_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(self.implementation, process, port, log_path, app_root)
        self.servers.append(server)
        if wait:
            self.wait_ready(server)
        return server

    def _mkdtemp(self) -> str:
        import tempfile

        return tempfile.mkdtemp(prefix="app-", dir=self.root)

    @staticmethod
    def wait_ready(server: Server) -> None:
        """Poll ``GET /`` until it answers 200; fail with the server log if the process exits."""

        def answered() -> bool:
            if server.process.poll() is not None:
                pytest.fail(f"server exited with {server.process.returncode}:\n{server.log()}")
            try:
                return httpx.get(server.url + "/", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        servers.wait_until(answered, f"{server.implementation} to answer GET /", READY_DEADLINE_S)

    def stop_all(self) -> None:
        """Stop every server this factory started."""
        for server in self.servers:
            server.stop()


def _reference_command(cache: pytest.Cache) -> list[str]:
    home = cache.mkdir("azmlinfsrv-venv")
    binary = home / "bin" / "azmlinfsrv"
    if not binary.exists():
        venv.create(home, with_pip=True, clear=True)
        subprocess.run([str(home / "bin" / "pip"), "install", "-q", *REFERENCE_PACKAGES], check=True)
    return [str(binary)]


@pytest.fixture(scope="session", params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    """Which server the black-box tests run against (``azmlinfsrv`` only with the opt-in variable)."""
    return str(request.param)


@pytest.fixture(scope="session")
def servers_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding every server's app root and log."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def factory(
    implementation: str, request: pytest.FixtureRequest, servers_root: Path
) -> Iterator[ServerFactory]:
    """Starts servers of the implementation under test; all are stopped at the end of the session."""
    if implementation == "modelport":
        command = [sys.executable, "-m", "modelport", "serve"]
    else:
        command = _reference_command(request.config.cache)
    made = ServerFactory(implementation, command, servers_root)
    yield made
    made.stop_all()


@pytest.fixture
def modelport_only(implementation: str) -> None:
    """Skip a test of behaviour that only modelport has (extras beyond the Azure ML contract)."""
    if implementation != "modelport":
        pytest.skip("modelport-only behaviour (see docs/scoring.md)")


@pytest.fixture(scope="session")
def iris_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model-directory root holding ``iris/1/model.pkl``: a logistic regression trained on iris."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    root = tmp_path_factory.mktemp("azureml-models")
    (root / "iris" / "1").mkdir(parents=True)
    with (root / "iris" / "1" / "model.pkl").open("wb") as out:
        pickle.dump(model, out)
    return root


@pytest.fixture(scope="module")
def plain_server(factory: ServerFactory) -> Server:
    """A server running ``scripts/plain.py`` (undecorated run with request_headers)."""
    return factory.start("plain", env={"SCORING_TIMEOUT_MS": "600000"})
