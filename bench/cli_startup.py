"""CLI start-up benchmark (issue 11, point 8): wall time of short ``modelport`` commands.

Goals: ``modelport --version`` and ``modelport --help`` ≤ 0.3 s, ``modelport model list`` (an
empty SQLite workspace) ≤ 0.5 s on the project's machines. Each command runs ``--rounds`` times,
the contenders in rotated order, and the medians are printed beside the reference ``python -c
pass`` (the interpreter's own start-up, which no command can beat) and as a difference to it.
Runs the ``modelport`` script next to this Python (as a user does), else ``python -m modelport``.
Prints figures; asserts nothing.
Usage: ``python bench/cli_startup.py [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import os
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


def _once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    """Print the median start-up time of each command beside ``python -c pass``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="modelport-cli-bench-"))
    try:
        home = {**os.environ, "HOME": str(folder)}  # the workspace index goes here, not to ~
        create = [*_modelport(), "workspace", "create", "bench"]
        subprocess.run(create, cwd=folder, check=True, env=home, capture_output=True)
        contenders = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--version": [*_modelport(), "--version"],
            "--help": [*_modelport(), "--help"],
            "model list": [*_modelport(), "model", "list"],
        }
        for argv in contenders.values():  # warm the page cache and the bytecode caches
            _once(argv, folder, home)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        names = list(contenders)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(_once(contenders[name], folder, home))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    reference = statistics.median(times["python -c pass"])
    print(f"median of {args.rounds} rounds, rotated order; {sys.executable}")
    print(f"{'command':<16} {'median':>8} {'- python':>9} {'goal':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        goal = GOALS_S.get(name)
        verdict = "" if goal is None else ("met" if median <= goal else "not met")
        goal_text = "" if goal is None else f"≤{goal:.1f} s"
        print(f"{name:<16} {median:>7.3f}s {median - reference:>+8.3f}s {goal_text:>7} {verdict}")


if __name__ == "__main__":
    main()
