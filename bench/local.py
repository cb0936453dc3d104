"""Local target benchmark (issue 4, point 11): deploy time, front-end overhead, scale-up time.

(a) deploy → Healthy with an already built (cached) environment, and with the workspace's own
    Python; goal under 3 s.
(b) throughput and p50/p99 through the local agent's front end versus straight to the replica,
    at 1, 8 and 64 connections (wrk, keep-alive); goal: at most +0.5 ms at p50 and at least 70 %
    of the direct throughput. One replica, key auth on, and a per-replica concurrency of 64 so
    that forwarding is measured, not queueing. Two workloads, side by side: a trivial ``run()``
    (the most adversarial case: the hop is most of the work) and the scikit-learn iris model of
    ``bench/scoring.py`` (a realistic small model; the goal's workload, see docs/decisions.md).
    Each point is measured ``--rounds`` times per side, alternating, and the medians printed,
    beside a reference: the bare round trip between two processes on this machine.
(c) seconds from a load step to the first added replica serving, default refresh period (1 s);
    goal under 3 s.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``) and the package index for the environment
build. Prints figures; asserts nothing.
Usage: ``python bench/local.py [--duration 5] [--parts abc] [--out F]``.
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
from typing import Any

from scoring import prepare
from wrk import run_wrk

TRIVIAL_SCORE = textwrap.dedent(
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
# One connection count of (b): wrk's figures straight to the replica and through the front end.
Row = dict[str, Any]
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
    from modelport import Model
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.registry.conda import CondaDependencies
    from modelport.registry.environment import Environment

    env = Environment("bench-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults", "six"])
    folder = source(root, "deploy-src", TRIVIAL_SCORE)
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


def overhead_workloads(ws, root: Path, duration: int, rounds: int) -> dict[str, list[Row]]:  # type: ignore[no-untyped-def]
    """(b) for the trivial ``run()`` and for the iris model (trained as ``bench/scoring.py`` does)."""
    from modelport import Model
    from modelport.config import InferenceConfig

    trivial = InferenceConfig("score.py", source_directory=source(root, "overhead-src", TRIVIAL_SCORE))
    app, model_dir = prepare(root / "iris")
    iris_model = Model.register(ws, model_path=str(model_dir / "model.pkl"), model_name="iris")
    iris = InferenceConfig("score.py", source_directory=str(app))
    return {
        "trivial": overhead(ws, root, duration, rounds, "overhead", trivial, []),
        "iris": overhead(ws, root, duration, rounds, "overhead-iris", iris, [iris_model]),
    }


def overhead(ws, root: Path, duration: int, rounds: int, name: str, inference, models: list) -> list[Row]:  # type: ignore[no-untyped-def]
    """Deploy ``name`` (one replica, key auth); wrk through the front end and straight to the replica,
    ``rounds`` times each, alternating; the medians."""
    from modelport import Model
    from modelport.config import local_deploy_configuration

    config = local_deploy_configuration(auth_enabled=True, num_replicas=1, replica_max_concurrent_requests=64)
    service = Model.deploy(ws, name, models, inference, config)
    service.wait_for_deployment(timeout_sec=120)
    replica = next(r for r in service.observed["replicas"] if r["state"] == "ready")
    direct_url = f"http://127.0.0.1:{replica['port']}/score"
    scripts = root / f"{name}-wrk"  # each service has its own key
    scripts.mkdir()
    through, plain = lua_file(scripts, service.get_keys()[0]), lua_file(scripts, None)
    rows: list[Row] = []
    for connections in CONNECTIONS:
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "frontend": []}
        for index in range(rounds):
            # Alternating order, so that a slow spell of this shared machine hits both sides.
            order = (("direct", direct_url, plain), ("frontend", service.scoring_uri, through))
            for side, url, lua in order if index % 2 == 0 else order[::-1]:
                runs[side].append(run_wrk(url, connections, duration, lua))
        rows.append({"connections": connections, **{side: median_run(r) for side, r in runs.items()}})
    service.delete()
    return rows


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each wrk figure's median over the rounds."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def round_trip_floor(rounds: int = 20_000) -> dict[str, float]:
    """Microseconds per round trip of a small message between two uvloop processes (an echo),
    over loopback TCP and over a Unix socket: the least any extra process in the path costs."""
    import asyncio
    import socket

    import uvloop

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def ping(sock: socket.socket) -> float:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for _ in range(rounds):
            await loop.sock_sendall(sock, BODY.encode())
            await loop.sock_recv(sock, 4096)
        return (time.perf_counter() - start) / rounds * 1e6

    figures = {}
    for family in ("tcp", "unix"):
        if family == "unix":
            left, right = socket.socketpair()
        else:
            with socket.create_server(("127.0.0.1", 0)) as listener:
                left = socket.create_connection(listener.getsockname())
                right, _ = listener.accept()
        for sock in (left, right):
            sock.setblocking(False)
            if family == "tcp":
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        child = os.fork()
        if child == 0:  # the echo side
            left.close()

            async def echo(sock: socket.socket) -> None:
                await asyncio.get_running_loop().connect_accepted_socket(Echo, sock)
                await asyncio.Event().wait()

            uvloop.run(echo(right))
        right.close()
        try:
            figures[family] = uvloop.run(ping(left))
        finally:
            os.kill(child, 9)
            os.waitpid(child, 0)
            left.close()
    return figures


def scale_up_time(ws, root: Path) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the start of a load step to a second replica serving."""
    from modelport import Model
    from modelport.config import InferenceConfig, local_deploy_configuration

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
    parser.add_argument(
        "--rounds", type=int, default=3, help="deploys per figure in (a); wrk runs per side and point in (b)"
    )
    parser.add_argument("--parts", default="abc", help="which measurements to run (a, b, c)")
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
    figures: dict[str, Any] = {}
    try:
        if "a" in args.parts:
            figures["deploy"] = deploy_times(ws, root, args.rounds)
        if "b" in args.parts:
            figures["overhead"] = overhead_workloads(ws, root, args.duration, args.rounds)
            figures["round_trip_us"] = round_trip_floor()
        if "c" in args.parts:
            figures["scale_up_s"] = scale_up_time(ws, root)
    finally:
        LocalDriver().stop_agent(ws)
        shutil.rmtree(root, ignore_errors=True)
    if "deploy" in figures:
        deploy = figures["deploy"]
        print(
            f"(a) deploy -> Healthy: cached environment {deploy['cached_env_s']:.2f} s, workspace Python "
            f"{deploy['workspace_python_s']:.2f} s (goal < 3 s)"
        )
    if "overhead" in figures:
        print_overhead(figures["overhead"])
        floor = figures["round_trip_us"]
        print(
            f"    reference: a bare round trip between two processes costs {floor['tcp']:.0f} µs over "
            f"loopback TCP, {floor['unix']:.0f} µs over a Unix socket"
        )
    if "scale_up_s" in figures:
        print(f"(c) load step -> second replica serving: {figures['scale_up_s']:.2f} s (goal < 3 s)")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


