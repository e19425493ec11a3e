"""``cxm journeys list|show|variants|map|friction``: mined journeys from the interaction log."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from cxm.console import console, engine, errors, fail, print_json, print_table, settings
from cxm.errors import Invalid
from cxm.journeys import definitions
from cxm.journeys.definitions import Journey


def _service() -> Any:
    """The mining service, imported when a command runs (Ibis is heavy; '--help' stays fast)."""
    from cxm.journeys import service

    return service


app = typer.Typer(
    help="Journeys mined from the interaction log: variants, maps, friction.",
    no_args_is_help=True,
)


class Format(StrEnum):
    json = "json"
    text = "text"


class Outcome(StrEnum):
    failure = "failure"
    churn = "churn"
    detractor = "detractor"


class MapFormat(StrEnum):
    json = "json"
    dot = "dot"
    svg = "svg"
    png = "png"


SINCE = typer.Option(None, help="only cases starting at or after this time (UTC)")
UNTIL = typer.Option(None, help="only cases starting before this time (UTC)")


def _folders() -> list[Path]:
    folder = settings().data_dir / "journeys"
    return [folder] if folder.is_dir() else []


def _journey(name: str) -> Journey:
    return definitions.get(name, _folders())


def _scores() -> list[Any]:
    """The score metrics steps carry (CSAT, CES), as the installation defines them."""
    from cxm.metrics import definitions as metric_definitions

    metrics = metric_definitions.load(metric_definitions.installation_dir(settings().data_dir))
    scores: list[Any] = _service().score_metrics(metrics)
    return scores


def _shown(score: dict[str, Any] | None) -> str:
    if score is None:
        return "—"
    value, low, high = score["value"], score["low"], score["high"]
    if score["unit"] == "%":
        text = f"{value:.1f}%"
        return text if low is None else f"{text} ({low:.1f}-{high:.1f}, n={score['n']})"
    text = f"{value:.2f}"
    return text if low is None else f"{text} ({low:.2f}-{high:.2f}, n={score['n']})"


@app.command("list")
def list_journeys(fmt: Format = typer.Option(Format.text, "--format")) -> None:
    """The journey definitions (shipped, then ``<data dir>/journeys/*.yaml``)."""
    with errors():
        journeys = definitions.load(_folders())
    rows = [
        {"name": j.name, "case": j.case, "start": ", ".join(j.start),
         "success": ", ".join(j.success), "failure": ", ".join(j.failure),
         "max_hours": j.max_hours, "description": j.description}
        for j in journeys.values()
    ]  # fmt: skip
    if fmt == Format.json:
        print_json(rows)
        return
    print_table(rows, ["name", "case", "start", "success", "failure"], "Journeys")


@app.command("show")
def show(
    name: str,
    fmt: Format = typer.Option(Format.text, "--format"),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> None:
    """One journey mined: cases, outcomes, churn, NPS, throughput, rework, hand-offs."""
    from cxm.journeys import conformance as checker

    with errors():
        journey, service = _journey(name), _service()
        with service.mined(engine(), journey, since, until) as m:
            data = service.summary(m, journey, since, until, scores=_scores())
            data["stage_order"] = checker.stage_order(m, journey, since, until)
    if fmt == Format.json:
        print_json(data)
        return
    console.print(f"[bold]{data['journey']}[/] ({data['case']} cases): {data['cases']} cases")
    for key, r in {**data["outcomes"], "churn": data["churn"], "rework": data["rework"]}.items():
        if r["rate"] is not None:
            console.print(
                f"  {key}: {r['count']} ({r['rate']:.1%}, 95% {r['low']:.1%}-{r['high']:.1%})"
            )
    if data["nps"]:
        n = data["nps"]
        console.print(
            f"  NPS {n['nps']:+.1f} (95% {n['low']:+.1f} to {n['high']:+.1f}, n={n['n']})"
        )
    t = data["throughput_hours"]
    if t["median"] is not None:
        console.print(f"  throughput hours: median {t['median']:.1f}, p90 {t['p90']:.1f}")
    for metric, score in data["scores"].items():
        console.print(f"  {metric}: {_shown(score)}")
    console.print(f"  hand-offs per case: {data['handoffs']['per_case']}")
    names = list(data["scores"])
    rows = [{**a, "owner": a.get("department") or "—",
             **{m: _shown(a["scores"].get(m)) for m in names}}
            for a in data["activities"]]  # fmt: skip
    print_table(rows, ["activity", "owner", "events", "cases", "rework_cases", *names],
                "Steps (scores: 95% intervals)", whole=names)  # fmt: skip
    _print_stage_order(data["stage_order"])


def _print_stage_order(check: dict[str, Any]) -> None:
    order = " → ".join(s["stage"] + ("?" if s["optional"] else "") for s in check["stages"])
    c = check["conforming"]
    if not c["n"]:
        console.print(f"  stage order {order}: no case has an event at a staged touchpoint")
        return
    console.print(f"  follow the stage order {order}: {c['count']} of {c['n']} staged cases "
                  f"({c['rate']:.1%}, 95% {c['low']:.1%}-{c['high']:.1%})")  # fmt: skip
    for d in check["deviations"]:
        passed = f" (passes over {', '.join(d['skipped'])})" if d["skipped"] else ""
        console.print(f"    {d['kind']}: {d['source']} → {d['target']}{passed}: "
                      f"{d['cases']} cases, {d['events']} events")  # fmt: skip


@app.command("variants")
def variants(
    name: str,
    limit: int = typer.Option(20, min=1, help="variants to show"),
    fmt: Format = typer.Option(Format.text, "--format"),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> None:
    """The most frequent variants (activity sequences) with share, failure and churn rates."""
    with errors():
        data = _service().variants(engine(), _journey(name), limit, since, until)
    if fmt == Format.json:
        print_json(data)
        return
    rows = [
        {"cases": v["cases"], "share": f"{v['share']:.1%}",
         "failure": f"{v['failure']['rate']:.1%}", "churn": f"{v['churn']['rate']:.1%}",
         "variant": v["variant"]}
        for v in data["variants"]
    ]  # fmt: skip
    title = f"{data['journey']}: {data['distinct']} variants"
    print_table(rows, ["cases", "share", "failure", "churn", "variant"], title)


@app.command("friction")
def friction(
    name: str,
    outcome: Outcome = typer.Option(
        Outcome.failure, help="the journey's failure, churn, or a detractor answer"
    ),
    min_cases: int = typer.Option(20, min=1, help="leave out paths with fewer cases"),
    limit: int = typer.Option(15, min=1),
    fmt: Format = typer.Option(Format.text, "--format"),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> None:
    """Friction sequences: the paths whose cases most often end in the outcome (lift)."""
    with errors():
        data = _service().friction(
            engine(),
            _journey(name),
            outcome.value,
            min_cases=min_cases,
            limit=limit,
            since=since,
            until=until,
        )
    if fmt == Format.json:
        print_json(data)
        return
    rows = [
        {"lift": f"{r['lift']:.2f}", "rate": f"{r['rate']['rate']:.1%}",
         "95%": f"{r['rate']['low']:.1%}-{r['rate']['high']:.1%}", "cases": r["cases"],
         "p": r["p_value"], "path": r["path"]}
        for r in data["sequences"]
    ]  # fmt: skip
    base = data["base"]
    title = f"{data['journey']}: {outcome} base rate {base['rate'] or 0:.1%} of {base['n']}"
    print_table(rows, ["lift", "rate", "95%", "cases", "p", "path"], title)


@app.command("conformance")
def conformance(
    name: str,
    cover: float = typer.Option(
        0.8, help="the model is discovered from the most frequent variants holding this share"
    ),
    limit: int = typer.Option(20, min=1, help="variants to show"),
    fmt: Format = typer.Option(Format.text, "--format"),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> None:
    """Fitness of the cases to the model of the usual variants (pm4py token replay)."""
    from cxm.journeys import conformance as checker

    with errors():
        data = checker.conformance(engine(), _journey(name), cover, since, until)
    if fmt == Format.json:
        print_json({**data, "variants": data["variants"][:limit]})
        return
    if not data["cases"]:
        console.print(f"[bold]{data['journey']}[/]: no cases")
        return
    model = data["model"]
    console.print(
        f"[bold]{data['journey']}[/]: model of the {model['variants']} most frequent variants "
        f"({model['cases']} of {data['cases']} cases; {model['places']} places, "
        f"{model['transitions']} transitions)"
    )
    console.print(f"  log fitness {data['fitness']:.4f} (token-based replay)")
    console.print(
        f"  conforming cases {data['fitting_cases']} of {data['cases']} ({data['fitting']:.1%})"
    )
    rows = [{"cases": v["cases"], "share": f"{v['share']:.1%}", "fitness": f"{v['fitness']:.3f}",
             "fits": "yes" if v["fits"] else "no", "variant": v["variant"]}
            for v in data["variants"][:limit]]  # fmt: skip
    print_table(rows, ["cases", "share", "fitness", "fits", "variant"], "Variants")


# Fill colours of the owning departments, in order of their keys (colour-blind safe: Okabe-Ito).
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#999999")  # fmt: skip


def dot(graph: dict[str, Any]) -> str:
    """The directly-follows graph as Graphviz DOT: left to right, edge width by frequency,
    each activity filled with the colour of the department owning it (named in its label)."""
    top = max((e["frequency"] for e in graph["edges"]), default=1)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(graph['journey'])} {{", "  rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];']  # fmt: skip
    departments = sorted({n["department"] for n in graph["nodes"] if n.get("department")})
    colour = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(departments)}
    for n in graph["nodes"]:
        label, style = q(f"{n['activity']} ({n['events']})"), ""
        if n.get("department"):
            # DOT's own line break (backslash n) between the activity and its department.
            label = label[:-1] + "\\n" + q(n["department"])[1:]
            style = f', style="rounded,filled", fillcolor={q(colour[n["department"]])}'
        lines.append(f"  {q(n['activity'])} [label={label}{style}];")
    for e in graph["edges"]:
        width = 1 + 5 * e["frequency"] / top
        hours = e["median_hours"]
        label = f"{e['frequency']}" + (f" / {hours:.1f} h" if hours is not None else "")
        lines.append(
            f"  {q(e['source'])} -> {q(e['target'])} [label={q(label)}, penwidth={width:.2f}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


@app.command("map")
def journey_map(
    name: str,
    fmt: MapFormat = typer.Option(MapFormat.json, "--format"),
    min_frequency: int = typer.Option(1, min=1, help="hide edges rarer than this"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file for svg/png"),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> None:
    """The directly-follows graph: JSON, Graphviz DOT, or SVG/PNG where Graphviz is installed."""
    with errors():
        graph = _service().directly_follows(engine(), _journey(name), min_frequency, since, until)
        if fmt in (MapFormat.svg, MapFormat.png):
            binary = shutil.which("dot")
            if binary is None:
                raise Invalid(
                    "SVG and PNG need Graphviz's 'dot' program (Debian: apt install graphviz); "
                    "use --format dot and render it elsewhere"
                )
            if output is None:
                raise Invalid(f"--format {fmt.value} needs --output FILE")
            done = subprocess.run(
                [binary, f"-T{fmt.value}", "-o", str(output)],
                input=dot(graph).encode(), capture_output=True, check=False,
            )  # fmt: skip
            if done.returncode:
                fail(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
            console.print(f"wrote {output}")
            return
    if fmt == MapFormat.json:
        print_json(graph)
    else:
        typer.echo(dot(graph), nl=False)
