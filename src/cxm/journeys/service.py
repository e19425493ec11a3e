"""Journey read models for the CLI and pages: summary, variants, map and friction sequences.

Every read takes an optional period, ``since`` / ``until``: only the cases that start in it.

The mining runs in the engine (``mining``); only aggregated rows come back, and intervals are
computed on them (``cxm.metrics.stats``).
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeAlias

import ibis.expr.types as ir
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.customers.facts import with_trait
from cxm.errors import Invalid
from cxm.journeys import mining
from cxm.journeys.definitions import Journey
from cxm.metrics import analytics as metrics_ax
from cxm.metrics import service as metric_service
from cxm.metrics import stats
from cxm.metrics.definitions import Metric
from cxm.store.analytics import reading

Outcome = Literal["failure", "churn", "detractor"] | str
OUTCOMES = ("failure", "churn", "detractor")
# The score metrics a journey's steps carry by default (company-wide definitions, by name).
SCORES = ("csat", "ces")
CASE_OUTCOMES = ("success", "failure", "open")


def _rows(t: ir.Table) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in t.to_pyarrow().to_pylist()]


def _raw(t: ir.Table) -> list[dict[str, Any]]:
    """Rows of sufficient statistics as they come (unrounded: intervals are computed on them)."""
    out: list[dict[str, Any]] = t.to_pyarrow().to_pylist()
    return out


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    return v


def _rate(x: int, n: int) -> dict[str, Any]:
    if n <= 0:
        return {"n": 0, "count": 0, "rate": None, "low": None, "high": None}
    ci = stats.wilson_interval(x, n)
    return {"n": n, "count": x, "rate": round(ci.value, 4), "low": round(ci.low, 4),
            "high": round(ci.high, 4)}  # fmt: skip


def _nps(row: dict[str, Any]) -> dict[str, Any] | None:
    p, a, d = (int(row.get(k) or 0) for k in ("promoters", "passives", "detractors"))
    if p + a + d == 0:
        return None
    ci = stats.nps_interval(p, a, d)
    return {"n": p + a + d, "nps": round(100 * ci.value, 1), "low": round(100 * ci.low, 1),
            "high": round(100 * ci.high, 1)}  # fmt: skip


def score_metrics(metrics: Mapping[str, Metric],
                  names: Sequence[str] = SCORES) -> list[Metric]:  # fmt: skip
    """The defined metrics among ``names`` that a journey's cases can carry (metrics of survey
    answers), in that order; names the installation does not define are left out."""
    return [metrics[n] for n in names if n in metrics and metrics[n].fact == "responses"]


def _score(metric: Metric, row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The metric's value and interval by its own method (``cxm.metrics``), in its unit."""
    ci = metric_service.interval(metric, dict(row)) if row else None
    if ci is None:
        return None

    def r(v: float) -> float | None:
        return None if math.isnan(v) else round(v, 4)

    return {"value": r(ci.value), "low": r(ci.low), "high": r(ci.high), "n": int(ci.n),
            "method": ci.method, "unit": metric.unit}  # fmt: skip


def _carries(row: dict[str, Any]) -> dict[str, Any]:
    """Failure and churn rates (Wilson 95%) and NPS of the cases behind a step or hand-off."""
    n = int(row["cases"])
    return {"failure": _rate(int(row["failures"]), n), "churn": _rate(int(row["churned"]), n),
            "nps": _nps(row)}  # fmt: skip


