"""CLI start-up: wall time of 'cxm --help', 'cxm metrics --help' and 'cxm metrics list'.

Each command runs in a fresh interpreter (as a person runs it) a few times; prints the median
wall time and CPU time (user + system of the child, which a loaded machine does not inflate the
way it does wall time) against the interpreter's own floor, ``python -c pass``, and the ratio.
The goal: under 1 s of wall time on an unloaded machine.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``python args`` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    opts = parser.parse_args()
    runs = 3 if opts.quick else opts.runs
    with tempfile.TemporaryDirectory(prefix="cxm-bench-cli-") as data_dir:
        env = {**os.environ, "CXM_DATA_DIR": data_dir}
        env.pop("CXM_DATABASE_URL", None)
        medians: dict[str, tuple[float, float]] = {}
        for name, args in COMMANDS.items():
            timed(args, env)  # warm the file cache and the bytecode
            samples = [timed(args, env) for _ in range(runs)]
            medians[name] = (statistics.median(w for w, _ in samples),
                             statistics.median(c for _, c in samples))  # fmt: skip
    floor, floor_cpu = medians["python -c pass (floor)"]
    print(
        f"median of {runs} runs, each in a fresh interpreter; load average {os.getloadavg()[0]:.1f}"
    )
    for name, (seconds, cpu) in medians.items():
        verdict = "" if name.startswith("python") else ("  ok" if seconds < 1 else "  SLOW")
        print(
            f"{name:<26} {seconds:6.3f} s ({seconds / floor:5.1f}x the floor)"
            f"  CPU {cpu:6.3f} s ({cpu / max(floor_cpu, 1e-3):5.1f}x){verdict}"
        )


if __name__ == "__main__":
    main()
