"""Scoring-server benchmark: modelport serve against Azure ML's server and two bare baselines.

All servers score the same iris model with the same entry script (``tests/runtime/scripts/iris.py``)
under the same load generator (``wrk``, keep-alive, fixed duration), in one run:

* ``modelport``   – ``modelport serve`` (front process + worker processes)
* ``azmlinfsrv``  – Azure ML's ``azureml-inference-server-http`` in its own virtualenv (the one the
  opt-in tests create under ``.pytest_cache``; pass ``--reference-venv`` to use another)
* ``starlette``   – a bare Starlette + uvicorn (uvloop, httptools) app calling the same ``run()``
* ``raw``         – a raw uvloop + httptools responder calling the same ``run()`` (the practical
  limit of Python here)

Server and load generator are pinned to different cores when there are at least two. Reported per
server: requests/s at 8 connections, p50 latency at 1 connection, server CPU time per request (all
server processes, from /proc), and idle resident memory. Figures vary with the machine; compare
ratios within one run; ``--rounds N`` measures each server N times in rotated order and reports
medians, then the goals as ratios.
Usage: ``python bench/scoring.py [--duration 10] [--workers 1 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from wrk import free_port, run_wrk

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "runtime" / "scripts" / "iris.py"
BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})
READY_DEADLINE_S = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

STARLETTE_APP = """
import os, sys
sys.path.insert(0, os.environ["BENCH_APP_ROOT"])
import score
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import json

score.init()

async def run(request):
    body = await request.body()
    return Response(json.dumps(score.run(body.decode("utf-8"))), media_type="application/json")

app = Starlette(routes=[Route("/score", run, methods=["POST"]), Route("/", lambda r: Response("Healthy"))])
"""

RAW_APP = """
import asyncio, json, os, socket, sys
sys.path.insert(0, os.environ["BENCH_APP_ROOT"])
import httptools, uvloop
import score

score.init()

