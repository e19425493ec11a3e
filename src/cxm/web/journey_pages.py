"""Journey pages: the list of journeys and one page per journey (map, variants, Sankey of
stages, friction sequences, each step's owner with its scores).

Every number comes from ``cxm.journeys.service``; this module only arranges it and turns it
into Plotly figures (the JavaScript is served from the plotly package, no CDN). A manager sees
the journey's shape, and the scores of the steps and hand-offs of their own department only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from cxm.config import Settings
from cxm.errors import CxmError, Invalid, NotFound
from cxm.journeys import conformance as checker
from cxm.journeys import definitions, service
from cxm.journeys.definitions import Journey
from cxm.metrics import definitions as metric_definitions
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.schemas import STAGES
from cxm.org.scope import Scope, scope_for
from cxm.org.security import db, get_engine
from cxm.web.filters import Filters
from cxm.web.names import names_for
from cxm.web.pages import admin_only, render
from cxm.web.sessions import check_csrf, signed_in

router = APIRouter(include_in_schema=False)
READERS = ("admin", "cx_lead", "manager", "viewer")
# Colour-blind-safe fills (Okabe-Ito), one per department in key order; grey for no owner.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442",
           "#882255")  # fmt: skip
UNOWNED = "#BBBBBB"
STAGE_COLOURS = ("#4477AA", "#66CCEE", "#228833", "#CCBB44", "#EE6677", "#AA3377", "#BBBBBB",
                 "#332288", "#117733", "#999933")  # fmt: skip


def _folder(request: Request) -> Path:
    settings: Settings = request.app.state.settings
    return definitions.installation_dir(settings.data_dir)


def _journeys(request: Request) -> dict[str, Journey]:
    folder = _folder(request)
    return definitions.load([folder] if folder.is_dir() else [])


def _reader(who: Principal) -> Scope:
    scope = scope_for(who)
    if who.role not in READERS:
        raise NotFound("page not found")
    return scope


def colours(departments: list[str]) -> dict[str, str]:
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(sorted(departments))}


def layout(nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Each activity's place on the map: columns left to right by stage (in the order of the
    org model's stages; activities without a stage by their mean step), and inside a column
    by mean step, top to bottom."""
    columns: dict[float, list[dict[str, Any]]] = {}
    for n in nodes:
        stage = n.get("stage")
        key = float(STAGES.index(stage)) if stage in STAGES else 100 + (n.get("position") or 0)
        columns.setdefault(key, []).append(n)
    out: dict[str, tuple[float, float]] = {}
    for x, key in enumerate(sorted(columns)):
        members = sorted(columns[key], key=lambda n: (n.get("position") or 0, n["activity"]))
        for y, n in enumerate(members):
            # A small offset by the row keeps arrows inside a column from hiding each other.
            out[n["activity"]] = (x + 0.18 * (y % 2), -float(y))
    return out