def case_events(con: BaseBackend, journey: Journey, since: dt.datetime | None,
            until: dt.datetime | None, segment: str | None = None,
            outcome: str | None = None, customer: str | None = None) -> ir.Table:  # fmt: skip
    """The journey's events of the cases starting in [since, until) (aware times are
    converted to UTC; naive ones are taken as UTC); with ``segment``, only the cases whose
    customer's ``segment`` trait has that value; with ``outcome`` (success, failure, open),
    only the cases ending so; with ``customer``, only that customer's cases."""

    def naive(value: dt.datetime | None) -> dt.datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    lo, hi = naive(since), naive(until)
    if lo is not None and hi is not None and lo >= hi:
        raise Invalid(f"the period is empty: since ({lo}) must be before until ({hi})")
    if outcome is not None and outcome not in CASE_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(CASE_OUTCOMES)}; got '{outcome}'")
    ev = mining.events(con, journey, lo, hi, customer)
    if segment:
        ev = ev.filter(ev.customer_id.isin(with_trait(con, "segment", segment)))
    if outcome is not None:
        cs = mining.cases(con, journey, ev)
        ev = ev.filter(ev.case_id.isin(cs.filter(cs.outcome == outcome).case_id))
    return ev


class _Kept:
    """On DuckDB, tables computed once into temporary tables for the several reads that
    follow (each would otherwise recompute the journey's windows over the whole log); they
    are dropped when the block ends. Other engines read the expressions as they are."""

    def __init__(self, con: BaseBackend) -> None:
        self.con = con
        self.names: list[str] = []

    def __call__(self, t: ir.Table) -> ir.Table:
        if self.con.name != "duckdb":
            return t
        name = f"_journey_{secrets.token_hex(6)}"
        self.names.append(name)
        return self.con.create_table(name, t, temp=True)

    def __enter__(self) -> _Kept:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            self.con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')


View: TypeAlias = tuple[dt.datetime | None, dt.datetime | None, str | None, str | None]


class Mined:
    """One view of a journey (period, segment, outcome) mined once: its events (``ev``) and,
    when first asked for, its cases (``cs``), kept for every read given this object as its
    source (``summary``, ``variants``, ``directly_follows``, ``stage_flows``, ``friction``,
    conformance). A page showing several reads of one view computes the journey's windows
    over the log once instead of once per read."""

    def __init__(self, con: BaseBackend, journey: Journey, view: View, kept: _Kept) -> None:
        self.con, self.journey, self.view, self.kept = con, journey, view, kept
        self.ev = kept(case_events(con, journey, *view))
        self._cs: ir.Table | None = None
        self._owners: dict[str, str] | None = None

    @property
    def owners(self) -> dict[str, str]:
        """Each activity's owning department (``_owners``), read once per view."""
        if self._owners is None:
            self._owners = _owners(self.con, self.ev)
        return self._owners

    @property
    def cs(self) -> ir.Table:
        if self._cs is None:
            self._cs = self.kept(mining.cases(self.con, self.journey, self.ev))
        return self._cs


Source: TypeAlias = Engine | BaseBackend | Mined  # a store, a backend, or a view already mined


@contextmanager
def mined(source: Engine | BaseBackend, journey: Journey, since: dt.datetime | None = None,
          until: dt.datetime | None = None, segment: str | None = None,
          outcome: str | None = None) -> Iterator[Mined]:  # fmt: skip
    """The journey's view mined once, for the reads inside the block (its temporary tables
    are dropped when the block ends)."""
    with reading(source) as con, _Kept(con) as kept:
        yield Mined(con, journey, (since, until, segment, outcome), kept)


@contextmanager
def view(source: Engine | BaseBackend | Mined, journey: Journey, since: dt.datetime | None,
          until: dt.datetime | None, segment: str | None,
          outcome: str | None) -> Iterator[Mined]:  # fmt: skip
    """``source`` itself when it is this view already mined, else the view mined here."""
    if isinstance(source, Mined):
        asked = (journey.name, (since, until, segment, outcome))
        if (source.journey.name, source.view) != asked:
            raise ValueError(f"mined view {source.journey.name} {source.view} read as {asked}")
        yield source
        return
    with mined(source, journey, since, until, segment, outcome) as m:
        yield m


def _owners(con: BaseBackend, ev: ir.Table) -> dict[str, str]:
    """Each activity's owning department: the one owning the touchpoints of most of its
    events (ties: the first department key)."""
    ranked = sorted(_rows(mining.owners(con, ev)), key=lambda r: (-r["events"], r["department"]))
    owner: dict[str, str] = {}
    for r in ranked:
        owner.setdefault(r["activity"], r["department"])
    return owner


