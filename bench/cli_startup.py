"""CLI start-up benchmark (issue 11, point 8): wall time of short ``modelport`` commands.

Goals: ``modelport --version`` and ``modelport --help`` ≤ 0.3 s, ``modelport model list`` (an
empty SQLite workspace) ≤ 0.5 s on the project's machines. Each command runs ``--rounds`` times,
the contenders in rotated order, and the medians are printed beside the reference ``python -c
pass`` (the interpreter's own start-up, which no command can beat), as a difference to it, and
as CPU time (user + system), which a busy machine disturbs less than wall time.
Runs the ``modelport`` script next to this Python (as a user does), else ``python -m modelport``.
``--baseline SRC`` also runs each command with another checkout's ``src`` folder first on
``PYTHONPATH`` (e.g. ``git archive main src | tar -x -C /tmp/before``), interleaved with this
one, so that a change is compared under the same load. Prints figures; asserts nothing.
Usage: ``python bench/cli_startup.py [--rounds 15] [--baseline /tmp/before/src]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS_S = {"--version": 0.3, "--help": 0.3, "model list": 0.5}


def _modelport() -> list[str]:
    script = Path(sys.executable).parent / "modelport"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelport"]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; CPU time varies less on a busy machine."""
    started, cpu = time.perf_counter(), _cpu_of_children()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _cpu_of_children() - cpu


def main() -> None:
    """Print the median start-up time of each command beside ``python -c pass``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", type=Path, help="another checkout's src folder, to compare with")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="modelport-cli-bench-"))
    try:
        home = {**os.environ, "HOME": str(folder)}  # the workspace index goes here, not to ~
        create = [*_modelport(), "workspace", "create", "bench"]
        subprocess.run(create, cwd=folder, check=True, env=home, capture_output=True)
        commands = {name: [*_modelport(), *name.split()] for name in GOALS_S}
        contenders = {"python -c pass": ([sys.executable, "-c", "pass"], home)}
        contenders.update({name: (argv, home) for name, argv in commands.items()})
        if args.baseline is not None:
            baseline = {**home, "PYTHONPATH": str(args.baseline.resolve())}
            contenders.update({f"{name} (baseline)": (argv, baseline) for name, argv in commands.items()})
        for argv, env in contenders.values():  # warm the page cache and the bytecode caches
            _once(argv, folder, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        names = list(contenders)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                argv, env = contenders[name]
                times[name].append(_once(argv, folder, env))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    reference = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"median of {args.rounds} rounds, rotated order; {sys.executable}")
    print(f"{'command':<27} {'wall':>8} {'- python':>9} {'CPU':>8} {'goal (wall)':>12}")
    for name, samples in times.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        goal = GOALS_S.get(name)
        goal_text = "" if goal is None else f"≤ {goal:.1f} s " + ("met" if wall <= goal else "not met")
        print(f"{name:<27} {wall:>7.3f}s {wall - reference:>+8.3f}s {cpu:>7.3f}s {goal_text:>12}")


if __name__ == "__main__":
    main()
