"""The node's environment cache (compute/kubernetes/envcache.py) on this machine: real folders,
real locks held by other processes, and real uv builds (the same builder as the local target).

The pods that run these commands on a real node are in realnode/; here the commands run as
processes of this machine, with the cache in a temporary folder instead of a hostPath.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelport.compute.kubernetes.envcache import (
    CACHE_ENV,
    ENVIRONMENT_ENV,
    EVICTION_GRACE_S,
    HASH_ENV,
    LAST_USED,
    TERMINATION_LOG_ENV,
    NodeCache,
)
from modelport.registry.environment import Environment
from tests.compute.test_envbuild import _environment, package_index  # noqa: F401 - the shared skip fixture
from tests.servers import free_port, wait_until

MIB = 1024**2
HOLD = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.flock(fd, fcntl.LOCK_SH)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def _fake_env(cache: NodeCache, name: str, size_mib: int, used_ago_s: float) -> None:
    folder = cache.env_dir(name)
    folder.mkdir(parents=True)
    (folder / "blob").write_bytes(os.urandom(size_mib * MIB))
    cache.mark_used(name)
    stamp = time.time() - used_ago_s
    os.utime(folder / LAST_USED, (stamp, stamp))


def _hold(cache: NodeCache, name: str) -> subprocess.Popen[str]:
    """Another process holding an environment as a running replica does (a shared lock)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(cache.use_lock(name))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_eviction_removes_the_least_recently_used_environments_that_no_replica_holds(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path)
    day = 24 * 3600
    _fake_env(cache, "oldest", 4, 3 * day)
    _fake_env(cache, "held", 4, 2 * day)
    _fake_env(cache, "older", 4, 1 * day)
    _fake_env(cache, "recent", 4, EVICTION_GRACE_S / 2)  # within the grace period: a pod is starting
    _fake_env(cache, "this-pod", 4, 3 * day)
    assert [e.path.name for e in cache.environments()][:2] == ["oldest", "this-pod"]
    holder = _hold(cache, "held")
    try:
        removed = cache.evict(6 * MIB, keep="this-pod")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert [r.split()[0] for r in removed] == ["oldest", "older"]
    left = {e.path.name for e in cache.environments()}
    assert left == {"held", "recent", "this-pod"}  # over the cap still: nothing else may go
    assert not list(cache.root.glob(".retired-*"))
    # Once its replica has gone, the held one is the least recently used that may go.
    assert [r.split()[0] for r in cache.evict(6 * MIB, keep="this-pod")] == ["held"]


def test_nothing_is_evicted_within_the_cap(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path)
    _fake_env(cache, "a", 1, 10 * EVICTION_GRACE_S)
    assert cache.evict(10 * MIB, keep="b") == []
    assert cache.env_dir("a").is_dir()


@pytest.mark.slow
def test_build_reuse_run_and_hold_a_real_environment(tmp_path: Path, package_index: None) -> None:  # noqa: F811
    env = _environment("node-cache", pip=["six"])
    environ = {
        **os.environ,
        CACHE_ENV: str(tmp_path / "cache"),
        ENVIRONMENT_ENV: json.dumps(env.to_dict()),
        TERMINATION_LOG_ENV: str(tmp_path / "termination-log"),
    }
    first = _build(environ)
    assert first.returncode == 0, first.stdout
    assert "Building environment" in first.stdout
    again = _build(environ)
    assert again.returncode == 0 and "is already built" in again.stdout  # the second pod on the node
    cache = NodeCache(tmp_path / "cache")
    script = tmp_path / "score.py"
    script.write_text("import six\n\ndef init():\n    pass\n\ndef run(raw):\n    return six.__name__\n")
    port = free_port()
    replica = subprocess.Popen(
        [
            *(sys.executable, "-m", "modelport.compute.kubernetes.envcache", "run", "--"),
            *("--entry_script", str(script), "--port", str(port)),
        ],
        env={**environ, HASH_ENV: env.content_hash, "AML_APP_ROOT": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), "the replica in the cached environment to answer", 120)
        removed = cache.evict(0, keep="another")  # held by the running replica: only uv's downloads go
        assert [r.split()[0] for r in removed] == [".uv-cache"] and cache.env_dir(env.content_hash).is_dir()
    finally:
        replica.terminate()
        replica.wait(timeout=60)
    later = time.time() + 2 * EVICTION_GRACE_S
    assert [r.split()[0] for r in cache.evict(0, keep="another", now=later)] == [env.content_hash]
    assert not cache.env_dir(env.content_hash).exists()


@pytest.mark.slow
def test_a_broken_requirement_fails_with_the_installer_message_in_the_termination_log(
    tmp_path: Path,
    package_index: None,  # noqa: F811
) -> None:
    env = _environment("broken", pip=["modelport-no-such-package-anywhere==1.0"])
    log = tmp_path / "termination-log"
    result = _build(
        {
            **os.environ,
            CACHE_ENV: str(tmp_path / "cache"),
            ENVIRONMENT_ENV: json.dumps(env.to_dict()),
            TERMINATION_LOG_ENV: str(log),
        }
    )
    assert result.returncode == 1
    message = log.read_text()
    assert message.startswith("Environment 'broken'") and "modelport-no-such-package-anywhere" in message
    assert "Fix:" in message
    assert not NodeCache(tmp_path / "cache").env_dir(env.content_hash).exists()  # nothing half-built


def _build(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport.compute.kubernetes.envcache", "build"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _answers(port: int) -> bool:
    import httpx

    try:
        return httpx.post(f"http://127.0.0.1:{port}/score", content=b"x", timeout=5).text == '"six"'
    except httpx.HTTPError:
        return False


def test_the_environment_definition_round_trips(tmp_path: Path) -> None:
    env = _environment("round-trip", pip=["six==1.16.0"])
    assert Environment.from_dict(json.loads(json.dumps(env.to_dict()))).content_hash == env.content_hash