def summary(source: Source, journey: Journey, since: dt.datetime | None = None,
            until: dt.datetime | None = None, segment: str | None = None,
            outcome: str | None = None,
            scores: Sequence[Metric] = ()) -> dict[str, Any]:  # fmt: skip
    """Cases; outcome rates (share of cases with each outcome, Wilson 95% intervals); churn
    rate; NPS of the cases' customers' answers (adjusted Wald interval); throughput hours
    (quartiles, p90, mean; first to last event); rework (share of cases repeating an
    activity that is not ``repeatable``); hand-offs per case and per department pair; and the
    activities with their owning department, counts, rework and drop-off (cases ending at
    the activity without success, and their share of the cases through it). Each activity and
    hand-off pair carries the failure and churn rates and NPS of the cases holding it.

    ``scores`` (metrics of survey answers, e.g. ``score_metrics(metrics)``): each answer the
    metric counts is attributed to its customer's latest case started at or before it (as
    the NPS is); ``scores`` of the journey and of each activity (the answers of the cases
    through it) give the metric's value and interval by the metric's own method
    (``cxm.metrics.service.interval``: Wilson for a %, adjusted mean on a scale, adjusted
    Wald for NPS), or None without answers."""
    with view(source, journey, since, until, segment, outcome) as mv:
        con, kept, ev, cs = mv.con, mv.kept, mv.ev, mv.cs
        t = cs.throughput_hours
        agg = cs.aggregate(
            cases=cs.count(),
            success=(cs.outcome == "success").sum(),
            failure=(cs.outcome == "failure").sum(),
            open=(cs.outcome == "open").sum(),
            churned=cs.churned.sum(),
            promoters=cs.promoters.sum(),
            passives=cs.passives.sum(),
            detractors=cs.detractors.sum(),
            p25=t.quantile(0.25),
            median=t.median(),
            p75=t.quantile(0.75),
            p90=t.quantile(0.9),
            mean=t.mean(),
        )
        row = _rows(agg)[0]
        acts_t = mining.activities(ev)
        drops = mining.drop_off(ev, cs).rename(dactivity="activity")
        acts_t = acts_t.left_join(drops, acts_t.activity == drops.dactivity).drop("dactivity")
        acts_t = acts_t.mutate(dropped=acts_t.dropped.fill_null(0))
        acts = _rows(acts_t.order_by("activity"))
        steps = {r["activity"]: r for r in _rows(mining.carried(cs, ev, ["activity"]))}
        owner = mv.owners
        for a in acts:
            a["department"] = owner.get(a["activity"])
            a["repeatable"] = a["activity"] in journey.repeatable
            a["drop_off"] = round(a["dropped"] / a["cases"], 4)
            a["scores"] = {}
            a.update(_carries(steps[a["activity"]]))
        overall: dict[str, Any] = {}
        for m in scores:
            answered = kept(mining.answers(con, cs, m))
            overall[m.name] = _score(m, _raw(metrics_ax.summarise(answered, m))[0])
            per_step = {r["_step"]: r for r in _raw(mining.step_scores(ev, answered, m))}
            for a in acts:
                a["scores"][m.name] = _score(m, per_step.get(a["activity"]))
        reworked = int(mining.reworked(ev, journey).count().to_pyarrow().as_py() or 0)
        moved = kept(mining.handoff_events(con, ev))  # one window pass for both reads
        pairs = mining.handoffs(con, ev, moved)
        hand = _rows(pairs.order_by([mining.ibis.desc("frequency"), "source", "target"]))
        carried = mining.carried(cs, moved, ["source", "target"])
        by_pair = {(r["source"], r["target"]): r for r in _rows(carried)}
        for h in hand:
            h.update(_carries(by_pair[(h["source"], h["target"])]))
    n = int(row["cases"] or 0)
    return {
        "journey": journey.name,
        "description": journey.description,
        "case": journey.case,
        "cases": n,
        "outcomes": {k: _rate(int(row[k] or 0), n) for k in ("success", "failure", "open")},
        "churn": _rate(int(row["churned"] or 0), n),
        "nps": _nps(row),
        "scores": overall,
        "throughput_hours": {k: row[k] for k in ("p25", "median", "p75", "p90", "mean")},
        "rework": _rate(reworked, n),
        "handoffs": {
            "per_case": round(sum(h["frequency"] for h in hand) / n, 4) if n else None,
            "pairs": hand,
        },
        "activities": acts,
    }


