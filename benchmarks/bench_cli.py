"""CLI start-up: wall time of 'cxm --help', 'cxm metrics --help' and 'cxm metrics list'.

Each command runs in a fresh interpreter (as a person runs it) a few times; prints the median
against the interpreter's own floor, ``python -c pass``, and the ratio. The goal: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass (floor)": ["-c", "pass"],
    "cxm --help": ["-m", "cxm.cli.main", "--help"],
    "cxm metrics --help": ["-m", "cxm.cli.main", "metrics", "--help"],
    "cxm metrics list": ["-m", "cxm.cli.main", "metrics", "list"],
}


def wall(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    opts = parser.parse_args()
    runs = 3 if opts.quick else opts.runs
    with tempfile.TemporaryDirectory(prefix="cxm-bench-cli-") as data_dir:
        env = {**os.environ, "CXM_DATA_DIR": data_dir}
        env.pop("CXM_DATABASE_URL", None)
        medians = {}
        for name, args in COMMANDS.items():
            wall(args, env)  # warm the file cache and the bytecode
            medians[name] = statistics.median(wall(args, env) for _ in range(runs))
    floor = medians["python -c pass (floor)"]
    print(f"median of {runs} runs, each in a fresh interpreter")
    for name, seconds in medians.items():
        verdict = "" if name.startswith("python") else ("  ok" if seconds < 1 else "  SLOW")
        print(f"{name:<26} {seconds:6.3f} s  {seconds / floor:6.1f}x the floor{verdict}")


if __name__ == "__main__":
    main()
