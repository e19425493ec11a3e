"""``cxm insights``: experience signals and what they cost each department."""

from __future__ import annotations

from typing import Any

import typer

from cxm.console import (
    call_server,
    engine,
    errors,
    fail,
    print_json,
    print_table,
    server_owning_store,
    settings,
)

WINDOW_DAYS = 180  # the default window; the same as cxm.insights.analytics.WINDOW_DAYS (tested)
# The defaults of cxm.insights.predict and .drivers, kept here so --help needs no heavy import
# (tests/cli/test_startup.py checks they agree).
TRAITS = "segment,plan,region,tenure_months"
PREDICT_WINDOW_DAYS = 365
LEAD_HOURS = 1
SEED = 7
BOOTSTRAP = 200


def _traits(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        typer.secho("error: --traits: name at least one trait, e.g. segment,plan", err=True,
                    fg="red")  # fmt: skip
        raise typer.Exit(2)
    return names


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


@app.command("drivers")
def drivers(
    outcome: str = typer.Option("nps", "--outcome", help="nps | csat | churn"),
    by: str | None = typer.Option(None, "--by", help="department: sum drivers per department"),
    window: int = typer.Option(WINDOW_DAYS, "--window", help="days a signal counts before"),
    bootstrap: int = typer.Option(BOOTSTRAP, "--bootstrap", help="resamples for the intervals"),
    seed: int = typer.Option(SEED, "--seed", help="seed of the bootstrap"),
    survey: str | None = typer.Option(
        None, "--survey", help="one survey's answers, its rated questions as drivers"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Key drivers: the importance (relative weight) and performance of every signal, theme
    and survey attribute (a survey's other rated questions), with the quadrant each falls in."""
    if outcome not in ("nps", "csat", "churn"):
        typer.secho("error: --outcome: use nps, csat or churn", err=True, fg="red")
        raise typer.Exit(2)
    if by not in (None, "department"):
        typer.secho("error: --by: use department", err=True, fg="red")
        raise typer.Exit(2)
    eng = engine()
    with errors():
        result = _service().drivers(eng, settings().data_dir, outcome, window, bootstrap,
                                    seed, survey)  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    caption = (
        f"{outcome}: {result.method}; {result.rows} rows, R² {result.r2:.3f}, "
        f"mean outcome {result.mean_outcome:.2f}"
    )
    if by == "department":
        from cxm.names import Names

        names = Names(eng)
        rows = [{"department": names.department(d.key, "unowned"),
                 "importance": f"{d.importance:.4f}",
                 "95% CI": f"{d.importance_low:.4f} to {d.importance_high:.4f}",
                 "share of R²": f"{d.importance / result.r2:.0%}" if result.r2 else "",
                 "drivers": ", ".join(d.drivers)} for d in result.departments]  # fmt: skip
        print_table(rows, ["department", "importance", "95% CI", "share of R²", "drivers"],
                    caption)  # fmt: skip
        return
    rows = [
        {
            "driver": d.key,
            "kind": d.kind,
            "department": d.department or "",
            "importance": f"{d.importance:.4f}",
            "95% CI": f"{d.importance_low:.4f} to {d.importance_high:.4f}",
            "share of R²": f"{d.share:.0%}",
            "direction": "+" if d.direction > 0 else "-",
            "performance": _fmt(d.performance),
            "quadrant": d.quadrant,
        }
        for d in result.drivers
    ]
    print_table(rows, list(rows[0]) if rows else ["driver"], caption)


def _through_server(kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Run ``kind`` (train | predict) as a job of the running ``cxm serve`` when it owns the
    embedded store, waiting for it; its result, or None when this process may open the store."""
    import time

    server = server_owning_store()
    if server is None:
        return None
    job = call_server(server, "POST", f"/insights/{kind}", body)
    path = f"/insights/jobs/{job['id']}"
    while job["state"] in ("pending", "running"):
        time.sleep(0.5)
        job = call_server(server, "GET", path)
    if job["state"] != "done":
        fail(f"the server's {kind} job failed: {job.get('error') or 'no reason given'}")
    result: dict[str, Any] = job["result"]
    return result


def _run_body(
    seed: int, window: int, lead: int, traits: tuple[str, ...], top: int = 10
) -> dict[str, Any]:
    return {"seed": seed, "window": window, "lead_hours": lead, "traits": list(traits),
            "top": top}  # fmt: skip


@app.command("train")
def train(
    seed: int = typer.Option(SEED, "--seed", help="seed of the holdout split and the model"),
    window: int = typer.Option(PREDICT_WINDOW_DAYS, "--window", help="days of history seen"),
    lead: int = typer.Option(LEAD_HOURS, "--lead-hours", help="stop before a churn"),
    traits: str = typer.Option(TRAITS, "--traits", help="comma-separated customer traits"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Train the churn and NPS models on 70% of the customers; print the holdout ROC AUC,
    Brier score and calibration table (nothing is stored; through the server's API while
    'cxm serve' runs)."""
    names = _traits(traits)
    ev = _through_server("train", _run_body(seed, window, lead, names))
    if ev is None:
        from cxm.insights import jobs

        with errors():
            eng = engine()
            jobs.check_trainable(eng, settings().data_dir, lead)  # the API's refusal, word for word
            found = _service().train(eng, settings().data_dir, seed, window, lead, names)
        ev = found.to_dict()
    if as_json:
        print_json(ev)
        return
    rate = ev["base_rate"]
    typer.echo(
        f"churn: {ev['rows']} customers, {ev['churned']} churned; holdout {ev['holdout']} "
        f"customers\nROC AUC {ev['auc']:.3f}   Brier score {ev['brier']:.4f} "
        f"(a constant guess: {rate * (1 - rate):.4f})"
    )
    rows = [{"risk bin": i + 1, "mean predicted": f"{b['predicted']:.3f}",
             "observed churn": f"{b['observed']:.3f}", "customers": b["customers"]}
            for i, b in enumerate(ev["calibration"])]  # fmt: skip
    print_table(rows, ["risk bin", "mean predicted", "observed churn", "customers"],
                "Calibration on the holdout (bins of equal size)")  # fmt: skip
    if ev["nps_mae"] is not None:
        typer.echo(f"predicted NPS: {ev['nps_rows']} answers; holdout MAE {ev['nps_mae']:.2f} "
                   f"points (0-10), R² {ev['nps_r2']:.3f}")  # fmt: skip
    typer.echo(f"model {ev['model_version']}, feature set {ev['feature_set']}, seed {ev['seed']}")


@app.command("predict")
def predict(
    seed: int = typer.Option(SEED, "--seed", help="seed of the model"),
    window: int = typer.Option(PREDICT_WINDOW_DAYS, "--window", help="days of history seen"),
    lead: int = typer.Option(LEAD_HOURS, "--lead-hours", help="stop before a churn"),
    traits: str = typer.Option(TRAITS, "--traits", help="comma-separated customer traits"),
    top: int = typer.Option(10, "--top", help="customers at most risk to print"),
) -> None:
    """Score every customer who has not churned (churn risk, predicted NPS, three reasons each)
    and store the scores, replacing the previous ones (through the server's API while
    'cxm serve' runs)."""
    if not 0 <= top <= 1000:
        typer.secho("error: --top: give a number from 0 to 1000", err=True, fg="red")
        raise typer.Exit(2)
    names = _traits(traits)
    done = _through_server("predict", _run_body(seed, window, lead, names, top))
    if done is None:
        from cxm.insights import jobs

        service = _service()
        with errors():
            eng = engine()
            jobs.check_trainable(eng, settings().data_dir, lead)
            scores = service.score(eng, settings().data_dir, seed, window, lead, None, names)
            with eng.begin() as conn:
                written = service.store_scores(conn, scores)
        done = jobs.scores_summary(scores, written, top)
    rows = [{"customer": r["customer_id"], "churn risk": f"{r['churn_risk']:.1%}",
             "predicted NPS": _fmt(r["predicted_nps"], 1), "reasons": "; ".join(r["reasons"])}
            for r in done["top"]]  # fmt: skip
    print_table(rows, ["customer", "churn risk", "predicted NPS", "reasons"],
                f"{done['written']} customers scored as of {done['as_of'][:16].replace('T', ' ')} "
                f"UTC; model {done['model_version']}, feature set {done['feature_set']}, "
                f"seed {done['seed']}", whole=["customer"])  # fmt: skip


@app.command("revenue")
def revenue(
    reduce: float = typer.Option(50.0, "--reduce", help="percent a signal's reach falls by"),
    window: int = typer.Option(WINDOW_DAYS, "--window", help="days a signal counts before"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Revenue at risk by NPS category and by signal, and what fixing each signal is worth
    (customers and annual revenue kept if its reach fell by --reduce percent)."""
    if not 0 <= reduce <= 100:
        typer.secho("error: --reduce: give a percentage from 0 to 100", err=True, fg="red")
        raise typer.Exit(2)
    with errors():
        result = _service().revenue(engine(), settings().data_dir, reduce / 100, window)
    if as_json:
        print_json(result.to_dict())
        return
    rows = [{"NPS category": c.category, "customers": c.customers, "churned": c.churned,
             "churn rate": f"{c.churn_rate:.1%}", "revenue (stayed)": f"{c.revenue_active:,.0f}",
             "revenue lost": f"{c.revenue_lost:,.0f}",
             "revenue at risk": f"{c.revenue_at_risk:,.0f}"}
            for c in result.categories]  # fmt: skip
    print_table(rows, list(rows[0]), "Revenue at risk by NPS category (annual)")
    sig = [{"signal": s.key, "department": s.department, "met": s.met,
            "extra churned": _fmt(s.extra_churned, 1),
            "revenue at risk": "" if s.revenue_at_risk is None else f"{s.revenue_at_risk:,.0f}",
            f"kept at -{reduce:g}% reach": _fmt(s.customers_kept, 1),
            "revenue kept": "" if s.revenue_kept is None else f"{s.revenue_kept:,.0f}"}
           for s in result.signals]  # fmt: skip
    print_table(sig, list(sig[0]) if sig else ["signal"], "Revenue at risk by signal (annual)")
