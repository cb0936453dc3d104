"""Routing, balancing, admission and status codes of the front end, over real sockets and replicas."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelport.frontend.routes import ReplicaTarget, ServiceRoute
from modelport.frontend.standalone import BackgroundFrontEnd
from modelport.host import current as current_host
from tests.frontend.support import (
    Gate,
    ReplicaFactory,
    ReplicaProcess,
    post_json,
    score_url,
    submit_post,
)
from tests.servers import free_port, wait_until

Pair = tuple[ReplicaProcess, ReplicaProcess]


def route(name: str, *replicas: ReplicaProcess, **settings: int) -> dict[str, ServiceRoute]:
    """A table with one service ``name`` on ``replicas``."""
    return {name: ServiceRoute(name, replicas=tuple(r.target for r in replicas), **settings)}


def test_forwards_body_query_and_id_headers(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.set_routes(route("echo", pair[0]))
    answer = post_json(score_url(frontend, "echo"), {"x": 1}, {"x-request-id": "abc-123", "X-Probe": "p"})
    assert answer.status_code == 200
    assert answer.json()["got"] == {"x": 1}
    assert answer.json()["headers"]["X-Probe"] == "p"
    assert answer.headers["x-request-id"] == "abc-123"
    assert answer.headers["x-ms-run-function-failed"] == "False"
    assert "x-ms-run-fn-exec-ms" in answer.headers
    with httpx.Client(timeout=30) as client:
        got = client.get(score_url(frontend, "echo"), params={"a": "1"})
    assert got.status_code == 200, got.text


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_replica_with_a_unix_socket_is_reached_through_it(
    frontend: BackgroundFrontEnd, replicas: ReplicaFactory, kind: str, tmp_path: Path
) -> None:
    if kind == "abstract" and not current_host().linux_features:
        pytest.skip("abstract Unix socket names are Linux's")
    # A path socket is what the local target uses where Linux's abstract namespace is missing.
    address = f"@modelport-test-{os.getpid()}-uds" if kind == "abstract" else str(tmp_path / "uds.sock")
    replica = replicas.start("uds", unix_socket=address)
    # The URL's port is closed: only the Unix socket can carry the request.
    target = ReplicaTarget(replica.replica_id, f"http://127.0.0.1:{free_port()}", replica.unix_socket)
    frontend.set_routes({"echo": ServiceRoute("echo", replicas=(target,))})
    with httpx.Client(timeout=30) as client:  # keep-alive: the second request reuses the connection
        for n in range(2):
            answer = client.post(score_url(frontend, "echo"), json={"n": n})
            assert answer.status_code == 200, answer.text
            assert answer.json()["got"] == {"n": n}
            assert answer.json()["replica"] == "uds"


def test_unknown_service_path_and_method(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.set_routes(route("echo", pair[0]))
    missing = post_json(score_url(frontend, "nope"), {})
    assert missing.status_code == 404
    assert missing.json() == {"message": "Service nope not found"}
    assert httpx.get(f"{frontend.url}/api/v1/service/echo/other").status_code == 404
    assert httpx.get(f"{frontend.url}/elsewhere").status_code == 404
    wrong = httpx.put(score_url(frontend, "echo"), content=b"{}")
    assert wrong.status_code == 405
    assert "message" in wrong.json()
    health = httpx.get(frontend.url + "/")
    assert health.status_code == 200
    assert health.json() == {"status": "Healthy", "services": 1}


def test_swagger_comes_from_a_replica(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.set_routes(route("echo", pair[0]))
    answer = httpx.get(f"{frontend.url}/api/v1/service/echo/swagger.json", params={"version": "3"})
    direct = httpx.get(f"{pair[0].url}/swagger.json", params={"version": "3"})
    assert (answer.status_code, answer.json()) == (direct.status_code, direct.json())
    assert answer.status_code == 200
    assert httpx.post(f"{frontend.url}/api/v1/service/echo/swagger.json").status_code == 405


def test_least_outstanding_requests_across_two_replicas(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("lor", *pair, max_concurrent_per_replica=4))
    url = score_url(frontend, "lor")
    first = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": first})
    busy = gate.wait_started(first)
    # With one request held on `busy`, every new request goes to the idle replica.
    idle = next(r.replica_id for r in pair if r.replica_id != busy)
    assert {post_json(url, {}).json()["replica"] for _ in range(6)} == {idle}
    second = gate.tag()
    held_too = submit_post(pool, url, {"action": "block", "tag": second})
    assert gate.wait_started(second) == idle
    assert frontend.in_flight("r1") == frontend.in_flight("r2") == 1
    gate.release(first, second)
    assert held.result().status_code == held_too.result().status_code == 200
    # Idle replicas take turns with sequential traffic.
    assert {post_json(url, {}).json()["replica"] for _ in range(6)} == {"r1", "r2"}


def test_per_replica_cap_queues_then_dispatches(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("cap", pair[0], max_concurrent_per_replica=2, max_queue_wait_ms=30_000))
    url = score_url(frontend, "cap")
    tags = [gate.tag() for _ in range(3)]
    futures = [submit_post(pool, url, {"action": "block", "tag": tag}) for tag in tags]
    wait_until(lambda: frontend.load("cap").queued == 1, "one request to be queued")
    sample = frontend.load("cap")
    assert (sample.in_flight, sample.ready_replicas, sample.max_concurrent_per_replica) == (2, 1, 2)
    assert frontend.in_flight("r1") == 2

    def started() -> list[str]:
        return [tag for tag in tags if (gate.root / f"started-{tag}").exists()]

    wait_until(lambda: len(started()) == 2, "two run() calls to start")
    assert frontend.load("cap").queued == 1  # the replica has 4 workers: only the cap holds the third back
    running = started()
    gate.release(*running)
    waiting = next(tag for tag in tags if tag not in running)
    gate.wait_started(waiting)
    gate.release(waiting)
    assert [f.result().status_code for f in futures] == [200, 200, 200]
    assert frontend.load("cap").in_flight == 0
    assert frontend.load("cap").busy_seconds > 0


def test_full_queue_answers_503_at_once(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("full", pair[0], max_queue_wait_ms=30_000, max_queued_requests=1))
    url = score_url(frontend, "full")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    gate.wait_started(tag)
    queued = submit_post(pool, url, {})
    wait_until(lambda: frontend.load("full").queued == 1, "the second request to be queued")
    beyond = post_json(url, {})  # the queue holds one: the third is refused at once
    assert beyond.status_code == 503
    assert beyond.json()["message"] == "Too many requests for service full (overloaded)"
    gate.release(tag)
    assert held.result().status_code == queued.result().status_code == 200


def test_queue_wait_runs_out_with_503(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("busy", pair[1], max_queue_wait_ms=300))
    url = score_url(frontend, "busy")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    gate.wait_started(tag)
    began = time.monotonic()
    answer = post_json(url, {})
    waited = time.monotonic() - began
    assert answer.status_code == 503
    assert answer.json()["message"] == (
        "Too many requests for service busy (overloaded): no replica was free within "
        "max_request_wait_time (300 ms)"
    )
    assert waited < 5.0  # the wait is 300 ms; generous for a loaded machine
    gate.release(tag)
    assert held.result().status_code == 200


def test_no_ready_replica_is_503(frontend: BackgroundFrontEnd) -> None:
    frontend.set_routes({"empty": ServiceRoute("empty")})
    answer = post_json(score_url(frontend, "empty"), {})
    assert answer.status_code == 503
    assert answer.json() == {"message": "No ready replicas for service empty"}


def test_scoring_timeout_is_504(frontend: BackgroundFrontEnd, pair: Pair, gate: Gate) -> None:
    frontend.set_routes(route("slow", pair[1], scoring_timeout_ms=200))
    tag = gate.tag()
    answer = post_json(score_url(frontend, "slow"), {"action": "block", "tag": tag})
    gate.release(tag)
    assert answer.status_code == 504
    assert answer.json() == {"message": "Scoring timeout after 200 ms (scoring_timeout_ms)"}
    assert frontend.in_flight("r2") == 0
    assert post_json(score_url(frontend, "slow"), {}).status_code == 200


def test_run_failure_is_502_with_the_replica_body(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.set_routes(route("fails", pair[0]))
    answer = post_json(score_url(frontend, "fails"), {"action": "raise"})
    direct = post_json(pair[0].url + "/score", {"action": "raise"})
    assert direct.status_code == 500
    assert answer.status_code == 502
    assert answer.json() == direct.json()
    assert answer.headers["x-ms-run-function-failed"] == "True"


def test_replica_killed_mid_request_is_502_and_others_go_on(
    frontend: BackgroundFrontEnd, pair: Pair, replicas: ReplicaFactory, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    doomed = replicas.start("doomed")
    frontend.set_routes(route("crash", doomed, pair[1], max_concurrent_per_replica=4))
    url = score_url(frontend, "crash")
    tags = [gate.tag() for _ in range(2)]
    held = [submit_post(pool, url, {"action": "block", "tag": tag}) for tag in tags]
    on = {gate.wait_started(tag): tag for tag in tags}
    assert set(on) == {"doomed", "r2"}
    doomed.kill()
    lost = held[tags.index(on["doomed"])].result()
    assert lost.status_code == 502
    assert lost.json() == {"message": "Replica closed connection before replying"}
    gate.release(on["r2"])
    assert held[tags.index(on["r2"])].result().status_code == 200
    # Until the owner removes it, the dead replica refuses connections: those requests were never
    # delivered, so they go to the live replica instead of failing.
    answers = [post_json(url, {}) for _ in range(6)]
    assert [(a.status_code, a.json()["replica"]) for a in answers] == [(200, "r2")] * 6
    frontend.set_routes(route("crash", pair[1]))
    assert [post_json(url, {}).status_code for _ in range(3)] == [200] * 3


def test_only_replica_refusing_is_502(frontend: BackgroundFrontEnd, replicas: ReplicaFactory) -> None:
    gone = replicas.start("gone")
    gone.kill()
    frontend.set_routes(route("dead", gone))
    answer = post_json(score_url(frontend, "dead"), {})
    assert answer.status_code == 502
    assert answer.json()["message"].startswith("Replica refused the connection")


def test_route_swap_keeps_in_flight_requests(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    old, new = pair
    frontend.set_routes(route("roll", old))
    url = score_url(frontend, "roll")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    assert gate.wait_started(tag) == "r1"
    frontend.set_routes(route("roll", new))
    assert frontend.in_flight("r1") == 1
    assert {post_json(url, {}).json()["replica"] for _ in range(4)} == {"r2"}
    gate.release(tag)
    answer = held.result()
    assert answer.status_code == 200
    assert answer.json() == {"replica": "r1", "released": True}
    assert frontend.in_flight("r1") == 0
    # A drained replica can come back (a rollback): it serves again.
    frontend.set_routes(route("roll", old))
    assert {post_json(url, {}).json()["replica"] for _ in range(2)} == {"r1"}


def test_swap_gives_queued_requests_the_new_replicas(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("grow", pair[0], max_queue_wait_ms=30_000))
    url = score_url(frontend, "grow")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    gate.wait_started(tag)
    queued = submit_post(pool, url, {})
    wait_until(lambda: frontend.load("grow").queued == 1, "a queued request")
    frontend.set_routes(route("grow", *pair, max_queue_wait_ms=30_000))
    assert queued.result().json()["replica"] == "r2"
    gate.release(tag)
    assert held.result().status_code == 200


def test_removed_service_fails_its_queue_and_is_404(
    frontend: BackgroundFrontEnd, pair: Pair, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    frontend.set_routes(route("gone", pair[0], max_queue_wait_ms=30_000))
    url = score_url(frontend, "gone")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    gate.wait_started(tag)
    queued = submit_post(pool, url, {})
    wait_until(lambda: frontend.load("gone").queued == 1, "a queued request")
    frontend.set_routes({})
    assert queued.result().status_code == 503
    assert post_json(url, {}).status_code == 404
    gate.release(tag)
    assert held.result().status_code == 200
    assert frontend.in_flight("r1") == 0


@pytest.mark.parametrize("limit", [1000])
def test_body_limit_is_413(pair: Pair, limit: int) -> None:
    with BackgroundFrontEnd(max_request_bytes=limit) as small:
        small.set_routes(route("echo", pair[0]))
        answer = httpx.post(score_url(small, "echo"), content=b"x" * (limit + 1))
        assert answer.status_code == 413
        assert post_json(score_url(small, "echo"), {"small": True}).status_code == 200


def test_metrics_per_service(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.set_routes(route("meter", *pair))
    url = score_url(frontend, "meter")
    assert [post_json(url, {}).status_code for _ in range(3)] == [200] * 3
    assert post_json(url, {"action": "raise"}).status_code == 502
    text = httpx.get(frontend.url + "/metrics").text
    assert 'modelport_frontend_requests_total{code="200",service="meter"} 3.0' in text
    assert 'modelport_frontend_requests_total{code="502",service="meter"} 1.0' in text
    assert 'modelport_frontend_request_duration_seconds_count{service="meter"} 4.0' in text
    assert 'modelport_frontend_queue_seconds_count{service="meter"} 4.0' in text
    assert 'modelport_frontend_ready_replicas{service="meter"} 2.0' in text
    assert 'modelport_frontend_in_flight{service="meter"} 0.0' in text
    assert 'modelport_frontend_queued{service="meter"} 0.0' in text


def test_stop_drains_then_closes(pair: Pair, gate: Gate, pool: ThreadPoolExecutor) -> None:
    running = BackgroundFrontEnd().start()
    running.set_routes(route("stopping", pair[0], max_queue_wait_ms=30_000))
    url = score_url(running, "stopping")
    tag = gate.tag()
    held = submit_post(pool, url, {"action": "block", "tag": tag})
    gate.wait_started(tag)
    queued = submit_post(pool, url, {})
    wait_until(lambda: running.load("stopping").queued == 1, "a queued request")
    stopping = pool.submit(running.stop, 30.0)
    wait_until(lambda: running.frontend.draining, "the stop to begin")
    assert not stopping.done()  # waiting for the requests in flight, the queued one included
    gate.release(tag)
    assert held.result().json() == {"replica": "r1", "released": True}
    assert queued.result().status_code == 200
    stopping.result()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