def print_overhead(workloads: dict[str, list[Row]]) -> None:
    """(b) with the workloads side by side, one line per connection count."""
    cell = "{:>6} {:>13}    {:>6} {:>13} {:>6} {:>5}"
    print(
        "(b) straight to the replica -> through the front end, medians (goal: +p50 <= 0.5 ms, kept >= 70 %)"
    )
    print(f"    {'':>5} | " + " | ".join(f"{name:<57}" for name in workloads))
    header = cell.format("rps", "p50/p99 ms", "rps", "p50/p99 ms", "+p50", "kept")
    print(f"    {'conns':>5} | " + " | ".join(header for _ in workloads))
    for index, connections in enumerate(CONNECTIONS):
        cells = []
        for rows in workloads.values():
            d, f = rows[index]["direct"], rows[index]["frontend"]
            cells.append(
                cell.format(
                    f"{d['rps']:.0f}",
                    f"{d['p50_ms']:.2f}/{d['p99_ms']:.2f}",
                    f"{f['rps']:.0f}",
                    f"{f['p50_ms']:.2f}/{f['p99_ms']:.2f}",
                    f"{f['p50_ms'] - d['p50_ms']:+.2f}",
                    f"{f['rps'] / d['rps']:.0%}" if d["rps"] else "-",
                )
            )
        print(f"    {connections:>5} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
