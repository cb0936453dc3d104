"""The service lifecycle on the local target, end to end with real processes and sockets."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from modelport import Model
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import WebserviceException
from modelport.host import current as current_host
from modelport.service.webservice import Webservice
from tests.clirun import modelport
from tests.servers import wait_until
from tests.service.conftest import FAILING_INIT_SCORE, IRIS_SCORE

# The local-target suite: make test runs it again with the portable (non-Linux) paths forced.
pytestmark = pytest.mark.local_target

SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def iris_service(local_ws, iris_model, write_source):
    """A healthy key-auth iris service (autoscaling 1..2)."""
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(IRIS_SCORE)))
    deployment = local_deploy_configuration(
        auth_enabled=True, autoscale_enabled=True, autoscale_max_replicas=2
    )
    service = Model.deploy(local_ws, "iris-svc", [iris_model], config, deployment)
    service.wait_for_deployment(timeout_sec=120)
    return service


def test_deploy_reaches_healthy_and_scores_with_the_key(iris_service) -> None:
    assert iris_service.state == "Healthy" and iris_service.error is None
    assert iris_service.scoring_uri.endswith("/api/v1/service/iris-svc/score")
    assert iris_service.swagger_uri.endswith("/api/v1/service/iris-svc/swagger.json")
    assert iris_service.run(SAMPLE) == [0, 2]
    primary, secondary = iris_service.get_keys()
    for key in (primary, secondary):
        answer = httpx.post(
            iris_service.scoring_uri, content=SAMPLE, headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200 and answer.json() == [0, 2]
    assert httpx.post(iris_service.scoring_uri, content=SAMPLE).status_code == 401
    wrong = httpx.post(iris_service.scoring_uri, content=SAMPLE, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


@pytest.mark.skipif(sys.platform != "linux", reason="the test reads Linux's /proc/net/unix")
def test_front_end_reaches_the_replicas_over_their_unix_socket(iris_service) -> None:
    replica = next(r for r in iris_service.observed["replicas"] if r["state"] == "ready")
    name = replica["unixSocket"]
    if current_host().linux_features:
        assert name.startswith("@modelport-iris-svc-")
    else:  # the macOS path: a socket file, within the 104 bytes sun_path holds there
        assert Path(name).is_socket() and len(name.encode()) < 104
    assert iris_service.run(SAMPLE) == [0, 2]
    # /proc/net/unix lists the listener and every connection it accepted under the same name;
    # probes use the TCP port, so an accepted one is the front end's.
    with open("/proc/net/unix") as table:
        entries = [line for line in table if line.rstrip().endswith(name)]
    assert len(entries) >= 2, entries


def test_print_in_run_reaches_get_logs_without_a_flush(local_ws, write_source) -> None:
    """Azure ML users debug with print() in run(): the replica's output is unbuffered."""
    script = "def init():\n    pass\n\n\ndef run(raw):\n    print('run() saw', raw)\n    return 'ok'\n"
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(script)))
    service = Model.deploy(local_ws, "printer", [], config, local_deploy_configuration())
    service.wait_for_deployment(timeout_sec=120)
    assert service.run("marker-7d1f") == "ok"
    wait_until(lambda: "run() saw marker-7d1f" in service.get_logs(), "run()'s print() in get_logs()", 30)
    service.delete()


def test_state_list_serialize_and_logs(local_ws, iris_service) -> None:
    again = Webservice(local_ws, "iris-svc")
    assert again.state == "Healthy" and again.compute_type == "Local"
    assert [s.name for s in Webservice.list(local_ws, model_name="iris")] == ["iris-svc"]
    assert Webservice.list(local_ws, model_name="other") == []
    data = again.serialize()
    assert data["models"] == ["iris:1"] and data["authEnabled"] is True
    assert data["deploymentStatus"]["readyReplicas"] >= 1
    assert "modelport scoring server listening" in again.get_logs()
    assert "Downloaded model iris:1" in again.get_logs(init=True)
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        Webservice(local_ws, "nothing-here")


def test_list_shares_one_driver_per_target(local_ws, iris_service, iris_model, write_source) -> None:
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(IRIS_SCORE)))
    other = Model.deploy(local_ws, "iris-two", [iris_model], config, local_deploy_configuration())
    try:
        listed = Webservice.list(local_ws)
        assert sorted(s.name for s in listed) == ["iris-svc", "iris-two"]
        assert listed[0]._driver is listed[1]._driver
    finally:
        other.delete()


def test_model_in_use_cannot_be_deleted(iris_model) -> None:
    with pytest.raises(WebserviceException, match="iris-svc"):
        iris_model.delete()


