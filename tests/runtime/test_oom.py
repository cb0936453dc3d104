"""The runtime's reading of its memory cgroup (runtime/oom.py), on folders laid out like cgroup v1
and v2 views: no cgroup is made here (the kernel's OOM kill itself is tested on the real node,
tests/compute/kubernetes/realnode/test_serving_node.py)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from modelport.runtime.oom import (
    EXIT_STATUS,
    MemoryCgroup,
    killed_for_memory,
    memory_limit,
    oom_kill_count,
    out_of_memory_reply,
)

V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill {}\n"
V2_EVENTS = "low 0\nhigh 0\nmax 4\noom 1\noom_kill {}\n"
V1_NO_LIMIT = "9223372036854771712\n"


def _view(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_oom_kill_counter_is_read_from_either_layout() -> None:
    assert oom_kill_count(V1_OOM_CONTROL.format(3)) == 3
    assert oom_kill_count(V2_EVENTS.format(2)) == 2
    # Kernels before 4.13 have no counter: nothing to go by.
    assert oom_kill_count("oom_kill_disable 0\nunder_oom 0\n") is None


@pytest.mark.parametrize(
    ("text", "limit"), [("268435456\n", 268435456), ("max\n", None), (V1_NO_LIMIT, None), ("", None)]
)
def test_a_memory_limit_is_bytes_and_unlimited_is_none(text: str, limit: int | None) -> None:
    assert memory_limit(text) == limit


def test_the_cgroup_is_found_in_a_v2_view(tmp_path: Path) -> None:
    root = _view(tmp_path, {"memory.events": V2_EVENTS.format(0), "memory.max": "268435456\n"})

    cgroup = MemoryCgroup.find(root)

    assert cgroup == MemoryCgroup(root / "memory.events", 268435456)
    assert cgroup.oom_kills() == 0
    (root / "memory.events").write_text(V2_EVENTS.format(1))
    assert cgroup.oom_kills() == 1


def test_the_cgroup_is_found_in_a_v1_view(tmp_path: Path) -> None:
    root = _view(
        tmp_path,
        {
            "memory/memory.oom_control": V1_OOM_CONTROL.format(2),
            "memory/memory.limit_in_bytes": "536870912\n",
        },
    )

    assert MemoryCgroup.find(root) == MemoryCgroup(root / "memory" / "memory.oom_control", 536870912)


def test_no_cgroup_without_a_limit_or_without_the_files(tmp_path: Path) -> None:
    unlimited = _view(
        tmp_path / "unlimited",
        {"memory/memory.oom_control": V1_OOM_CONTROL.format(0), "memory/memory.limit_in_bytes": V1_NO_LIMIT},
    )
    assert MemoryCgroup.find(unlimited) is None
    assert MemoryCgroup.find(tmp_path / "missing") is None


def test_a_cgroup_that_disappears_reads_as_unknown(tmp_path: Path) -> None:
    root = _view(tmp_path, {"memory.events": V2_EVENTS.format(0), "memory.max": "268435456\n"})
    cgroup = MemoryCgroup.find(root)
    assert cgroup is not None
    (root / "memory.events").unlink()

    assert cgroup.oom_kills() is None


@pytest.mark.parametrize(
    ("exit_code", "before", "now", "killed"),
    [
        (-signal.SIGKILL, 0, 1, True),
        (-signal.SIGKILL, 0, 0, False),  # killed by someone else (kill -9, a timeout)
        (-signal.SIGTERM, 0, 1, False),  # another process of the replica was the victim
        (7, 0, 1, False),  # run() called sys.exit
        (-signal.SIGKILL, None, 1, False),
        (-signal.SIGKILL, 0, None, False),
    ],
)
def test_a_worker_is_the_oom_killers_victim_only_when_sigkilled_while_the_counter_grew(
    exit_code: int, before: int | None, now: int | None, killed: bool
) -> None:
    assert killed_for_memory(exit_code, before, now) is killed


def test_the_answer_says_the_replica_ran_out_of_memory_and_the_fix() -> None:
    status, headers, body, run_failed, _ = out_of_memory_reply(256 * 2**20)

    assert status == 502 and run_failed
    assert ("Content-Type", "application/json") in headers
    message = json.loads(body)["message"]
    assert "ran out of memory (limit 256 MiB)" in message
    assert "The replica restarts" in message and "memory_gb_limit" in message
    assert EXIT_STATUS == 137