def map_figure(graph: dict[str, Any], owners: dict[str, str], mine: str | None = None,
               label: Callable[[str], str] = str,
               owner_name: Callable[[str], str] = str) -> str | None:  # fmt: skip
    """The directly-follows graph as a Plotly figure: arrows as wide as their frequency,
    activities filled with the colour of the department that owns them (``mine``: a manager's
    department, its steps drawn larger and outlined)."""
    nodes, edges = graph["nodes"], graph["edges"]
    if not nodes:
        return None
    where = layout(nodes)
    top = max((e["frequency"] for e in edges), default=1)
    notes = []
    for e in edges:
        if e["source"] not in where or e["target"] not in where:
            continue
        (x0, y0), (x1, y1) = where[e["source"]], where[e["target"]]
        if (x0, y0) == (x1, y1):
            continue  # a loop on one step: shown in the variants and rework, not as an arrow
        hours = e["median_hours"]
        notes.append({
            "x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x",
            "ayref": "y", "showarrow": True, "arrowhead": 2, "arrowsize": 0.8,
            "arrowwidth": round(1 + 9 * e["frequency"] / top, 2), "standoff": 16,
            "startstandoff": 16, "arrowcolor": "rgba(60,60,60,0.45)", "text": "",
            "hovertext": f"{label(e['source'])} → {label(e['target'])}: {e['frequency']} times"
                         + (f", median {hours:.1f} h" if hours is not None else ""),
        })  # fmt: skip
    palette = colours(sorted({d for d in owners.values() if d}))
    traces = []
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for n in nodes:
        groups.setdefault(owners.get(n["activity"]), []).append(n)
    for dept in sorted(groups, key=lambda d: (d is None, d or "")):
        members = groups[dept]
        traces.append({
            "type": "scatter", "mode": "markers+text",
            "name": owner_name(dept) if dept else "no owner",
            "x": [where[n["activity"]][0] for n in members],
            "y": [where[n["activity"]][1] for n in members],
            "text": [f"{label(n['activity'])}<br>{n['cases']} cases" for n in members],
            "textposition": "bottom center", "textfont": {"size": 13},
            "hovertemplate": "%{text}<extra>" + (owner_name(dept) if dept else "no owner")
                             + "</extra>",
            "marker": {"size": [30 if dept and dept == mine else 22 for _ in members],
                       "color": palette.get(dept or "", UNOWNED),
                       "line": {"width": 3 if dept and dept == mine else 1, "color": "#222"}},
        })  # fmt: skip
    xs = [x for x, _ in where.values()]
    ys = [y for _, y in where.values()]
    stages = sorted({n.get("stage") or "" for n in nodes} - {""}, key=STAGES.index)
    figure = {
        "data": traces,
        "layout": {
            "height": max(420, 130 * (1 + int(-min(ys)))), "annotations": notes,
            "margin": {"l": 20, "r": 20, "t": 30, "b": 20}, "hovermode": "closest",
            "legend": {"orientation": "h", "y": 1.08, "title": {"text": "Owner "}},
            "xaxis": {"visible": False, "range": [min(xs) - 0.6, max(xs) + 0.8]},
            "yaxis": {"visible": False, "range": [min(ys) - 0.8, 0.6]},
            "title": {"text": "Stages left to right: " + " → ".join(stages), "font": {"size": 13},
                      "y": 0.99},
        },
    }  # fmt: skip
    return json.dumps(figure, default=str)


def sankey_figure(flows: list[dict[str, Any]]) -> str | None:
    """Stages over the first steps of the cases as a Plotly Sankey: one column per step."""
    if not flows:
        return None
    index: dict[tuple[int, str], int] = {}
    for f in flows:
        for key in ((f["step"], f["source"]), (f["step"] + 1, f["target"])):
            index.setdefault(key, len(index))
    order = [*STAGES, "unstaged"]
    colour = {s: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, s in enumerate(order)}
    steps = max(k for k, _ in index)
    keys = sorted(index, key=lambda k: index[k])
    figure = {
        "data": [{
            "type": "sankey", "arrangement": "snap",
            "node": {"label": [f"{stage} ({step})" for step, stage in keys],
                     "color": [colour.get(stage, "#999") for _, stage in keys],
                     "x": [0.01 + 0.98 * (step - 1) / max(1, steps - 1) for step, _ in keys],
                     "y": [0.05 + 0.9 * order.index(stage) / len(order) if stage in order
                           else 0.5 for _, stage in keys],
                     "pad": 18, "thickness": 16},
            "link": {"source": [index[(f["step"], f["source"])] for f in flows],
                     "target": [index[(f["step"] + 1, f["target"])] for f in flows],
                     "value": [f["cases"] for f in flows],
                     "color": "rgba(120,120,120,0.25)"},
        }],
        "layout": {"height": 420, "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
                   "title": {"text": "Stage of each step (1 = first step of a case)",
                             "font": {"size": 13}}, "font": {"size": 12}},
    }  # fmt: skip
    return json.dumps(figure, default=str)