def variants(source: Source, journey: Journey, limit: int = 20,
             since: dt.datetime | None = None, until: dt.datetime | None = None,
             segment: str | None = None, outcome: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``limit`` most frequent variants with count, share of cases, failure and churn
    rates (Wilson 95%), NPS of their customers' answers and median throughput hours; plus
    the number of distinct variants."""
    with view(source, journey, since, until, segment, outcome) as m:
        v = mining.variants(m.cs)
        distinct = int(v.count().to_pyarrow().as_py())
        rows = _rows(v.limit(limit))
    for r in rows:
        r["failure"] = _rate(int(r.pop("failures")), int(r["cases"]))
        r["churn"] = _rate(int(r.pop("churned")), int(r["cases"]))
        r["nps"] = _nps({c: r.pop(c) for c in ("promoters", "passives", "detractors")})
    return {"journey": journey.name, "distinct": distinct, "variants": rows}


def directly_follows(source: Source, journey: Journey,
                     min_frequency: int = 1, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, segment: str | None = None,
                     outcome: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The directly-follows graph: nodes (activity, events, cases, department: the department
    owning most of its events, None when no touchpoint of it is owned; stage: the stage of
    the touchpoints of most of its events; position: its mean step in the cases) and edges
    (source, target, frequency, cases, median_hours), edges below ``min_frequency`` left
    out."""
    with view(source, journey, since, until, segment, outcome) as m:
        con, ev = m.con, m.ev
        edges = mining.directly_follows(ev)
        edges = edges.filter(edges.frequency >= min_frequency)
        edges = edges.order_by([mining.ibis.desc("frequency"), "source", "target"])
        nodes = ev.group_by("activity").aggregate(
            events=ev.count(), cases=ev.case_id.nunique(), position=ev.step.cast("float64").mean()
        )
        owner = m.owners
        stage: dict[str, str] = {}
        for r in sorted(_rows(mining.stages(con, ev)), key=lambda r: (-r["events"], r["stage"])):
            stage.setdefault(r["activity"], r["stage"])
        rows = [{**n, "department": owner.get(n["activity"]), "stage": stage.get(n["activity"])}
                for n in _rows(nodes.order_by("activity"))]  # fmt: skip
        return {"journey": journey.name, "nodes": rows, "edges": _rows(edges)}


def stage_flows(source: Source, journey: Journey, depth: int = 6,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                segment: str | None = None,
                outcome: str | None = None) -> dict[str, Any]:  # fmt: skip
    """How cases move between stages over their first ``depth`` steps, for a Sankey:
    ``flows`` of (step, source stage, target stage, cases), where a step's stage is the stage
    of its event's touchpoint (``unstaged`` when it has none) and step k flows to step k+1."""
    if not 2 <= depth <= 12:
        raise Invalid(f"depth must be between 2 and 12, got {depth}")
    with view(source, journey, since, until, segment, outcome) as m:
        flows = mining.stage_flows(m.con, m.ev, depth)
        rows = _rows(flows.order_by(["step", "source", "target"]))
    return {"journey": journey.name, "depth": depth, "flows": rows}


def customer_cases(source: Engine | BaseBackend, journey: Journey,
                   customer_id: str, limit: int = 20) -> list[dict[str, Any]]:  # fmt: skip
    """One customer's cases in the journey, latest first: ``case_id, started_at, ended_at,
    events, variant, outcome, throughput_hours`` (the caller checks the customer is in the
    reader's scope)."""
    with reading(source) as con:
        ev = case_events(con, journey, None, None, customer=customer_id)
        cs = mining.cases(con, journey, ev)
        cs = cs.select("case_id", "started_at", "ended_at", "events", "variant", "outcome",
                       "throughput_hours")  # fmt: skip
        return _rows(cs.order_by([mining.ibis.desc("started_at"), "case_id"]).limit(limit))


def friction(source: Source, journey: Journey, outcome: Outcome = "failure",
             longest: int = 3, min_cases: int = 20, limit: int = 20,
             since: dt.datetime | None = None, until: dt.datetime | None = None,
             segment: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Friction sequences: variants and sub-paths (runs of 1 to ``longest`` consecutive
    activities) ranked by how much more often their cases end in ``outcome`` (the journey's
    failure, the customer's churn, or ``detractor``: a detractor among the customer's NPS
    answers, over the cases with at least one answer) than the journey's cases as a whole.

    Each row: ``kind`` (variant or sub-path), ``path``, ``cases``, the outcome ``rate`` with
    its Wilson 95% interval, ``lift`` = rate / base rate, ``p_value`` of the two-proportion
    z-test against the cases without the path, and the NPS of its customers' answers. Paths
    holding the outcome activity itself are left out; so are paths with fewer than
    ``min_cases`` cases.
    """
    if outcome not in OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(OUTCOMES)}; got '{outcome}'")
    if not 1 <= longest <= 6:
        raise Invalid(f"longest must be between 1 and 6, got {longest}")
    if outcome == "failure" and not journey.failure:
        raise Invalid(f"journey '{journey.name}' has no failure outcome; use --outcome churn")
    flag = {"failure": "failed", "churn": "churned", "detractor": "detracted"}[outcome]
    with view(source, journey, since, until, segment, None) as mv:
        ev, cs = mv.ev, mv.cs
        if outcome == "detractor":
            cs = cs.filter((cs.promoters + cs.passives + cs.detractors) > 0)
        cs = cs.mutate(detracted=cs.detractors > 0)
        base = _rows(cs.aggregate(cases=cs.count(), hits=cs[flag].sum()))[0]
        sp = mining.sub_paths(ev, longest)
        joined = sp.join(cs, "case_id")
        sums = {k: joined[k].sum() for k in ("promoters", "passives", "detractors")}
        paths = joined.group_by("path").aggregate(
            cases=joined.count(), hits=joined[flag].sum(), **sums
        )
        paths = paths.filter(paths.cases >= min_cases)
        vs = cs.group_by(path=cs.variant).aggregate(
            cases=cs.count(), hits=cs[flag].sum(),
            **{k: cs[k].sum() for k in ("promoters", "passives", "detractors")},
        )  # fmt: skip
        vs = vs.filter(vs.cases >= min_cases)
        found = [{"kind": "sub-path", **r} for r in _rows(paths)]
        found += [{"kind": "variant", **r} for r in _rows(vs)]
    n, x = int(base["cases"] or 0), int(base["hits"] or 0)
    out: dict[str, Any] = {"journey": journey.name, "outcome": outcome, "base": _rate(x, n),
                           "sequences": []}  # fmt: skip
    if not n or not x:
        return out
    outcome_labels = set(journey.failure) | set(journey.churn)
    rows = []
    for r in found:
        steps = r["path"].split(mining.SEP)
        if outcome_labels & set(steps):
            continue
        k, m = int(r["hits"]), int(r["cases"])
        rate = _rate(k, m)
        rest_n, rest_x = n - m, x - k
        p = stats.proportion_test(k, m, rest_x, rest_n).p_value if rest_n > 0 else None
        rows.append({
            "kind": r["kind"], "path": r["path"], "length": len(steps), "cases": m,
            "rate": rate, "lift": round(rate["rate"] / (x / n), 4),
            "lift_low": round(rate["low"] / (x / n), 4),
            "p_value": None if p is None else float(f"{p:.4g}"), "nps": _nps(r),
        })  # fmt: skip
    rows.sort(key=lambda r: (-r["lift"], -r["cases"], r["path"]))
    out["sequences"] = rows[:limit]
    return out
