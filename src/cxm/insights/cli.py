"""``cxm insights``: experience signals and what they cost each department."""

from __future__ import annotations

from typing import Any

import typer

from cxm.console import engine, errors, print_json, print_table, settings

WINDOW_DAYS = 180  # the default window; the same as cxm.insights.analytics.WINDOW_DAYS (tested)


def _service() -> Any:
    """The insights service, imported when a command runs (Ibis and statsmodels are heavy)."""
    from cxm.insights import service

    return service


app = typer.Typer(
    help="Experience signals and department attribution: 'cxm insights attribution'.",
    no_args_is_help=True,
)


@app.command("signals")
def list_signals(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the experience signals (shipped and this installation's)."""
    with errors():
        rows = [s.summary() for s in _service().signals(settings().data_dir).values()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["touchpoints"] = ", ".join(row["touchpoints"])
    print_table(rows, ["key", "label", "touchpoints", "when"], "Experience signals")


def _fmt(value: Any, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@app.command("attribution")
def attribution(
    outcome: str = typer.Option(
        "nps", "--outcome", help="nps | churn | a metric of survey answers (csat, ces, ...)"
    ),
    window: int = typer.Option(WINDOW_DAYS, "--window", help="days a signal counts before"),
    survey: str | None = typer.Option(None, "--survey", help="one survey's answers (nps)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """What each signal, and each department through its signals, costs in NPS, churn or
    any metric of survey answers."""
    with errors():
        result = _service().attribution(engine(), settings().data_dir, outcome, window, survey)
    if as_json:
        print_json(result.to_dict())
        return
    unit = {"nps": "score points", "churn": "log-odds"}.get(outcome, "metric units")
    rows = [
        {
            "signal": e.key,
            "department": e.department_name,
            "reach": f"{e.reach:.1%}",
            f"effect ({unit})": _fmt(e.effect),
            "95% CI": "" if e.ci_low is None else f"{e.ci_low:.2f} to {_fmt(e.ci_high)}",
            "met vs not": _fmt(e.difference),
            **({"NPS points": _fmt(e.nps_points, 1)} if outcome == "nps" else {}),
            "cost": _fmt(e.cost, 3 if outcome == "nps" else 1),
            "note": e.note,
        }
        for e in result.signals
    ]
    print_table(rows, list(rows[0]) if rows else ["signal"],
                f"{outcome}: {result.estimator}; {result.rows} rows, "
                f"signals met in the {result.window_days} days before")  # fmt: skip
    deps = [{"department": d.name, "signals": ", ".join(d.signals) or d.note,
             "cost": _fmt(d.cost, 3 if outcome == "nps" else 1)}
            for d in result.departments]  # fmt: skip
    cost = {"nps": "score points lost (effect x reach)", "churn": "extra churned customers"}.get(
        outcome, f"{outcome} lost (effect x reach)"
    )
    print_table(deps, ["department", "signals", "cost"], f"Departments by cost ({cost})")