def customer_journeys(request: Request, customer_id: str) -> list[dict[str, Any]]:
    """The customer's cases in each journey (for the customer 360; the caller has checked
    the customer is in the reader's scope): ``journey, cases`` per journey with cases."""
    engine = get_engine(request)
    out = []
    for journey in _journeys(request).values():
        cases = service.customer_cases(engine, journey, customer_id, limit=10)
        if cases:
            out.append({"journey": journey.name, "cases": cases})
    return out


@router.get("/journeys", response_class=HTMLResponse)
def journeys_page(request: Request, who: Principal = Depends(signed_in)) -> HTMLResponse:
    """The journey definitions, each linking to its page."""
    _reader(who)
    return render(request, who, "journeys.html", journeys=list(_journeys(request).values()))


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(f"{name}: '{raw}' is not a whole number") from exc
    return min(max(value, low), high)


@router.get("/journeys/{name}", response_class=HTMLResponse)
def journey_page(
    name: str, request: Request, who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:  # fmt: skip
    """One journey: map, variants, Sankey of stages, friction sequences, steps and owners."""
    scope = _reader(who)
    journeys = _journeys(request)
    if name not in journeys:
        raise NotFound(f"no journey named '{name}'; known: {', '.join(sorted(journeys))}")
    journey = journeys[name]
    f = Filters.from_request(request, scope)
    outcome = request.query_params.get("outcome") or None
    if outcome is not None and outcome not in service.CASE_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(service.CASE_OUTCOMES)}")
    min_frequency = _int(request, "min_frequency", 1, 1, 1_000_000)
    engine = get_engine(request)
    since, until, segment = f.start_at, f.end_at, f.segment
    settings: Settings = request.app.state.settings
    metrics = metric_definitions.load(metric_definitions.installation_dir(settings.data_dir))
    scores = service.score_metrics(metrics)
    friction_outcome = "failure" if journey.failure else "churn"
    # The reads share one mining of the view; friction reads every outcome of the period.
    with service.mined(engine, journey, since, until, segment, outcome) as m:
        summary = service.summary(m, journey, since, until, segment, outcome, scores)
        graph = service.directly_follows(m, journey, 1, since, until, segment, outcome)
        variants = service.variants(m, journey, 15, since, until, segment, outcome)
        flows = service.stage_flows(m, journey, 6, since, until, segment, outcome)["flows"]
        conformance, note = None, ""
        try:
            conformance = checker.conformance(m, journey, 0.8, since, until, segment, outcome)
        except Invalid as exc:  # pm4py is optional: the page says what the check needs
            note = str(exc)
        stage_order = checker.stage_order(m, journey, since, until, segment, outcome, 10)
        friction = service.friction(
            m if outcome is None else engine, journey, friction_outcome, limit=12,
            since=since, until=until, segment=segment,
        )  # fmt: skip
    top = max((e["frequency"] for e in graph["edges"]), default=1)
    shown = {**graph, "edges": [e for e in graph["edges"] if e["frequency"] >= min_frequency]}
    owners = {n["activity"]: n["department"] for n in graph["nodes"] if n["department"]}
    mine = scope.department_key if scope.by_department else None
    # Friction: the paths that raise the outcome, not every path ranked.
    friction["sequences"] = [r for r in friction["sequences"] if r["lift"] > 1][:12]
    steps = [{**a, "department": owners.get(a["activity"])} for a in summary["activities"]]
    handoffs = summary["handoffs"]["pairs"]
    if mine is not None:
        # A manager: scores of their own steps, and the hand-offs into and out of them.
        for s in steps:
            if s["department"] != mine:
                s.update({"failure": None, "churn": None, "nps": None, "scores": {}})
        handoffs = [h for h in handoffs if mine in (h["source"], h["target"])]
        friction["sequences"] = [
            r for r in friction["sequences"]
            if any(owners.get(a) == mine for a in r["path"].split(" → "))
        ]  # fmt: skip
    fitness = {v["variant"]: v for v in conformance["variants"]} if conformance else {}
    shown_as = names_for(conn, scope)
    names = {d.key: d.name for d in org.list_departments(conn)}
    return render(
        request, who, "journey.html", journey=journey, filters=f, outcome=outcome,
        outcomes=service.CASE_OUTCOMES, summary=summary, steps=steps, handoffs=handoffs,
        map_chart=map_figure(shown, owners, mine, shown_as.path, shown_as.department),
        edges=shown["edges"], top=top,
        min_frequency=min_frequency, variants=variants, sankey=sankey_figure(flows),
        flows=flows, friction=friction, score_names=[m.name for m in scores], mine=mine,
        department_names=names, conformance=conformance, conformance_note=note,
        fitness=fitness, stage_order=stage_order,
        palette=colours(sorted(set(owners.values()))),
    )  # fmt: skip


