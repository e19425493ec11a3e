"""eNPS by team and month with the confidentiality rule: cxm (Ibis on DuckDB) vs pandas.

Run: .venv/bin/python benchmarks/bench_employees.py [--employees N] [--months M] [--runs R]
Builds a store with N employees in teams of 3 to 30 (eight teams a department), each answering
the monthly pulse with probability 0.7, then times ``cxm.employees.service.pulse_results`` (by
team, by month; every group's disclosure decided on the whole tree) against the same figures in
pandas from a DataFrame already in memory (filter, join memberships, group, count distinct,
the same disclosure function), and checks both agree. Prints p50/p95 ms and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cxm.employees import service
from cxm.employees.confidential import Node, disclosed
from cxm.employees.directory import EmployeeIn, apply
from cxm.org import schemas
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.store.bulk import insert_rows
from cxm.surveys.facts import responses_table

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MIN = 5


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _company(n: int, rng: np.random.Generator) -> pd.DataFrame:
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(rng.integers(3, 31)))
    rows = []
    for t, size in enumerate(sizes):
        for _ in range(size):
            rows.append((f"E{len(rows):06d}", f"t{t}", f"d{t // 8}"))
    return pd.DataFrame(rows[:n], columns=["employee_id", "team", "department"])


def _answers(staff: pd.DataFrame, months: int, rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for m in range(months):
        asked = staff[rng.random(len(staff)) < 0.7]
        when = START + dt.timedelta(days=31 * m + 10)
        frames.append(pd.DataFrame({
            "id": [f"r{m}-{e}" for e in asked.employee_id], "employee_id": asked.employee_id,
            "submitted_at": when, "nps": rng.integers(0, 11, len(asked)),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _pandas(answers: pd.DataFrame, staff: pd.DataFrame) -> dict[tuple[str, str], float | None]:
    a = answers.merge(staff, on="employee_id")
    a["period"] = a.submitted_at.dt.tz_localize(None).dt.to_period("M").dt.start_time.dt.date
    a["cat"] = np.select([a.nps >= 9, a.nps <= 6], [1, -1], 0)
    out: dict[tuple[str, str], float | None] = {}
    for period, p in a.groupby("period"):  # the same rule, per period, as cxm applies
        nodes = {"company:company": Node(None, 0, p.employee_id.nunique())}
        for d, n in p.groupby("department").employee_id.nunique().items():
            nodes[f"department:{d}"] = Node("company:company", 1, int(n))
        teams = p.groupby(["team", "department"]).agg(n=("employee_id", "nunique"),
                                                      enps=("cat", "mean"))  # fmt: skip
        for (t, d), row in teams.iterrows():
            nodes[f"team:{t}"] = Node(f"department:{d}", 2, int(row.n))
        shown = disclosed(nodes, MIN)
        for (t, _d), row in teams.iterrows():
            key = (period.isoformat(), t)
            out[key] = round(100 * row.enps, 1) if f"team:{t}" in shown else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--employees", type=int, default=5_000)
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    staff = _company(args.employees, rng)
    answers = _answers(staff, args.months, rng)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
        upgrade(engine)
        with engine.begin() as conn:
            for d in sorted(staff.department.unique()):
                org.create_department(conn, schemas.DepartmentCreate(key=d, name=d))
            for t, d in staff[["team", "department"]].drop_duplicates().itertuples(index=False):
                org.create_team(conn, schemas.TeamCreate(key=t, department_key=d, name=t))
            apply(conn, [EmployeeIn(e, t, start_date=dt.date(2025, 1, 1))
                         for e, t in zip(staff.employee_id, staff.team, strict=True)])  # fmt: skip
            rows = [{"id": r.id, "survey_key": "employee_pulse", "survey_version": 1,
                     "respondent_kind": "employee", "employee_id": r.employee_id,
                     "started_at": r.submitted_at, "submitted_at": r.submitted_at,
                     "completed": True, "nps": int(r.nps), "source": "import"}
                    for r in answers.itertuples()]  # fmt: skip
            insert_rows(conn, responses_table, rows)

        def ours() -> dict[tuple[str, str], float | None]:
            res = service.pulse_results(engine, "team", "month", minimum=MIN)
            return {(r.period[:10] if r.period else "", r.key): r.enps for r in res}

        theirs = _pandas(answers, staff)
        mine = ours()
        assert mine.keys() == theirs.keys(), "different groups"
        assert all((mine[k] is None) == (theirs[k] is None) for k in mine), "disclosure differs"
        assert all(mine[k] is None or abs(mine[k] - theirs[k]) < 0.051 for k in mine)  # type: ignore[operator]
        hidden = sum(v is None for v in mine.values())
        c50, c95 = _timed(ours, args.runs)
        p50, p95 = _timed(lambda: _pandas(answers, staff), args.runs)
        engine.dispose()
    print(f"{args.employees:,} employees, {staff.team.nunique()} teams, {len(answers):,} answers, "
          f"{len(mine):,} team-months ({hidden} hidden)")  # fmt: skip
    print(f"cxm (Ibis on DuckDB, store read + disclosure): p50 {c50:.0f} ms, p95 {c95:.0f} ms")
    print(f"pandas (frame in memory + same disclosure):    p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print(f"ratio pandas / cxm: {p50 / c50:.2f}x")


if __name__ == "__main__":
    main()
