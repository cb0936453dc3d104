"""Two machines on one shared workspace database (PostgreSQL): each machine's agent runs only the
local services deployed from that machine, and neither touches the other's scoring URI.

The two machines are simulated on this host as two ``MODELPORT_HOME`` folders with two machine ids
(``MODELPORT_MACHINE_ID``): each has its own agent, lock, state folder and front end, exactly as two
hosts would; only their loopback is shared, which the test does not rely on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelport.compute.local.driver import LocalDriver, paths_for
from modelport.config import InferenceConfig
from modelport.errors import WebserviceException
from modelport.service.deploy import deploy
from modelport.service.webservice import Webservice
from tests.clirun import modelport

# Answers with the MODELPORT_HOME of the agent that started the replica: which machine serves it.
WHERE_SCORE = textwrap.dedent(
    """
    import os


    def init():
        pass


    def run(raw_data):
        return {"home": os.environ["MODELPORT_HOME"]}
    """
)


@pytest.fixture
def machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """``on("a")`` / ``on("b")``: act as machine a or b; both agents are stopped at teardown."""
    homes = {key: tmp_path / f"home-{key}" for key in ("a", "b")}
    started: list = []

    @contextmanager
    def on(key: str) -> Iterator[Path]:
        monkeypatch.setenv("MODELPORT_HOME", str(homes[key]))
        monkeypatch.setenv("MODELPORT_MACHINE_ID", f"machine-{key}")
        yield homes[key]

    yield on, started
    for key in homes:
        with on(key):
            for ws in started:
                LocalDriver().stop_agent(ws)


def test_each_machine_runs_only_its_own_local_services(machines, workspace_factory, tmp_path) -> None:
    on, started = machines
    ws = workspace_factory("postgresql-local", name="shared")
    started.append(ws)
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text(WHERE_SCORE)
    config = InferenceConfig(entry_script="score.py", source_directory=str(source))

    with on("a") as home_a:
        service_a = deploy(ws, "svc-a", [], config)
        service_a.wait_for_deployment()
        uri_a = service_a.scoring_uri
        assert service_a.run("{}") == {"home": str(home_a)}
    with on("b") as home_b:
        service_b = deploy(ws, "svc-b", [], config)
        service_b.wait_for_deployment()
        assert service_b.run("{}") == {"home": str(home_b)}
        assert service_b.scoring_uri != uri_a  # b's own front end
        listed = {s.name: s.serialize()["machine"] for s in Webservice.list(ws)}
        assert listed == {"svc-a": f"{service_a.machine}", "svc-b": f"{service_b.machine}"}
        assert "machine-a" in listed["svc-a"] and "machine-b" in listed["svc-b"]
        ws.write_config(path=tmp_path)
        table = modelport("service", "list", cwd=tmp_path).stdout
        rows = {line.split()[1]: line for line in table.splitlines() if "svc-" in line}
        assert "machine" in table and "machine-a" in rows["svc-a"] and "machine-b" in rows["svc-b"]
        # b's agent has run passes over both services by now: it materialised only its own.
        assert not (paths_for(ws).service_dir("svc-a")).exists()

        foreign = Webservice(ws, "svc-a")
        assert foreign.scoring_uri == uri_a  # where it lives, not this machine's front end
        for operation in (
            lambda: foreign.run("{}"),
            foreign.get_logs,
            foreign.wait_for_deployment,
            lambda: foreign.update(description="moved?"),
            foreign.delete,
            lambda: deploy(ws, "svc-a", [], config, overwrite=True),
        ):
            with pytest.raises(WebserviceException, match="machine id machine-a"):
                operation()

    with on("a"):
        again = Webservice(ws, "svc-a")
        assert again.scoring_uri == uri_a
        assert again.state == "Healthy" and again.generation == 1
        assert again.run("{}") == {"home": str(home_a)}
        assert not (paths_for(ws).service_dir("svc-b")).exists()
        again.delete()
    with on("b"):
        Webservice(ws, "svc-b").delete()


def test_a_service_from_before_machines_is_claimed_by_exactly_one_agent(workspace_factory) -> None:
    # Rows written before migration 0004 have no machine; the first agent to run one claims it.
    from modelport.config.deployment import LocalDeploymentConfig
    from modelport.service import store
    from modelport.service.deploy import with_keys
    from modelport.service.machine import Machine
    from modelport.service.spec import ServiceSpec, SourceRef

    ws = workspace_factory("postgresql-local", name="legacy")
    spec = ServiceSpec(
        name="old-svc",
        compute_type="local",
        compute_target="local",
        models=(),
        source=SourceRef(directory=None, entry_script="score.py", file_count=0),
        environment=None,
        deployment=with_keys(LocalDeploymentConfig().effective()),
        token_secret="ab" * 32,
    )
    store.write_service(ws, spec, [], create=True, message="written before machines were recorded")
    assert store.read_service(ws, "old-svc").machine_id is None

    assert store.claim_service(ws, "old-svc", "machine-a", "host-a") is True
    assert store.claim_service(ws, "old-svc", "machine-b", "host-b") is False
    record = store.read_service(ws, "old-svc")
    assert (record.machine_id, record.machine_name) == ("machine-a", "host-a")
    with pytest.raises(WebserviceException, match="machine host-a \\(machine id machine-a\\)"):
        store.write_service(
            ws, spec, [], create=True, overwrite=True, message="again", machine=Machine("machine-b", "host-b")
        )