# ---- editing the definitions (admin only) ----

NEW_JOURNEY = """\
name: my_journey
description: What the journey follows, from its start to its outcome.
case: customer
activities:
  - {event: order_placed}
  - {event: order_delivered}
start: [order_placed]
success: [order_delivered]
max_duration: 30d
"""


def _editor(request: Request, who: Principal, name: str | None, text: str,
            status_code: int = 200, **extra: Any) -> HTMLResponse:  # fmt: skip
    folder = _folder(request)
    journeys = _journeys(request)
    shipped = {j.name for j in definitions.load().values()}
    listed = [{"name": j.name, "description": j.description,
               "own": Path(j.source).parent == folder, "shipped": j.name in shipped}
              for j in journeys.values()]  # fmt: skip
    return render(
        request, who, "journey_settings.html", status_code, journeys=listed, name=name,
        text=text, versions=definitions.versions(name, folder) if name else [], **extra,
    )  # fmt: skip


@router.get("/settings/journeys", response_class=HTMLResponse)
def journey_settings(request: Request, who: Principal = Depends(admin_only)) -> HTMLResponse:
    """The journey definitions as YAML: pick one (``journey``; a saved ``version`` of it) to
    view and edit, or start a new one."""
    name = request.query_params.get("journey") or None
    folder = _folder(request)
    if name is None:
        return _editor(request, who, None, NEW_JOURNEY)
    raw = request.query_params.get("version")
    if raw:
        if not raw.isdigit():
            raise Invalid(f"version: '{raw}' is not a whole number")
        text = definitions.version_text(name, int(raw), folder)
        return _editor(request, who, name, text, notice=f"Version {raw} loaded; not saved yet.")
    return _editor(request, who, name, definitions.text_of(name, folder))


@router.post("/settings/journeys", response_class=HTMLResponse)
def journey_settings_save(
    request: Request,
    definition: str = Form(""),
    journey: str = Form(""),
    action: str = Form("check"),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
) -> HTMLResponse:
    """Check a journey's YAML (nothing is written) or save it as the installation's
    definition of the journey it names, as the next version of that journey."""
    check_csrf(request, csrf_token_)
    editing = journey or None
    try:
        if action == "save":
            saved, version = definitions.save_text(definition, _folder(request), editing)
        else:
            checked = definitions.check_text(definition, editing)
    except CxmError as exc:
        problems = [p.strip() for p in str(exc).split("; ") if p.strip()]
        return _editor(request, who, editing, definition, 422, problems=problems)
    if action != "save":
        return _editor(request, who, editing, definition,
                       notice=f"Journey '{checked.name}' is valid; nothing saved yet.")  # fmt: skip
    note = f"Saved journey '{saved.name}' as version {version}."
    if editing and editing != saved.name:
        note += f" It is a new journey; '{editing}' is unchanged."
    return _editor(request, who, saved.name, definition, notice=note)
