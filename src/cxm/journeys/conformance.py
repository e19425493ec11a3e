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


# ---- conformance to the defined stage order ----


def skipped_between(journey: Journey, source: str, target: str) -> list[str]:
    """The required stages of the definition between ``source`` (or the start) and
    ``target``: what a *skipped stage* deviation passed over."""
    order = [s for s, _ in journey.stages]
    lo = 0 if source == mining.START else order.index(source) + 1
    hi = order.index(target)
    return [s for s, optional in journey.stages[lo:hi] if not optional]


def stage_order(source: service.Source, journey: Journey, since: dt.datetime | None = None,
                until: dt.datetime | None = None, segment: str | None = None,
                outcome: str | None = None, limit: int = 20) -> dict[str, Any]:  # fmt: skip
    """How the journey's cases follow its defined stage order (``stages`` of the definition;
    each event's stage is its touchpoint's, from the org model), counted in the engine.

    Returns ``stages`` (the order: stage, optional), ``cases``, ``staged`` (cases with an
    event at a staged touchpoint: the ones checked), ``conforming`` (a Wilson 95% rate over
    the staged cases), ``kinds`` (per deviation kind: cases with at least one, as a rate of
    the staged cases) and ``deviations``: the ``limit`` most frequent (kind, source stage,
    target stage) with cases, events and, for a skip, the stages ``skipped``.
    """
    with service.view(source, journey, since, until, segment, outcome) as m:
        ev = m.ev
        dev = m.kept(mining.stage_deviations(m.con, ev, journey))
        st = mining.staged(m.con, ev)
        counts = service._rows(ev.aggregate(cases=ev.case_id.nunique()))[0]
        staged = service._rows(st.aggregate(staged=st.case_id.nunique()))[0]
        off = service._rows(dev.aggregate(deviating=dev.case_id.nunique()))[0]
        kinds = {r["kind"]: int(r["cases"]) for r in service._rows(
            dev.group_by("kind").aggregate(cases=dev.case_id.nunique()))}  # fmt: skip
        per = dev.group_by(["kind", "source", "target"]).aggregate(
            cases=dev.case_id.nunique(), events=dev.count()
        )
        per = per.order_by([mining.ibis.desc("cases"), "kind", "source", "target"])
        rows = service._rows(per.limit(limit))
    n = int(staged["staged"] or 0)
    deviating = int(off["deviating"] or 0)
    for r in rows:
        r["skipped"] = (skipped_between(journey, r["source"], r["target"])
                        if r["kind"] == mining.DEVIATIONS[0] else [])  # fmt: skip
    return {
        "journey": journey.name,
        "stages": [{"stage": s, "optional": o} for s, o in journey.stages],
        "cases": int(counts["cases"] or 0),
        "staged": n,
        "conforming": service._rate(n - deviating, n),
        "kinds": [{"kind": k, **service._rate(kinds.get(k, 0), n)} for k in mining.DEVIATIONS],
        "deviations": rows,
    }


def stage_net(journey: Journey) -> tuple[Any, Any, Any]:
    """The defined stage order as a Petri net (``net, initial, final``) for pm4py: a chain
    with one place before each stage and a transition labelled with the stage, a silent
    transition past each optional stage, and a silent transition from each place to the end
    (a case may stop at any stage). A stage sequence (a run at one stage written once) fits
    it exactly when it follows the order: ``stage_deviations`` finds nothing in it."""
    pm4py = _pm4py()  # noqa: F841 - refuse clearly when pm4py is missing
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils.petri_utils import add_arc_from_to

    net = PetriNet(f"{journey.name} stages")
    places = [PetriNet.Place(f"p{i}") for i in range(len(journey.stages) + 1)]
    for p in places:
        net.places.add(p)

    def move(name: str, label: str | None, a: Any, b: Any) -> None:
        t = PetriNet.Transition(name, label)
        net.transitions.add(t)
        add_arc_from_to(a, t, net)
        add_arc_from_to(t, b, net)

    last = places[-1]
    for i, (stage, optional) in enumerate(journey.stages):
        move(f"t{i}", stage, places[i], places[i + 1])
        if optional:
            move(f"pass{i}", None, places[i], places[i + 1])
        if i + 1 < len(journey.stages):
            move(f"stop{i + 1}", None, places[i + 1], last)
    return net, Marking({places[0]: 1}), Marking({last: 1})


def stage_alignments(journey: Journey, sequences: list[list[str]]) -> list[float]:
    """pm4py's alignment fitness of each stage sequence on ``stage_net``: 1.0 when it follows
    the defined order."""
    pm4py = _pm4py()
    net, im, fm = stage_net(journey)
    found = pm4py.conformance_diagnostics_alignments(
        event_log(sequences), net, im, fm, multi_processing=False
    )
    return [float(r["fitness"]) for r in found]
