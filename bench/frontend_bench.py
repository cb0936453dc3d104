"""Front-end benchmark: throughput and p50/p99 through the front end versus straight to the replica.

One replica (``modelport serve``, a trivial ``run()``) and one front end (its own process, uvloop,
key auth on, as the local agent runs it) on loopback; ``wrk`` (keep-alive, fixed duration) posts
the same JSON body at 1, 8 and 64 connections to the replica's ``/score`` and to the front end's
``/api/v1/service/bench/score``. The front end lets as many requests through per replica as there
are connections (``--max-concurrent``), so what is measured is forwarding, not queueing.
Goal (issue 4, point 11b): the front end adds at most 0.5 ms at p50 and keeps at least 70 % of
the direct throughput. On a small machine the load generator, the front end and the replica share
the cores, so throughput ratios there understate what a front end on its own cores does.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``; the bench checks and says so).
Usage: ``python bench/frontend_bench.py [--duration 5] [--workers 1] [--out FILE.json]``.
``--proxy starlette`` measures the alternative that docs/decisions.md compares with: Starlette +
uvicorn forwarding through an httpx pool. Internal: ``--serve-frontend KIND PORT URL CAP`` runs
the proxy process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from wrk import free_port, run_wrk

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-primary-key"
SERVICE = "bench"
BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})
CONNECTIONS = (1, 8, 64)
SERVE = [sys.executable, "-m", "modelport", "serve", "--entry_script"]
READY_DEADLINE_S = 60.0
SCORE_PY = """
import json

def init():
    pass

def run(data):
    return {"result": len(json.loads(data)["data"])}
