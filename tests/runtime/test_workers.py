"""Worker processes: init() per worker, concurrency, health while busy, timeouts, crashes, boot failures."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import Server, ServerFactory
from tests.servers import wait_until


class Background:
    """One request sent from a thread, so that the test can act while it is in flight."""

    def __init__(self, server: Server, body: dict[str, object]) -> None:
        self.reply: httpx.Response | None = None
        self._thread = threading.Thread(target=self._send, args=(server, body), daemon=True)
        self._thread.start()

    def _send(self, server: Server, body: dict[str, object]) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            self.reply = client.post("/score", content=json.dumps(body))

    def result(self) -> httpx.Response:
        """Wait for the reply."""
        self._thread.join(timeout=120)
        assert self.reply is not None, "the request got no reply"
        return self.reply


def _started(server: Server, tag: str) -> bool:
    return (server.app_root / f"started-{tag}").exists()


def _release(server: Server, tag: str) -> None:
    (server.app_root / f"release-{tag}").write_text("")


def test_health_answers_while_run_is_busy(factory: ServerFactory, modelport_only: None) -> None:
    # The reference's GET / waits behind a busy one-worker server (docs/scoring.md, "Deliberate differences").
    server = factory.start("plain")
    busy = Background(server, {"action": "block", "tag": "health"})
    wait_until(lambda: _started(server, "health"), "run() to start")
    health = server.client().get("/")
    assert health.status_code == 200
    assert busy.reply is None  # still inside run()
    _release(server, "health")
    assert busy.result().json()["released"] is True


def test_each_worker_runs_init_and_requests_run_concurrently(factory: ServerFactory) -> None:
    server = factory.start("plain", args=("--worker_count", "2"))
    wait_until(lambda: len(list(server.app_root.glob("init-*"))) == 2, "both workers' init()")
    first = Background(server, {"action": "block", "tag": "one"})
    second = Background(server, {"action": "block", "tag": "two"})
    # Both run() calls are inside the script at the same time: two workers serve in parallel.
    wait_until(lambda: _started(server, "one") and _started(server, "two"), "both run() calls to start")
    pids = {(server.app_root / f"started-{tag}").read_text() for tag in ("one", "two")}
    assert len(pids) == 2
    _release(server, "one")
    _release(server, "two")
    assert first.result().status_code == second.result().status_code == 200


def test_scoring_timeout_answers_json_and_worker_survives(factory: ServerFactory) -> None:
    server = factory.start("plain", env={"SCORING_TIMEOUT_MS": "300"})
    client = server.client()
    before = client.post("/score", content="x").json()["pid"]
    reply = client.post("/score", content=json.dumps({"action": "block", "tag": "never"}))
    assert reply.status_code == 500
    assert reply.json() == {"message": "Scoring timeout after 300 ms"}
    assert reply.headers["x-ms-run-function-failed"] == "True"
    after = client.post("/score", content="x")
    assert after.status_code == 200
    assert after.json()["pid"] == before


@pytest.mark.slow
def test_timeout_swallowed_by_run_still_answers_and_worker_is_replaced(
    factory: ServerFactory, modelport_only: None
) -> None:
    server = factory.start("plain", env={"SCORING_TIMEOUT_MS": "200"})
    client = server.client()
    before = client.post("/score", content="x").json()["pid"]
    reply = client.post("/score", content=json.dumps({"action": "stubborn", "seconds": 60}))
    assert reply.status_code == 500
    assert reply.json() == {"message": "Scoring timeout after 200 ms"}
    after = client.post("/score", content="x")
    assert after.status_code == 200
    assert after.json()["pid"] != before


def test_worker_crash_answers_5xx_json_and_is_replaced(factory: ServerFactory, modelport_only: None) -> None:
    # The reference drops the connection without an answer when its worker dies.
    server = factory.start("plain")
    client = server.client()
    before = client.post("/score", content="x").json()["pid"]
    crashed = client.post("/score", content=json.dumps({"action": "crash"}))
    assert crashed.status_code == 502
    assert "exit code 7" in crashed.json()["message"]
    assert crashed.headers["x-ms-run-function-failed"] == "True"
    after = client.post("/score", content="x")
    assert after.status_code == 200
    assert after.json()["pid"] != before


def test_failing_init_logs_traceback_and_exits_non_zero(factory: ServerFactory) -> None:
    server = factory.start("failing_init", wait=False)
    assert server.wait_exit() != 0
    log = server.log()
    assert "Traceback" in log
    assert "init exploded: the model file is missing" in log


def test_missing_entry_script_exits_non_zero(factory: ServerFactory, tmp_path: Path) -> None:
    server = factory.start(None, args=("--entry_script", str(tmp_path / "absent.py")), wait=False)
    assert server.wait_exit() != 0
    assert "absent.py" in server.log()


def test_readiness_follows_init(factory: ServerFactory, modelport_only: None) -> None:
    server = factory.start("blocking_init", wait=False)
    client = server.client()

    def live() -> bool:
        try:
            return client.get("/health/live").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(live, "the liveness route")
    wait_until(lambda: any(server.app_root.glob("init-started-*")), "init() to start")
    not_ready = client.get("/health/ready")
    assert not_ready.status_code == 503
    assert not_ready.json()["workers_ready"] == 0
    # GET / sent during init() waits for it instead of failing, as with the reference server.
    health: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: health.append(server.client().get("/")), daemon=True)
    waiting.start()
    (server.app_root / "release-init").write_text("")
    waiting.join(timeout=60)
    assert [reply.text for reply in health] == ["Healthy"]
    wait_until(lambda: client.get("/health/ready").status_code == 200, "readiness after init()")


def test_azure_import_paths_are_not_shadowed_for_normal_users() -> None:
    # The shims exist for worker processes only; this process (a normal user of modelport) and
    # the modelport package must not make `azureml` importable.
    import importlib.util

    import modelport.runtime.server  # noqa: F401

    spec = importlib.util.find_spec("azureml")
    assert spec is None or "shims" not in str(spec.submodule_search_locations)
    assert not any(p.endswith("shims") for p in sys.path)


def test_idle_keep_alive_connection_survives_a_worker_crash(
    factory: ServerFactory, modelport_only: None
) -> None:
    server = factory.start("plain")
    idle = server.client()
    first_pid = idle.post("/score", content="x").json()["pid"]
    assert server.client().post("/score", content=json.dumps({"action": "crash"})).status_code == 502
    # The idle connection was the dead worker's; the server took it back and serves it on.
    again = idle.post("/score", content="x")
    assert again.status_code == 200
    assert again.json()["pid"] != first_pid


def test_overrun_is_confirmed_on_a_second_look() -> None:
    from modelport.runtime.pool import overrun

    limit = 300e9
    start, late = 1_000, 1_000 + int(limit) + 100
    # A read that raced the worker's write of a new run() (a fresh connection with a stale or
    # missing start time) looks overdue once; it must not kill the worker.
    assert overrun(None, 7, 0, late, limit) == (False, None)
    assert overrun(None, 7, start, late, limit) == (False, (7, start))
    assert overrun((7, start), 8, start + 5, late, limit) == (False, (8, start + 5))
    # The same run() overdue at two looks in a row is an overrun.
    assert overrun((7, start), 7, start, late, limit) == (True, (7, start))
    assert overrun((7, start), 0, start, late, limit) == (False, None)  # finished meanwhile
    assert overrun((7, start), 7, start, start + 10, limit) == (False, None)  # within the limit


def test_slot_fields_are_separate_words() -> None:
    from modelport.runtime.slot import Slot

    slot = Slot.create()
    try:
        assert slot.busy()[0] == 0
        slot.begin(42)
        connection, started = slot.busy()
        assert connection == 42 and started > 0
        slot.end()
        assert slot.busy()[0] == 0
        slot.set_ready_workers(3)
        slot.begin(43)
        assert not slot.draining
        slot.set_draining()
        assert slot.ready_workers == 3 and slot.busy()[0] == 43  # the fields do not overlap
        assert slot.draining
    finally:
        slot.close()
