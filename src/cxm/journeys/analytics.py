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

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.customers.facts import current_customer, with_trait
from cxm.interactions.facts import log
from cxm.org.facts import touchpoints_expr
from cxm.store.analytics import reading
from cxm.surveys import facts as survey_facts

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


@ibis.udf.agg.builtin(name="bit_or")
def _bit_or(value: int) -> int:  # type: ignore[empty-body]
    """The engine's own BIT_OR aggregate (DuckDB, PostgreSQL and Spark SQL all have it).

    Called as a builtin function because Ibis's PySpark compiler lacks the BitOr reduction.
    """


def _per_customer(ix: ir.Table, masks: dict[str, ir.Value], by: dict[str, ir.Value]) -> ir.Table:
    """Log rows (or rollup rows) grouped by ``by``: each mask OR-ed over the group."""
    return ix.group_by(**by).aggregate(**{m: _bit_or(e) for m, e in masks.items()})


def _touched(con: BaseBackend, per: ir.Table, masks: list[str], lo: dt.datetime | None,
             hi: dt.datetime | None, segment: str | None) -> ir.Table:  # fmt: skip
    """Customers and NPS answers grouped by the set of departments touched.

    ``per`` holds ``cid`` and the mask columns, one row or more per customer id (old ids of
    merged customers are mapped to the survivor here, then OR-ed together).
    """
    per = current_customer(con, per, "cid")
    per = per.group_by("cid").aggregate(**{m: _bit_or(per[m]) for m in masks})
    r = survey_facts.responses(con)
    if segment is not None:
        # Traits belong to the surviving profile, so members are taken after the mapping.
        members = with_trait(con, "segment", segment)
        per = per.filter(per.cid.isin(members))
        r = r.filter(r.customer_id.isin(members))
    if lo is not None:
        r = r.filter(r.submitted_at >= lo)
    if hi is not None:
        r = r.filter(r.submitted_at < hi)
    scored = r.filter(r.nps_category.isin(CATEGORIES), r.customer_id.notnull())
    answers = scored.group_by(rcid=scored.customer_id).aggregate(
        **{c: (scored.nps_category == c).sum() for c in CATEGORIES}
    )
    both = per.outer_join(answers, per.cid == answers.rcid)
    return both.group_by(**{m: both[m].fill_null(0) for m in masks}).aggregate(
        customers=both.cid.count(), **{c: both[c].fill_null(0).sum() for c in CATEGORIES}
    )


def _in_range(ix: ir.Table, lo: dt.datetime | None, hi: dt.datetime | None) -> ir.Table:
    if lo is not None:
        ix = ix.filter(ix.event_time >= lo)
    if hi is not None:
        ix = ix.filter(ix.event_time < hi)
    return ix


def _grouped(con: BaseBackend, owners: dict[str, str], departments: list[str],
             lo: dt.datetime | None, hi: dt.datetime | None,
             segment: str | None = None) -> ir.Table:  # fmt: skip
    """The plain expression: the log in [lo, hi) grouped by customer, then by touched set."""
    # Interactions at touchpoints nobody owns set no bit (a customer with only those has the
    # empty set, and touched no department).
    ix = _in_range(log(con), lo, hi)
    ix = ix.filter(ix.customer_id.notnull())
    masks = _masks(ix, owners, departments)
    per = _per_customer(ix, masks, {"cid": ix.customer_id})
    return _touched(con, per, list(masks), lo, hi, segment)


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
        tp = touchpoints_expr(con)
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


def _months(ix: ir.Table, owners: dict[str, str], departments: list[str]) -> ir.Table:
    """The rollup's expression: per customer and month, the departments touched (masks)."""
    ix = ix.filter(ix.customer_id.notnull())
    by = {"cid": ix.customer_id, "month": ix.event_time.truncate("M").date()}
    return _per_customer(ix, _masks(ix, owners, departments), by)


def _rollup(con: BaseBackend, owners: dict[str, str], departments: list[str]) -> _Rollup:
    """The rollup of this store, built again when it no longer matches the log."""
    raw: Any = con.con  # the DuckDB connection, only to name the store file
    path = str(raw.execute("PRAGMA database_list").fetchall()[0][2] or ":memory:")
    key = tuple(sorted(owners.items()))
    ix = log(con)
    with _rollup_lock:
        current = _rollups.get(path)
        if current is not None and current.owners == key:
            covered = _covered(ix, current.watermark)
            counts = ix.aggregate(
                covered=covered.sum(), newer=(~covered).sum()
            ).to_pyarrow().to_pylist()[0]  # fmt: skip
            newer = int(counts["newer"] or 0)
            if int(counts["covered"] or 0) == current.rows and newer <= TAIL_SHARE * max(
                current.rows, 100_000
            ):
                return current
        watermark = ix.received_at.max().to_pyarrow().as_py()
        upto = ix.filter(_covered(ix, watermark))
        rows = int(upto.count().to_pyarrow().as_py())
        months = _months(upto, owners, departments).to_pyarrow()
        built = _Rollup(key, watermark, rows, months)
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


def _covered(ix: ir.Table, watermark: dt.datetime | None) -> ir.BooleanValue:
    """Log rows the rollup covers (received at or before its watermark)."""
    if watermark is None:
        return ibis.literal(False)
    return (ix.received_at <= watermark).fill_null(False)


def _rollup_frame(con: BaseBackend, owners: dict[str, str], departments: list[str],
                  lo: dt.datetime | None, hi: dt.datetime | None,
                  segment: str | None = None) -> pd.DataFrame:  # fmt: skip
    """``_grouped``'s answer, reading whole months from the rollup and the log for the rest.

    The parts are the rollup's months inside the range, the covered log rows in the days at
    its edges, and every log row received since the rollup in the range; OR-ing masks is
    idempotent, so each customer's set is the same as from the log alone.
    """
    rollup = _rollup(con, owners, departments)
    ms = [c for c in rollup.months.column_names if c.startswith("m") and c != "month"]
    months = ibis.memtable(rollup.months)
    # Whole months from the rollup; the log for the days at the edges of the range.
    full_lo = _month_start(lo, up=True) if lo else None
    full_hi = _month_start(hi, up=False) if hi else None
    ix = log(con).filter(_.customer_id.notnull())
    covered = _covered(ix, rollup.watermark)
    if full_lo and full_hi and full_lo >= full_hi:
        whole = months.filter(ibis.literal(False))  # no whole month inside: the log for all
        edges = _in_range(ix.filter(covered), lo, hi)
    else:
        whole = months
        if full_lo is not None:
            whole = whole.filter(whole.month >= full_lo.date())
        if full_hi is not None:
            whole = whole.filter(whole.month < full_hi.date())
        parts = []
        if lo and full_lo:
            parts.append(_in_range(ix.filter(covered), lo, full_lo))
        if hi and full_hi:
            parts.append(_in_range(ix.filter(covered), full_hi, hi))
        edges = ibis.union(*parts) if parts else ix.filter(ibis.literal(False))
    tail = _in_range(ix.filter(~covered), lo, hi)
    from_log = ibis.union(edges, tail)
    per = ibis.union(
        whole.select("cid", *ms),
        from_log.select(cid=from_log.customer_id, **_masks(from_log, owners, departments)),
        distinct=False,
    )
    return _touched(con, per, ms, lo, hi, segment).to_pandas()


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