class Proto(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.p = httptools.HttpRequestParser(self)
        self.body = []
    def data_received(self, data):
        self.p.feed_data(data)
    def on_url(self, url):
        self.url = url
    def on_body(self, body):
        self.body.append(body)
    def on_message_complete(self):
        raw = b"".join(self.body).decode("utf-8")
        self.body = []
        out = b"Healthy" if self.url == b"/" else json.dumps(score.run(raw)).encode()
        head = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n"
        self.t.write(head % len(out) + out)

async def main():
    server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

uvloop.run(main())
"""

WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = {json.dumps(BODY)}
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Result:
    """One server's figures."""

    server: str
    workers: int
    rps_8: float
    p50_ms_1: float
    cpu_us_per_request: float
    idle_rss_mib: float
    errors: int


def prepare(root: Path) -> tuple[Path, Path]:
    """Train the iris model and lay out the app root; return (app root, model dir)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model_dir = root / "azureml-models" / "iris" / "1"
    model_dir.mkdir(parents=True)
    with (model_dir / "model.pkl").open("wb") as out:
        pickle.dump(LogisticRegression(max_iter=500).fit(features, labels), out)
    app = root / "app"
    app.mkdir()
    shutil.copy(SCRIPT, app / "score.py")
    (app / "bare_starlette.py").write_text(textwrap.dedent(STARLETTE_APP))
    (app / "bare_raw.py").write_text(textwrap.dedent(RAW_APP))
    (root / "post.lua").write_text(WRK_SCRIPT)
    return app, model_dir


def command(kind: str, port: int, workers: int, app: Path, reference_venv: Path) -> list[str]:
    """The command line that starts server ``kind``."""
    script = str(app / "score.py")
    if kind == "modelport":
        base = [sys.executable, "-m", "modelport", "serve"]
        return [*base, "--entry_script", script, "--port", str(port), "--worker_count", str(workers)]
    if kind == "azmlinfsrv":
        binary = str(reference_venv / "bin" / "azmlinfsrv")
        return [binary, "--entry_script", script, "--port", str(port), "--worker_count", str(workers)]
    if kind == "starlette":
        uvicorn = [sys.executable, "-m", "uvicorn", "bare_starlette:app", "--app-dir", str(app)]
        opts = ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        return [*uvicorn, *opts, "--loop", "uvloop", "--http", "httptools"]
    return [sys.executable, str(app / "bare_raw.py"), str(port)]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids``."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_mib(pids: list[int]) -> float:
    """Resident memory of ``pids`` in MiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def measure(kind: str, workers: int, app: Path, model_dir: Path, args: argparse.Namespace) -> Result | None:
    """Start server ``kind``, warm it up, load it, stop it."""
    if kind == "azmlinfsrv" and not (args.reference_venv / "bin" / "azmlinfsrv").exists():
        print(f"skipping azmlinfsrv: no {args.reference_venv}/bin/azmlinfsrv", file=sys.stderr)
        return None
    port = free_port()
    cpus = os.sched_getaffinity(0)
    pinned = len(cpus) >= 2 and workers == 1
    server_cpus, load_cpus = (str(min(cpus)), str(max(cpus))) if pinned else (None, None)
    argv = command(kind, port, workers, app, args.reference_venv)
    if server_cpus is not None:
        argv = ["taskset", "-c", server_cpus, *argv]
    paths = {"AZUREML_MODEL_DIR": str(model_dir), "AML_APP_ROOT": str(app), "BENCH_APP_ROOT": str(app)}
    env = {**os.environ, **paths}
    process = subprocess.Popen(
        argv, env=env, cwd=app, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_ready(port, process)
        url, lua = f"http://127.0.0.1:{port}/score", app.parent / "post.lua"
        run_wrk(url, 8, 2, lua, threads=1, cpus=load_cpus)  # warm-up
        time.sleep(1.0)  # let the warm-up's connections close before the idle-memory reading
        tree = process_tree(process.pid)
        idle = rss_mib(tree)
        before = cpu_seconds(tree)
        loaded = run_wrk(url, 8, args.duration, lua, threads=1, cpus=load_cpus)
        spent = cpu_seconds(tree) - before
        single = run_wrk(url, 1, max(2, args.duration // 2), lua, threads=1, cpus=load_cpus)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    requests = max(loaded["requests"], 1.0)
    return Result(
        server=kind,
        workers=workers,
        rps_8=loaded["rps"],
        p50_ms_1=single["p50_ms"],
        cpu_us_per_request=spent / requests * 1e6,
        idle_rss_mib=idle,
        errors=int(loaded["errors"] + single["errors"]),
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.post(f"http://127.0.0.1:{port}/score", content=BODY, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not ready after {READY_DEADLINE_S} s")


def main() -> None:
    """Run the benchmark and print a table (and JSON to bench/results/)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts to measure")
    parser.add_argument("--servers", nargs="+", default=["modelport", "azmlinfsrv", "starlette", "raw"])
    parser.add_argument(
        "--reference-venv", type=Path, default=REPO / ".pytest_cache" / "d" / "azmlinfsrv-venv"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements per server, in rotated order; medians reported"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="scoring-bench-") as tmp:
        app, model_dir = prepare(Path(tmp))
        for workers in args.workers:
            runs: dict[str, list[Result]] = {kind: [] for kind in args.servers}
            for index in range(args.rounds):
                # Rotated, so that a slow spell of a shared machine does not always hit the same server.
                shift = index % len(args.servers)
                for kind in args.servers[shift:] + args.servers[:shift]:
                    result = measure(kind, workers, app, model_dir, args)
                    if result is not None:
                        runs[kind].append(result)
                        print(_row(result), flush=True)
            results += [median_result(kind_runs) for kind_runs in runs.values() if kind_runs]
    if args.rounds > 1:
        print("medians:")
        for result in results:
            print(_row(result))
    print_goals(results)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps([asdict(r) for r in results], indent=2))


def median_result(runs: list[Result]) -> Result:
    """Each figure's median over the rounds of one server."""
    figures = {
        name: statistics.median(getattr(r, name) for r in runs)
        for name in ("rps_8", "p50_ms_1", "cpu_us_per_request", "idle_rss_mib")
    }
    return Result(runs[0].server, runs[0].workers, errors=sum(r.errors for r in runs), **figures)


def print_goals(results: list[Result]) -> None:
    """The issue's goals as same-run ratios (those whose servers were measured)."""
    one = {r.server: r for r in results if r.workers == 1}
    mine = one.get("modelport")
    if mine is None:
        return
    checks: list[tuple[str, float, str, bool]] = []
    for other, least in (("azmlinfsrv", 3.5), ("starlette", 1.0), ("raw", 0.75)):
        if other in one and one[other].rps_8:
            ratio = mine.rps_8 / one[other].rps_8
            checks.append((f"req/s @8 vs {other}", ratio, f">= {least}", ratio >= least))
    if bare := one.get("starlette"):
        for label, name, most in (
            ("CPU per request vs starlette", "cpu_us_per_request", 1.0),
            ("p50 @1 vs starlette", "p50_ms_1", 1.0),
        ):
            ratio = getattr(mine, name) / max(getattr(bare, name), 1e-9)
            checks.append((label, ratio, f"<= {most}", ratio <= most))
        ratio = mine.idle_rss_mib / max(bare.idle_rss_mib, 1e-9)
        checks.append(("idle memory vs starlette", ratio, "< 1.2", ratio < 1.2))
    two = next((r for r in results if r.server == "modelport" and r.workers == 2), None)
    if two is not None and mine.rps_8:
        ratio = two.rps_8 / mine.rps_8
        checks.append(("req/s @8, 2 workers vs 1", ratio, ">= 1.7", ratio >= 1.7))
    print("goals (modelport, 1 worker unless said):")
    for label, ratio, goal, met in checks:
        print(f"  {label:<32} {ratio:5.2f}x  goal {goal:<7} {'met' if met else 'NOT met'}")


def _row(r: Result) -> str:
    return (
        f"{r.server:<11} workers={r.workers}  {r.rps_8:8.0f} req/s @8  p50@1 {r.p50_ms_1:6.2f} ms  "
        f"cpu {r.cpu_us_per_request:6.0f} us/req  idle {r.idle_rss_mib:6.1f} MiB  errors {r.errors}"
    )


if __name__ == "__main__":
    main()