def test_regenerated_key_stops_the_old_one_at_once(iris_service) -> None:
    old_primary, secondary = iris_service.get_keys()
    iris_service.regen_key("primary")
    new_primary, same_secondary = iris_service.get_keys()
    assert new_primary != old_primary and same_secondary == secondary
    uri = iris_service.scoring_uri
    assert (
        httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {old_primary}"}).status_code == 401
    )
    assert (
        httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {new_primary}"}).status_code == 200
    )
    iris_service.regen_key("Secondary", set_key="chosen-by-me")
    assert iris_service.get_keys()[1] == "chosen-by-me"
    with pytest.raises(WebserviceException, match="Valid options are: Primary, Secondary"):
        iris_service.regen_key("tertiary")


def test_killed_replica_is_replaced(local_ws, iris_service, tmp_path: Path) -> None:
    replica = next(r for r in iris_service.observed["replicas"] if r["state"] == "ready")
    os.killpg(replica["pid"], signal.SIGKILL)

    def replaced() -> bool:
        iris_service.update_deployment_state()
        ready = [r for r in iris_service.observed["replicas"] if r["state"] == "ready"]
        return (
            iris_service.state == "Healthy" and bool(ready) and replica["id"] not in {r["id"] for r in ready}
        )

    wait_until(replaced, "a new ready replica", 60)
    assert iris_service.run(SAMPLE) == [0, 2]
    kinds = [e["kind"] for e in iris_service.get_events()]
    assert kinds[0] == "operation" and "state" in kinds
    about = [
        e["message"] for e in iris_service.get_events(kinds=["replica"]) if replica["id"] in e["message"]
    ]
    assert [m.split(" ")[0] for m in about] == ["Started", "Replica", "Replica"], about
    assert "is ready" in about[1] and "stopped unexpectedly (exit code -9)" in about[2]
    (restart,) = [
        e for e in iris_service.get_events(kinds=["replica"]) if "stopped unexpectedly" in e["message"]
    ]
    local_ws.write_config(path=tmp_path)
    listed = modelport("service", "events", "-n", "iris-svc", "-k", "replica", "-o", "json", cwd=tmp_path)
    assert restart in json.loads(listed.stdout)
    refused = modelport("service", "events", "-n", "iris-svc", "-k", "nope", cwd=tmp_path, rc=2)
    assert "nope: not an event kind" in refused.stderr
    if not replica["unixSocket"].startswith("@"):  # a killed replica's socket file is the agent's to remove
        wait_until(lambda: not Path(replica["unixSocket"]).exists(), "the killed replica's socket file", 30)


def test_failing_init_fails_the_deployment_with_the_traceback(local_ws, iris_model, write_source) -> None:
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(FAILING_INIT_SCORE)))
    service = Model.deploy(local_ws, "broken-init", [iris_model], config, local_deploy_configuration())
    with pytest.raises(WebserviceException) as caught:
        service.wait_for_deployment(timeout_sec=120)
    message = str(caught.value)
    assert "current service state: Failed" in message and "EntryScriptInitFailed" in message
    assert "the model file is corrupt" in message  # the traceback travels in the error details
    assert service.error["code"] == "EntryScriptInitFailed"
    assert any(d["code"] == "CrashLoopBackOff" for d in service.error["details"])
    service.delete()
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        Webservice(local_ws, "broken-init")


def test_update_rolls_out_a_new_generation(iris_service) -> None:
    before = {r["id"] for r in iris_service.observed["replicas"]}
    iris_service.update(autoscale_enabled=False, num_replicas=2, tags={"rolled": "yes"})
    iris_service.wait_for_deployment(timeout_sec=120)
    assert iris_service.generation == 2 and iris_service.tags == {"rolled": "yes"}
    wait_until(
        lambda: (
            (iris_service.update_deployment_state() or True)
            and len([r for r in iris_service.observed["replicas"] if r["state"] == "ready"]) == 2
            and not before & {r["id"] for r in iris_service.observed["replicas"]}
        ),
        "two new replicas and the old ones gone",
        60,
    )
    assert iris_service.run(SAMPLE) == [0, 2]
    with pytest.raises(WebserviceException, match="No parameters provided to update."):
        iris_service.update()
    with pytest.raises(
        WebserviceException, match="autoscale_min_replicas provided without enabling autoscaling"
    ):
        iris_service.update(autoscale_min_replicas=2)


def test_delete_stops_the_replicas_and_frees_the_model(local_ws, iris_service, iris_model) -> None:
    pids = [r["pid"] for r in iris_service.observed["replicas"] if r["pid"]]
    iris_service.delete()
    assert Webservice.list(local_ws) == []
    wait_until(lambda: not any(_pid_alive(p) for p in pids), "replica processes to exit", 30)
    iris_model.delete()  # no service uses it any more
