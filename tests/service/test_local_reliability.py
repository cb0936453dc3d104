"""Reliability of the local target under failure and load: real agents, replicas and sockets."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelport import Model
from modelport.compute.local.cgroups import find_cpu_limiter
from modelport.compute.local.driver import LocalDriver, agent_pid
from modelport.compute.local.limits import LimitNotEnforcedWarning
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import WebserviceException
from modelport.frontend.auth import issue_token
from modelport.host import current as current_host
from modelport.service.webservice import Webservice
from tests.clirun import modelport
from tests.servers import wait_until
from tests.service.conftest import IRIS_SCORE

# The local-target suite: make test runs it again with the portable (non-Linux) paths forced.
pytestmark = pytest.mark.local_target

SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})

SLOW_RUN_SCORE = textwrap.dedent(
    """
    import time

    def init():
        pass

    def run(raw_data):
        time.sleep(float(raw_data))  # the request says how long run() takes
        return "done"
    """
)

SLOW_INIT_SCORE = textwrap.dedent(
    """
    import time

    def init():
        time.sleep(3)  # a slow model load; the test checks no request reaches run() before it ends

    def run(raw_data):
        return "ready"
    """
)

GREEDY_INIT_SCORE = textwrap.dedent(
    """
    blob = None

    def init():
        global blob
        blob = bytearray(400 * 1024 * 1024)
        for i in range(0, len(blob), 4096):  # touch every page so that it is really resident
            blob[i] = 1

    def run(raw_data):
        return len(blob)
    """
)


def _deploy(ws, name, script, write_source, models=(), **knobs):
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(script)))
    return Model.deploy(ws, name, list(models), config, local_deploy_configuration(**knobs))


def test_agent_killed_with_sigkill_comes_back_with_every_service(local_ws, iris_model, write_source) -> None:
    service = _deploy(local_ws, "survivor", IRIS_SCORE, write_source, [iris_model])
    service.wait_for_deployment(timeout_sec=120)
    uri = service.scoring_uri
    old_pids = [r["pid"] for r in service.observed["replicas"]]
    pid = agent_pid(local_ws)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: agent_pid(local_ws) is None, "the killed agent's lock to be released", 30)
    # Its replicas died with it (parent-death signal): nothing answers until an agent runs again.
    wait_until(lambda: not any(_alive(p) for p in old_pids), "orphan replicas to exit", 30)
    LocalDriver().ensure_agent(local_ws)
    restored = Webservice(local_ws, "survivor")
    restored.wait_for_deployment(timeout_sec=120)
    assert restored.scoring_uri == uri  # the front end kept its port
    assert restored.run(SAMPLE) == [0]
    restored.delete()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_slow_init_never_receives_traffic_before_ready(local_ws, write_source) -> None:
    service = _deploy(local_ws, "slow-init", SLOW_INIT_SCORE, write_source, auth_enabled=False)

    def seen_by_agent() -> bool:
        service.update_deployment_state()
        return service._status is not None

    wait_until(seen_by_agent, "the agent to pick the service up", 30)
    answers = []
    while service.state != "Healthy":
        answers.append(httpx.post(service.scoring_uri, content="x", timeout=10).status_code)
        service.update_deployment_state()
        assert service.state in ("Transitioning", "Healthy"), service.error
    # "No ready replicas" while init() runs; once a 200 comes, only 200s follow.
    assert answers[0] == 503 and set(answers) <= {503, 200}
    assert 503 not in answers[answers.index(200) :] if 200 in answers else True
    assert httpx.post(service.scoring_uri, content="x", timeout=10).json() == "ready"
    service.delete()


def test_full_queue_answers_503_within_the_wait_time(local_ws, write_source) -> None:
    service = _deploy(
        local_ws,
        "queue-svc",
        SLOW_RUN_SCORE,
        write_source,
        auth_enabled=False,
        num_replicas=1,
        autoscale_enabled=False,
        max_request_wait_time=200,
        replica_max_concurrent_requests=1,
    )
    service.wait_for_deployment(timeout_sec=120)
    uri = service.scoring_uri
    assert httpx.post(uri, content="0", timeout=10).json() == "done"

    def timed(body: str) -> tuple[int, float]:
        start = time.monotonic()
        status = httpx.post(uri, content=body, timeout=30).status_code
        return status, time.monotonic() - start

    with ThreadPoolExecutor(4) as pool:
        busy = pool.submit(timed, "3")
        time.sleep(0.3)  # lets the first request occupy the only replica before the others arrive
        waiting = [pool.submit(timed, "0") for _ in range(3)]
        results = [f.result() for f in waiting]
    assert busy.result()[0] == 200
    assert [status for status, _ in results] == [503, 503, 503]
    # Each was turned away after its 200 ms in the queue, long before the 3 s request ended.
    assert all(elapsed < 2.5 for _, elapsed in results)
    service.delete()


def test_scoring_timeout_answers_504_and_frees_the_worker(local_ws, write_source) -> None:
    # One worker: while it sleeps in the timed-out run(), nothing else can be answered. The
    # replica gets SCORING_TIMEOUT_MS like a Kubernetes replica, so the runtime stops that run()
    # too, instead of keeping the worker busy for the runtime's default hour.
    service = _deploy(
        local_ws, "timeout-svc", SLOW_RUN_SCORE, write_source, auth_enabled=False, scoring_timeout_ms=500
    )
    service.wait_for_deployment(timeout_sec=120)
    assert httpx.post(service.scoring_uri, content="600", timeout=30).status_code == 504

    def answered() -> bool:
        return httpx.post(service.scoring_uri, content="0", timeout=30).status_code == 200

    wait_until(answered, "the worker of the timed-out request to answer again", deadline_s=90)
    service.delete()


def test_rolling_update_under_steady_load_fails_no_request(local_ws, iris_model, write_source) -> None:
    service = _deploy(local_ws, "rolling", IRIS_SCORE, write_source, [iris_model], auth_enabled=False)
    service.wait_for_deployment(timeout_sec=120)
    uri = service.scoring_uri
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                statuses.append(client.post(uri, content=SAMPLE).status_code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_until(lambda: len(statuses) > 20, "load to flow", 30)
        service.update(autoscale_enabled=False, num_replicas=2)
        service.wait_for_deployment(timeout_sec=120)
        count = len(statuses)
        wait_until(lambda: len(statuses) > count + 20, "load after the rollout", 30)
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    service.delete()


def test_token_auth_valid_expired_and_wrong(local_ws, iris_model, write_source) -> None:
    service = _deploy(local_ws, "tokens", IRIS_SCORE, write_source, [iris_model], token_auth_enabled=True)
    service.wait_for_deployment(timeout_sec=120)
    assert service.token_auth_enabled and not service.auth_enabled
    token = service.get_access_token()
    assert token.refresh_after < token.expiry_on
    uri = service.scoring_uri
    ok = httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {token.access_token}"})
    assert ok.status_code == 200 and service.run(SAMPLE) == [0]
    secret = bytes.fromhex(service._spec.token_secret)
    expired = issue_token(secret, "tokens", ttl_s=60, now=time.time() - 3600).access_token
    assert httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    forged = issue_token(b"not-the-service-secret-but-long-enough", "tokens").access_token
    assert httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    key = service.get_keys()[0]
    assert httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {key}"}).status_code == 401
    with pytest.deprecated_call():
        assert service.get_token()[0]
    service.delete()


def test_memory_limit_kills_the_replica_as_oomkilled(local_ws, write_source) -> None:
    service = _deploy(
        local_ws,
        "greedy",
        GREEDY_INIT_SCORE,
        write_source,
        auth_enabled=False,
        memory_gb=0.1,
        memory_gb_limit=0.25,
    )
    with pytest.raises(WebserviceException, match="OOMKilled"):
        service.wait_for_deployment(timeout_sec=120)
    assert service.state == "Failed" and service.error["code"] == "OOMKilled"
    assert "memory_gb_limit" in service.error["message"]
    service.delete()


CPU_LIMITER = find_cpu_limiter(current_host())


@pytest.mark.skipif(CPU_LIMITER is None, reason="no writable cgroup cpu controller on this machine")
def test_cpu_limit_puts_the_replica_in_a_cgroup_with_that_quota(local_ws, write_source) -> None:
    service = _deploy(
        local_ws,
        "cpu-capped",
        SLOW_RUN_SCORE,
        write_source,
        auth_enabled=False,
        cpu_cores=0.25,
        cpu_cores_limit=0.5,
    )
    service.wait_for_deployment(timeout_sec=120)
    replica = next(r for r in service.observed["replicas"] if r["state"] == "ready")
    group = Path(replica["cgroup"])
    quota_file = group / ("cpu.max" if (group / "cpu.max").exists() else "cpu.cfs_quota_us")
    assert quota_file.read_text().split()[0] == "50000"  # 0.5 of a 100 ms period
    members = {int(p) for p in (group / "cgroup.procs").read_text().split()}
    assert replica["pid"] in members and len(members) >= 2  # the replica and its scoring worker
    service.delete()
    wait_until(lambda: not group.exists(), "the replica's cgroup to be removed", 30)


@pytest.mark.skipif(CPU_LIMITER is not None, reason="this machine enforces CPU quotas (the test above)")
def test_a_cpu_limit_that_cannot_be_enforced_is_said_at_deploy_in_the_log_and_in_service_show(
    local_ws, write_source, tmp_path: Path
) -> None:
    # Runs where no cgroup is writable, and always with MODELPORT_LOCAL_PORTABLE=1 (macOS's paths).
    with pytest.warns(LimitNotEnforcedWarning) as said:
        service = _deploy(
            local_ws,
            "cpu-uncapped",
            SLOW_RUN_SCORE,
            write_source,
            auth_enabled=False,
            cpu_cores=0.25,
            cpu_cores_limit=0.5,
        )
    messages = [str(w.message) for w in said if w.category is LimitNotEnforcedWarning]
    assert len(messages) == 1, messages  # once per deploy
    assert messages[0].startswith(f"cpu_cores_limit=0.5 is not enforced on {current_host().name}: ")
    service.wait_for_deployment(timeout_sec=120)
    assert service.observed["limitsNotEnforced"] == messages
    assert all(r["cgroup"] is None for r in service.observed["replicas"])
    assert f"Warning: {messages[0]}" in service.get_logs(init=True)
    local_ws.write_config(path=tmp_path)
    shown = modelport("service", "show", "-n", "cpu-uncapped", cwd=tmp_path).stdout
    assert "limitsNotEnforced" in shown and "cpu_cores_limit=0.5 is not enforced" in shown
    service.delete()


def test_more_gpus_than_the_machine_has_are_refused_before_anything_is_stored(
    local_ws, iris_model, write_source
) -> None:
    from modelport.compute.local.driver import gpu_count
    from modelport.errors import UserErrorException

    wanted = gpu_count() + 1
    with pytest.raises(UserErrorException, match=f"gpu_cores={wanted} but this machine has {wanted - 1} GPU"):
        _deploy(local_ws, "gpu-svc", IRIS_SCORE, write_source, [iris_model], gpu_cores=wanted)
    with pytest.raises(WebserviceException, match="WebserviceNotFound"):
        Webservice(local_ws, "gpu-svc")


def test_replica_killed_under_load_fails_only_its_in_flight_request(
    local_ws, iris_model, write_source
) -> None:
    service = _deploy(
        local_ws, "under-load", IRIS_SCORE, write_source, [iris_model], auth_enabled=False, num_replicas=2
    )
    service.wait_for_deployment(timeout_sec=120)
    wait_until(lambda: len(_ready_replicas(service)) == 2, "two ready replicas", 60)
    uri = service.scoring_uri
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                statuses.append(client.post(uri, content=SAMPLE).status_code)

    workers = [threading.Thread(target=load) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(statuses) > 50, "load to flow", 30)
        victim = _ready_replicas(service)[0]
        os.killpg(victim["pid"], signal.SIGKILL)
        wait_until(
            lambda: (
                len(_ready_replicas(service)) == 2
                and victim["id"] not in {r["id"] for r in _ready_replicas(service)}
            ),
            "the replacement replica",
            60,
        )
        count = len(statuses)
        wait_until(lambda: len(statuses) > count + 50, "load after the replacement", 30)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    failures = [s for s in statuses if s != 200]
    # Each client has one request in flight; only a request on the killed replica may fail.
    assert len(failures) <= 1 and set(failures) <= {502}, {s: statuses.count(s) for s in set(statuses)}
    assert service.state == "Healthy"
    service.delete()


def _ready_replicas(service) -> list[dict]:
    service.update_deployment_state()
    return [r for r in service.observed.get("replicas", []) if r["state"] == "ready"]


def _in_flight(service, count: int) -> bool:
    # The front end's own gauge: the request has been forwarded and not yet answered.
    front = service.scoring_uri.split("/api/")[0]
    metrics = httpx.get(f"{front}/metrics", timeout=10).text
    return f'modelport_frontend_in_flight{{service="{service.name}"}} {count}.0' in metrics


def test_agent_sigterm_answers_the_request_in_flight_then_exits(local_ws, write_source) -> None:
    service = _deploy(local_ws, "stopping-agent", SLOW_RUN_SCORE, write_source, auth_enabled=False)
    service.wait_for_deployment(timeout_sec=120)
    replica_pids = [r["pid"] for r in service.observed["replicas"]]
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.post, service.scoring_uri, content="2", timeout=60)
        wait_until(lambda: _in_flight(service, 1), "the request to be in flight", 30)
        os.kill(agent_pid(local_ws), signal.SIGTERM)
        answer = slow.result()
    assert (answer.status_code, answer.json()) == (200, "done")
    wait_until(lambda: agent_pid(local_ws) is None, "the agent to exit", 60)
    wait_until(lambda: not any(_alive(p) for p in replica_pids), "its replicas to exit", 60)
    LocalDriver().ensure_agent(local_ws)
    restored = Webservice(local_ws, "stopping-agent")
    restored.wait_for_deployment(timeout_sec=120)
    restored.delete()


def test_delete_answers_the_request_in_flight(local_ws, write_source) -> None:
    service = _deploy(local_ws, "deleted-busy", SLOW_RUN_SCORE, write_source, auth_enabled=False)
    service.wait_for_deployment(timeout_sec=120)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.post, service.scoring_uri, content="2", timeout=60)
        wait_until(lambda: _in_flight(service, 1), "the request to be in flight", 30)
        service.delete()
        answer = slow.result()
    # The replica got SIGTERM with run() in flight: it drained instead of dying (formerly a 502).
    assert (answer.status_code, answer.json()) == (200, "done")