"""
LUA = f"""
wrk.method = "POST"
wrk.body = {json.dumps(BODY)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""


def serve_frontend(port: int, replica_url: str, max_concurrent: int) -> None:
    """Run a front end routing service ``bench`` to one replica until SIGTERM."""
    import uvloop

    from modelport.frontend.routes import AuthPolicy, ReplicaTarget, ServiceRoute
    from modelport.frontend.server import FrontEnd

    async def main() -> None:
        frontend = FrontEnd(port=port)
        await frontend.start()
        frontend.set_routes(
            {
                SERVICE: ServiceRoute(
                    SERVICE,
                    auth=AuthPolicy("key", keys=(KEY, "secondary")),
                    max_concurrent_per_replica=max_concurrent,
                    replicas=(ReplicaTarget("r1", replica_url),),
                )
            }
        )
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        await frontend.stop()

    uvloop.run(main())


def serve_starlette(port: int, replica_url: str, max_concurrent: int) -> None:
    """The alternative measured for docs/decisions.md: Starlette + uvicorn, forwarding with httpx."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    limits = httpx.Limits(max_connections=max_concurrent, max_keepalive_connections=max_concurrent)
    client = httpx.AsyncClient(base_url=replica_url, limits=limits)

    async def score(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return Response(b'{"message": "unauthorized"}', 401, media_type="application/json")
        answer = await client.post("/score", content=await request.body(), headers=request.headers)
        return Response(answer.content, answer.status_code, headers=answer.headers)

    async def health(request: Request) -> Response:
        return Response(b"Healthy")

    app = Starlette(
        routes=[Route(f"/api/v1/service/{SERVICE}/score", score, methods=["POST"]), Route("/", health)]
    )
    uvicorn.run(app, port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning")


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200; exit if the process dies or the deadline passes."""
    end = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < end:
        if process.poll() is not None:
            sys.exit(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # poll interval of the readiness check
    sys.exit(f"{url} not ready after {READY_DEADLINE_S:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a process in its own session, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL after 10 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    """Run the comparison and print (and save) the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=1, help="replica worker processes")
    parser.add_argument(
        "--max-concurrent", type=int, default=max(CONNECTIONS), help="front-end cap per replica"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "frontend_bench.json")
    parser.add_argument(
        "--proxy", choices=sorted(PROXIES), default="modelport", help="what runs in front of the replica"
    )
    parser.add_argument(
        "--serve-frontend", nargs=4, metavar=("KIND", "PORT", "REPLICA_URL", "MAX_CONCURRENT")
    )
    args = parser.parse_args()
    if args.serve_frontend:
        kind, port, url, cap = args.serve_frontend
        PROXIES[kind](int(port), url, int(cap))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    root = Path(tempfile.mkdtemp(prefix="frontend-bench-"))
    (root / "score.py").write_text(SCORE_PY)
    lua = root / "post.lua"
    lua.write_text(LUA)
    replica_port, frontend_port = free_port(), free_port()
    replica = start(
        [*SERVE, str(root / "score.py"), "--port", str(replica_port), "--worker_count", str(args.workers)],
        root / "replica.log",
    )
    replica_url = f"http://127.0.0.1:{replica_port}"
    frontend = start(
        [
            sys.executable,
            __file__,
            "--serve-frontend",
            args.proxy,
            str(frontend_port),
            replica_url,
            str(args.max_concurrent),
        ],
        root / "frontend.log",
    )
    results: list[dict[str, object]] = []
    try:
        wait_ready(replica_url + "/health/ready", replica)
        wait_ready(f"http://127.0.0.1:{frontend_port}/", frontend)
        direct_url = replica_url + "/score"
        via_url = f"http://127.0.0.1:{frontend_port}/api/v1/service/{SERVICE}/score"
        check = httpx.post(via_url, content=BODY, headers={"Authorization": f"Bearer {KEY}"})
        if check.status_code != 200:
            sys.exit(f"front end answered {check.status_code}: {check.text}")
        for url in (direct_url, via_url):
            run_wrk(url, 8, 2, lua)  # warm-up: connections, caches
        for connections in CONNECTIONS:
            direct = run_wrk(direct_url, connections, args.duration, lua)
            cpu_before = cpu_seconds(frontend.pid)
            via = run_wrk(via_url, connections, args.duration, lua)
            cpu_us = (cpu_seconds(frontend.pid) - cpu_before) / max(via["requests"], 1.0) * 1e6
            results.append(
                {
                    "connections": connections,
                    "direct": direct,
                    "frontend": via,
                    "added_p50_ms": round(via["p50_ms"] - direct["p50_ms"], 3),
                    "throughput_kept": round(via["rps"] / direct["rps"], 3) if direct["rps"] else 0.0,
                    "frontend_cpu_us_per_request": round(cpu_us, 1),
                }
            )
    finally:
        stop(frontend)
        stop(replica)
    print(
        f"proxy: {args.proxy}, cores: {os.cpu_count()}, replica workers: {args.workers}, "
        f"front-end cap: {args.max_concurrent}"
    )
    print(
        f"{'conns':>5} {'direct rps':>11} {'fe rps':>9} {'kept':>6} {'p50 d/fe ms':>13} {'p99 d/fe ms':>14} "
        "fe cpu µs/req"
    )
    for row in results:
        d, v = row["direct"], row["frontend"]
        assert isinstance(d, dict) and isinstance(v, dict)
        print(
            f"{row['connections']:>5} {d['rps']:>11.0f} {v['rps']:>9.0f} {row['throughput_kept']:>6.0%} "
            f"{d['p50_ms']:>6.2f}/{v['p50_ms']:<6.2f} {d['p99_ms']:>6.2f}/{v['p99_ms']:<7.2f} "
            f"{row['frontend_cpu_us_per_request']:>13}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "proxy": args.proxy,
        "cores": os.cpu_count(),
        "workers": args.workers,
        "max_concurrent": args.max_concurrent,
    }
    args.out.write_text(json.dumps({**summary, "results": results}, indent=2) + "\n")
    print(f"saved {args.out}")


PROXIES = {"modelport": serve_frontend, "starlette": serve_starlette}

if __name__ == "__main__":
    main()
