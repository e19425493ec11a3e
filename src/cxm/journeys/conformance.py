"""Conformance of a journey's cases to a process model, with pm4py.

The model is discovered with pm4py's inductive miner (Leemans et al., 2013) from the journey's
most frequent variants, those that together hold ``cover`` of its cases: the journey as it
usually happens. Every case is then replayed on that Petri net with pm4py's token-based replay
(Rozinat & van der Aalst, 2008; Berti & van der Aalst, 2019). All cases of a variant share its
activity sequence, so each variant is replayed once and weighted by its cases: the log's
fitness and its share of fitting cases are the same as pm4py's replay of every case.

pm4py is an optional dependency (``pip install 'cxm[mining]'``); without it the check says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cxm.errors import Invalid
from cxm.journeys import mining, service
from cxm.journeys.definitions import Journey

ACTIVITY = "concept:name"


def _pm4py() -> Any:
    try:
        import pm4py
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise Invalid(
            "conformance checking needs pm4py: pip install 'cxm[mining]' (or pip install pm4py)"
        ) from exc
    return pm4py


def event_log(sequences: list[list[str]]) -> Any:
    """A pm4py ``EventLog`` with one trace per activity sequence, in order (the trace's
    ``concept:name`` is its index)."""
    from pm4py.objects.log.obj import Event, EventLog, Trace

    base = dt.datetime(2000, 1, 1)
    return EventLog([
        Trace([Event({ACTIVITY: a, "time:timestamp": base + dt.timedelta(seconds=k)})
               for k, a in enumerate(seq)], attributes={ACTIVITY: str(i)})
        for i, seq in enumerate(sequences)
    ])  # fmt: skip


def model_variants(counts: list[tuple[str, int]], cover: float) -> list[str]:
    """The most frequent variants (``counts``: variant, cases; ties by variant) that together
    hold at least ``cover`` (0 < cover <= 1) of the cases; at least one."""
    if not 0 < cover <= 1:
        raise Invalid(f"cover must be more than 0 and at most 1, got {cover}")
    ranked = sorted(counts, key=lambda vc: (-vc[1], vc[0]))
    total = sum(c for _, c in ranked)
    chosen: list[str] = []
    held = 0
    for variant, n in ranked:
        if chosen and held >= cover * total:
            break
        chosen.append(variant)
        held += n
    return chosen


def check(counts: list[tuple[str, int]], cover: float = 0.8) -> dict[str, Any]:
    """Token-based replay of every variant on the model discovered from the top variants.

    ``counts``: (variant, cases), a variant's activities joined by " → ". Returns
    ``model`` (the variants it was discovered from, its places and transitions),
    ``fitness`` (pm4py's log fitness: 1/2 (1 - missing/consumed) + 1/2 (1 - remaining/
    produced) over the tokens of every case), ``fitting`` (share of cases that replay
    without missing or remaining tokens), ``cases``, and ``variants``: per variant its
    cases, share, ``fitness`` (its trace fitness) and ``fits``, most frequent first.
    """
    pm4py = _pm4py()
    total = sum(n for _, n in counts)
    out: dict[str, Any] = {"cases": total, "cover": cover, "fitness": None, "fitting": None,
                           "model": None, "variants": []}  # fmt: skip
    if not total:
        return out
    ranked = sorted(counts, key=lambda vc: (-vc[1], vc[0]))
    top = model_variants(ranked, cover)
    net, im, fm = pm4py.discover_petri_net_inductive(event_log([v.split(mining.SEP) for v in top]))
    replayed = pm4py.conformance_diagnostics_token_based_replay(
        event_log([v.split(mining.SEP) for v, _ in ranked]), net, im, fm,
        opt_parameters={"show_progress_bar": False},
    )  # fmt: skip
    sums = dict.fromkeys(("missing", "consumed", "remaining", "produced"), 0)
    fitting = 0
    rows = []
    for (variant, n), r in zip(ranked, replayed, strict=True):
        for k in sums:
            sums[k] += n * int(r[f"{k}_tokens"])
        fitting += n if r["trace_is_fit"] else 0
        rows.append({"variant": variant, "cases": n, "share": round(n / total, 4),
                     "fitness": round(float(r["trace_fitness"]), 4),
                     "fits": bool(r["trace_is_fit"]), "in_model": variant in top})  # fmt: skip
    fitness = 0.5 * (1 - sums["missing"] / sums["consumed"]) if sums["consumed"] else 0.5
    fitness += 0.5 * (1 - sums["remaining"] / sums["produced"]) if sums["produced"] else 0.5
    out.update({
        "fitness": round(fitness, 6), "fitting": round(fitting / total, 6),
        "fitting_cases": fitting, "variants": rows,
        "model": {"variants": len(top), "cases": sum(n for v, n in ranked if v in top),
                  "places": len(net.places), "transitions": len(net.transitions),
                  "activities": sorted({t.label for t in net.transitions if t.label})},
    })  # fmt: skip
    return out


def conformance(source: service.Source, journey: Journey, cover: float = 0.8,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                segment: str | None = None,
                outcome: str | None = None) -> dict[str, Any]:  # fmt: skip
    """How well the journey's cases (those starting in [since, until), of the segment and
    outcome when given) fit the model of its most frequent variants (``check``): the
    journey's name with ``check``'s result. Invalid when ``cover`` is outside (0, 1] or pm4py
    is not installed."""
    model_variants([], cover)  # refuse a bad cover before reading anything
    with service.view(source, journey, since, until, segment, outcome) as m:
        cs = m.cs  # kept when other reads of the view asked for it already
        rows = cs.group_by("variant").aggregate(cases=cs.count()).to_pyarrow().to_pylist()
    counts = [(r["variant"], int(r["cases"])) for r in rows]
    return {"journey": journey.name, **check(counts, cover)}
