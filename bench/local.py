"""Local target benchmark (issue 4, point 11): deploy time, front-end overhead, scale-up time.

(a) deploy → Healthy with an already built (cached) environment, and with the workspace's own
    Python; goal under 3 s.
(b) throughput and p50/p99 through the local agent's front end versus straight to the replica,
    at 1, 8 and 64 connections (wrk, keep-alive); goal: at most +0.5 ms at p50 and at least 70 %
    of the direct throughput. One replica, key auth on, and a per-replica concurrency of 64 so
    that forwarding is measured, not queueing.
(c) seconds from a load step to the first added replica serving, default refresh period (1 s);
    goal under 3 s.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``) and the package index for the environment
build. Prints figures; asserts nothing. Usage: ``python bench/local.py [--duration 5] [--out F]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from wrk import run_wrk

IRIS_SCORE = textwrap.dedent(
    """
    import json

    def init():
        pass

    def run(raw_data):
        return {"rows": len(json.loads(raw_data)["data"])}
    """
)
BUSY_SCORE = textwrap.dedent(
    """
    import time

    def init():
        pass

    def run(raw_data):
        time.sleep(0.2)
        return "ok"
    """
)
BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})
CONNECTIONS = (1, 8, 64)


def source(root: Path, name: str, script: str) -> str:
    """A source folder holding ``score.py``."""
    folder = root / name
    folder.mkdir()
    (folder / "score.py").write_text(script)
    return str(folder)


def lua_file(root: Path, key: str | None) -> Path:
    """A wrk script posting the JSON body (with the key when given)."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(BODY)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if key:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {key}"')
    path = root / ("auth.lua" if key else "plain.lua")
    path.write_text("\n".join(lines) + "\n")
    return path


def deploy_times(ws, root: Path, rounds: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median seconds from Model.deploy to Healthy, cached environment and workspace Python."""
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.registry.conda import CondaDependencies
    from modelport.registry.environment import Environment
    from modelport.registry.model import Model

    env = Environment("bench-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults", "six"])
    folder = source(root, "deploy-src", IRIS_SCORE)
    config = local_deploy_configuration(auth_enabled=False)
    warm = Model.deploy(
        ws, "warmup", [], InferenceConfig("score.py", source_directory=folder, environment=env), config
    )
    warm.wait_for_deployment(timeout_sec=600)  # builds the environment once, untimed
    warm.delete()
    figures: dict[str, list[float]] = {"cached_env_s": [], "workspace_python_s": []}
    for i in range(rounds):
        for label, environment in (("cached_env_s", env), ("workspace_python_s", None)):
            inference = InferenceConfig("score.py", source_directory=folder, environment=environment)
            start = time.perf_counter()
            service = Model.deploy(ws, f"deploy-{i}-{label[:3]}", [], inference, config)
            service.wait_for_deployment(timeout_sec=120)
            figures[label].append(time.perf_counter() - start)
            service.delete()
    return {label: statistics.median(values) for label, values in figures.items()}


def overhead(ws, root: Path, duration: int) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    """wrk through the front end and straight to the replica at each connection count."""
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.registry.model import Model

    inference = InferenceConfig("score.py", source_directory=source(root, "overhead-src", IRIS_SCORE))
    config = local_deploy_configuration(auth_enabled=True, num_replicas=1, replica_max_concurrent_requests=64)
    service = Model.deploy(ws, "overhead", [], inference, config)
    service.wait_for_deployment(timeout_sec=120)
    replica = next(r for r in service.observed["replicas"] if r["state"] == "ready")
    direct_url = f"http://127.0.0.1:{replica['port']}/score"
    through, plain = lua_file(root, service.get_keys()[0]), lua_file(root, None)
    rows = []
    for connections in CONNECTIONS:
        direct = run_wrk(direct_url, connections, duration, plain)
        front = run_wrk(service.scoring_uri, connections, duration, through)
        rows.append({"connections": connections, "direct": direct, "frontend": front})
    service.delete()
    return rows


def scale_up_time(ws, root: Path) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the start of a load step to a second replica serving."""
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.registry.model import Model

    inference = InferenceConfig("score.py", source_directory=source(root, "busy-src", BUSY_SCORE))
    config = local_deploy_configuration(
        auth_enabled=False,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=4,
        max_request_wait_time=5000,
    )
    service = Model.deploy(ws, "elastic", [], inference, config)
    service.wait_for_deployment(timeout_sec=120)
    lua = lua_file(root, None)
    load = subprocess.Popen(
        ["wrk", "-t2", "-c8", "-d30s", "-s", str(lua), service.scoring_uri],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = time.perf_counter()
    try:
        while True:
            service.update_deployment_state()
            if sum(r["state"] == "ready" for r in service.observed.get("replicas", [])) >= 2:
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() - start > 60:
                elapsed = float("inf")
                break
            time.sleep(0.05)  # poll interval of the measurement
    finally:
        load.terminate()
        load.wait()
    service.delete()
    return elapsed


def main() -> None:
    """Run the three measurements and print them beside their goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="deploys per deploy-time figure")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    root = Path(tempfile.mkdtemp(prefix="modelport-local-bench-"))
    os.environ["MODELPORT_HOME"] = str(root / "home")
    os.environ["MODELPORT_QUIET"] = "1"
    from modelport.compute.local.driver import LocalDriver
    from modelport.workspace import Workspace

    ws = Workspace.create("bench", path=root / "ws")
    try:
        deploy = deploy_times(ws, root, args.rounds)
        rows = overhead(ws, root, args.duration)
        scale = scale_up_time(ws, root)
    finally:
        LocalDriver().stop_agent(ws)
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"(a) deploy -> Healthy: cached environment {deploy['cached_env_s']:.2f} s, workspace Python "
        f"{deploy['workspace_python_s']:.2f} s (goal < 3 s)"
    )
    print("(b) connections | direct rps  p50 ms  p99 ms | front end rps  p50 ms  p99 ms | +p50 ms  rps kept")
    for row in rows:
        d, f = row["direct"], row["frontend"]
        kept = f["rps"] / d["rps"] * 100 if d["rps"] else 0.0
        print(
            f"    {row['connections']:>11} | {d['rps']:>10.0f} {d['p50_ms']:>7.2f} {d['p99_ms']:>7.2f} | "
            f"{f['rps']:>13.0f} {f['p50_ms']:>7.2f} {f['p99_ms']:>7.2f} | {f['p50_ms'] - d['p50_ms']:>7.2f} "
            f"{kept:>8.0f}%   (goal: +0.5 ms, 70 %)"
        )
    print(f"(c) load step -> second replica serving: {scale:.2f} s (goal < 3 s)")
    if args.out:
        args.out.write_text(json.dumps({"deploy": deploy, "overhead": rows, "scale_up_s": scale}, indent=2))


if __name__ == "__main__":
    main()
