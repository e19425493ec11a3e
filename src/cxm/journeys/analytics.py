"""Where each department sits in its customers' journeys, read from the interaction log.

"The customer doesn't see silos": a department's scorecard shows how many detractors passed
through its touchpoints (against promoters), and which other departments its customers met.

One query answers this for every department at once: each customer's journey in the range
becomes a set of departments (a bit mask), and the query returns one row per distinct set
with its number of customers and of NPS responses by category. Companies have few departments,
so that result has at most a few hundred rows however large the log is; every department's
reach and neighbours are then read off it in Python. The query is an Ibis expression on every
engine; on DuckDB, the default store, a month rollup kept in memory answers it (below).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.customers.analytics import with_trait
from cxm.store.analytics import reading

BITS = 62  # departments per mask column (a signed 64-bit integer)
CATEGORIES = ("detractor", "passive", "promoter")


@dataclass
class DepartmentJourneys:
    """Reach of one department in respondents' journeys, and its neighbours."""

    department: str
    customers: int = 0  # distinct customers who touched the department
    reach: dict[str, dict[str, float]] = field(default_factory=dict)  # nps category -> n, share
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # department, customers, share


@dataclass
class JourneyMap:
    """Customers and NPS responses counted by the set of departments the customer touched."""

    # (departments touched, customers with exactly that set, responses by NPS category)
    groups: list[tuple[frozenset[str], int, dict[str, int]]]

    def department(self, key: str, limit: int = 10) -> DepartmentJourneys:
        out = DepartmentJourneys(key)
        neighbours: Counter[str] = Counter()
        reach = {c: {"n": 0, "touched": 0} for c in CATEGORIES}
        for touched, customers, responses in self.groups:
            hit = key in touched
            for category, n in responses.items():
                reach[category]["n"] += n
                reach[category]["touched"] += n if hit else 0
            if hit:
                out.customers += customers
                for other in touched - {key}:
                    neighbours[other] += customers
        out.reach = {
            c: {"n": r["n"], "touched": r["touched"], "share": r["touched"] / r["n"]}
            for c, r in reach.items()
            if r["n"]
        }
        ranked = sorted(neighbours.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        out.neighbours = [
            {"department": d, "customers": n, "share": n / out.customers} for d, n in ranked
        ]
        return out


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value else None


def _bits(owners: dict[str, str], departments: list[str]) -> list[dict[str, int]]:
    """Per mask column (62 departments each), each touchpoint's bit: its owner's position."""
    out = []
    for chunk in range(0, len(departments), BITS):
        bits = {d: 1 << i for i, d in enumerate(departments[chunk : chunk + BITS])}
        out.append({tp: bits[d] for tp, d in sorted(owners.items()) if d in bits})
    return out


def _masks(ix: ir.Table, owners: dict[str, str], departments: list[str]) -> dict[str, ir.Value]:
    """One mask column per 62 departments: the bit of the department owning the touchpoint."""
    # A CASE over the touchpoint keys: cheaper than joining the touchpoint table to every row.
    return {
        f"m{i}": ix.touchpoint_key.substitute(of_touchpoint, else_=0).cast("int64")
        for i, of_touchpoint in enumerate(_bits(owners, departments))
    }


def _grouped(con: BaseBackend, owners: dict[str, str], departments: list[str],
             lo: dt.datetime | None, hi: dt.datetime | None,
             segment: str | None = None) -> ir.Table:  # fmt: skip
    ix = con.table("interactions")
    r = con.table("responses")
    if segment is not None:
        members = with_trait(con, "segment", segment)
        ix = ix.filter(ix.customer_id.isin(members))
        r = r.filter(r.customer_id.isin(members))
    if lo is not None:
        ix = ix.filter(ix.event_time >= lo)
        r = r.filter(r.submitted_at >= lo)
    if hi is not None:
        ix = ix.filter(ix.event_time < hi)
        r = r.filter(r.submitted_at < hi)
    # Interactions at touchpoints nobody owns set no bit (a customer with only those has the
    # empty set, and touched no department).
    ix = ix.filter(ix.customer_id.notnull())
    masks = _masks(ix, owners, departments)
    per_customer = ix.group_by(cid=ix.customer_id).aggregate(
        touched=ix.customer_id.count(), **{m: e.bit_or() for m, e in masks.items()}
    )
    scored = r.filter(r.nps_category.isin(CATEGORIES), r.customer_id.notnull())
    answers = scored.group_by(rcid=scored.customer_id).aggregate(
        **{c: (scored.nps_category == c).sum() for c in CATEGORIES}
    )
    both = per_customer.outer_join(answers, per_customer.cid == answers.rcid)
    return both.group_by(**{m: both[m].fill_null(0) for m in masks}).aggregate(
        customers=both.touched.count(), **{c: both[c].fill_null(0).sum() for c in CATEGORIES}
    )


def journey_map(
    engine: Engine | BaseBackend,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    segment: str | None = None,
) -> JourneyMap:
    """For interactions and NPS responses in [start, end): customers and responses grouped by
    the set of departments each customer's interactions touched; with ``segment``, only the
    customers whose ``segment`` trait has that value."""
    with reading(engine) as con:
        tp = con.table("touchpoints")
        owned = tp.filter(tp.department_key.notnull()).select("key", "department_key")
        owners = {r["key"]: r["department_key"] for r in owned.to_pyarrow().to_pylist()}
        if not owners:
            return JourneyMap([])
        departments = sorted(set(owners.values()))
        lo, hi = _naive(start), _naive(end)
        if con.name == "duckdb":
            frame = _rollup_frame(con, owners, departments, lo, hi, segment)
        else:
            frame = _grouped(con, owners, departments, lo, hi, segment).to_pandas()
        return _journey_map(frame, departments)


def _journey_map(frame: pd.DataFrame, departments: list[str]) -> JourneyMap:
    groups = []
    for row in frame.to_dict("records"):
        touched = frozenset(
            d
            for i in range(0, len(departments), BITS)
            for bit, d in enumerate(departments[i : i + BITS])
            if int(row[f"m{i // BITS}"]) >> bit & 1
        )
        responses = {c: int(row[c] or 0) for c in CATEGORIES}
        groups.append((touched, int(row["customers"]), responses))
    return JourneyMap(groups)


# ---- the month rollup (DuckDB) -------------------------------------------------------------
#
# Grouping the whole log by customer costs a few hundred milliseconds at ten million rows, on
# every scorecard whose date range is not in the dashboards' cache. On DuckDB, each store keeps
# in memory, per customer and month, the set of departments touched (about a row per customer
# and month: a tenth of the log or less). A date range then reads the rollup for its whole
# months, and the log itself only for the days at its edges and for rows received since the
# rollup was built. The rollup is rebuilt when touchpoint ownership changes, when rows it
# covers were deleted (erasure), or when the rows received since outgrow a fifth of it. Merges
# re-point the log to the surviving profile; the rollup's older ids are mapped through
# ``customers.merged_into`` (one hop deep) when read. Nothing of it is written to disk.


@dataclass
class _Rollup:
    owners: tuple[tuple[str, str], ...]
    watermark: dt.datetime | None  # the newest received_at it covers (naive UTC)
    rows: int  # log rows received at or before the watermark when built
    months: pa.Table  # cid, month, m0 .. mk


_rollups: dict[str, _Rollup] = {}
_rollup_lock = threading.Lock()
TAIL_SHARE = 0.2
STORES = 4  # rollups kept, one per store file


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _mask_sql(owners: dict[str, str], departments: list[str]) -> list[str]:
    """One ``CASE touchpoint_key ...`` per 62 departments, as SQL."""
    out = []
    for of_touchpoint in _bits(owners, departments):
        whens = " ".join(f"WHEN {_sql_str(tp)} THEN {bit}" for tp, bit in of_touchpoint.items())
        out.append(f"CAST(CASE touchpoint_key {whens} ELSE 0 END AS BIGINT)")
    return out


def _rollup(raw: Any, owners: dict[str, str], departments: list[str]) -> _Rollup:
    """The rollup of this store, built again when it no longer matches the log."""
    path = str(raw.execute("PRAGMA database_list").fetchall()[0][2] or ":memory:")
    key = tuple(sorted(owners.items()))
    with _rollup_lock:
        current = _rollups.get(path)
        if current is not None and current.owners == key:
            covered, newer = raw.sql(
                f"SELECT count(*) FILTER (WHERE {_received(current.watermark)}), "
                f"count(*) FILTER (WHERE NOT coalesce({_received(current.watermark)}, FALSE)) "
                "FROM interactions"
            ).fetchall()[0]
            if covered == current.rows and newer <= TAIL_SHARE * max(current.rows, 100_000):
                return current
        (watermark,) = raw.sql("SELECT max(received_at) FROM interactions").fetchall()[0]
        covers = _received(watermark)
        (rows,) = raw.sql(f"SELECT count(*) FROM interactions WHERE {covers}").fetchall()[0]
        cases = _mask_sql(owners, departments)
        masks = ", ".join(f"bit_or({m}) AS m{i}" for i, m in enumerate(cases))
        months = raw.sql(
            f"SELECT customer_id AS cid, CAST(date_trunc('month', event_time) AS DATE) AS month, "
            f"{masks} FROM interactions "
            f"WHERE customer_id IS NOT NULL AND {covers} GROUP BY 1, 2"
        ).to_arrow_table()
        built = _Rollup(key, watermark, int(rows), months)
        _rollups.pop(path, None)
        _rollups[path] = built
        while len(_rollups) > STORES:  # a process reads one store; tests open many
            del _rollups[next(iter(_rollups))]
        return built


def _month_start(value: dt.datetime, up: bool) -> dt.datetime:
    first = value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if up and first < value:
        return (first + dt.timedelta(days=32)).replace(day=1)
    return first


def _rollup_frame(con: BaseBackend, owners: dict[str, str], departments: list[str],
                  lo: dt.datetime | None, hi: dt.datetime | None,
                  segment: str | None = None) -> pd.DataFrame:  # fmt: skip
    raw: Any = con.con  # the DuckDB connection
    rollup = _rollup(raw, owners, departments)
    width = len(rollup.months.column_names) - 2
    ms = [f"m{i}" for i in range(width)]
    case = _mask_sql(owners, departments)
    log_cols = ", ".join(f"{c} AS {m}" for c, m in zip(case, ms, strict=True))
    # Whole months from the rollup; the log for the days at the edges of the range.
    full_lo = _month_start(lo, up=True) if lo else None
    full_hi = _month_start(hi, up=False) if hi else None
    if full_lo and full_hi and full_lo >= full_hi:
        full_lo = full_hi = None  # no whole month inside: the log for all of it
        whole, edges = "FALSE", _between("event_time", lo, hi)
    else:
        whole = _between("month", full_lo, full_hi)
        parts = []
        if lo and full_lo:
            parts.append(_between("event_time", lo, full_lo))
        if hi and full_hi:
            parts.append(_between("event_time", full_hi, hi))
        edges = " OR ".join(parts) or "FALSE"
    covered = _received(rollup.watermark)
    responses = _between("submitted_at", lo, hi)

    def members(column: str) -> str:
        if segment is None:
            return "TRUE"
        return (f"{column} IN (SELECT customer_id FROM customer_traits "
                f"WHERE name = 'segment' AND value = {_sql_str(segment)})")  # fmt: skip

    counts = ", ".join(f"count(*) FILTER (WHERE nps_category = '{c}') AS {c}" for c in CATEGORIES)
    sql = f"""
        WITH parts AS (
            SELECT cid, {", ".join(ms)} FROM _journey_months WHERE {whole}
            UNION ALL
            SELECT customer_id, {log_cols} FROM interactions
            WHERE customer_id IS NOT NULL AND {covered} AND ({edges})
            UNION ALL
            SELECT customer_id, {log_cols} FROM interactions
            WHERE customer_id IS NOT NULL AND NOT coalesce({covered}, FALSE)
              AND {_between("event_time", lo, hi)}
        ),
        per AS (SELECT cid, {", ".join(f"bit_or({m}) AS {m}" for m in ms)} FROM parts GROUP BY cid),
        mapped AS (
            SELECT coalesce(c.merged_into, per.cid) AS cid,
                   {", ".join(f"bit_or(per.{m}) AS {m}" for m in ms)}
            FROM per LEFT JOIN customers c ON c.id = per.cid GROUP BY 1
        ),
        -- Traits belong to the surviving profile: the segment is taken after the mapping.
        kept AS (SELECT * FROM mapped WHERE {members("cid")}),
        answers AS (
            SELECT customer_id AS rcid, {counts}
            FROM responses
            WHERE nps_category IN ({", ".join(f"'{c}'" for c in CATEGORIES)})
              AND customer_id IS NOT NULL AND {responses}
              AND {members("customer_id")}
            GROUP BY 1
        )
        SELECT {", ".join(f"coalesce(m.{m}, 0) AS {m}" for m in ms)}, count(m.cid) AS customers,
               {", ".join(f"sum(coalesce(a.{c}, 0)) AS {c}" for c in CATEGORIES)}
        FROM kept m FULL OUTER JOIN answers a ON m.cid = a.rcid
        GROUP BY {", ".join(str(i + 1) for i in range(width))}
    """  # keys are validated identifiers, quoted; times are formatted literals
    raw.register("_journey_months", rollup.months)
    try:
        return raw.sql(sql).df()
    finally:
        raw.unregister("_journey_months")


def _sql_ts(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _received(watermark: dt.datetime | None) -> str:
    """Log rows the rollup covers (received at or before its watermark)."""
    return "FALSE" if watermark is None else f"(received_at <= {_sql_ts(watermark)})"


def _between(column: str, lo: dt.datetime | None, hi: dt.datetime | None) -> str:
    conds = []
    if lo is not None:
        conds.append(f"{column} >= {_sql_ts(lo)}")
    if hi is not None:
        conds.append(f"{column} < {_sql_ts(hi)}")
    return "(" + (" AND ".join(conds) or "TRUE") + ")"


def department_journeys(
    engine: Engine | BaseBackend,
    department: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 10,
    segment: str | None = None,
) -> DepartmentJourneys:
    """For interactions and NPS responses in [start, end): the share of detractors, passives
    and promoters whose journeys touched ``department``, and the other departments the
    department's customers touched (by distinct customers)."""
    return journey_map(engine, start, end, segment).department(department, limit)
