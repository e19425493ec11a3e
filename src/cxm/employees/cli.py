"""``cxm employees`` (directory, pulse results, EX beside CX) and ``cxm import employees``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from cxm.console import (
    bad_input,
    check_format,
    check_page,
    console,
    engine,
    errors,
    print_csv,
    print_json,
    print_list,
    print_table,
    settings,
)

app = typer.Typer(
    help="Employees: directory, pulse results (eNPS), team EX beside CX.", no_args_is_help=True
)
FORMAT = typer.Option("table", "--format", help="table | csv | json")


def _when(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        bad_input(f"--{name}: {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)")
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def import_employees(
    file: Path = typer.Argument(..., help="CSV or Parquet file, one employee per row"),
    map_: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, repeatable (team=Abteilung)"),
    as_of: str | None = typer.Option(None, "--as-of", help="when team changes happened (now)"),
) -> None:
    """Import the employee directory; a changed team is a move (history stays with the old
    team up to --as-of). All or nothing: any bad row refuses the whole file."""
    from cxm.employees.importer import import_employees as run

    mapping: dict[str, str] = {}
    for item in map_:
        target, sep, column = item.partition("=")
        if not sep:
            bad_input(f"--map: {item!r} is not FIELD=COLUMN (e.g. team=Abteilung)")
        mapping[{"team": "team_key"}.get(target, target)] = column
    when = _when(as_of, "as-of")
    with errors(), engine().begin() as conn:
        result = run(conn, file, mapping=mapping, as_of=when)
    console.print(f"employees: {result.line()}")


def import_partner_contacts(
    file: Path = typer.Argument(..., help="CSV or Parquet file: name, email, role, partner"),
    partner: str | None = typer.Option(None, "--partner", help="the partner of every row"),
) -> None:
    """Import the people at partners who answer the partner pulse, matched by partner and
    email. All or nothing: any bad row refuses the whole file."""
    from cxm.employees.partner_pulse import import_contacts

    with errors(), engine().begin() as conn:
        result = import_contacts(conn, file, partner)
    console.print(f"partner contacts: {result.line()}")


@app.command("partner-contacts")
def partner_contacts(
    partner: str = typer.Argument(..., help="partner key"), fmt: str = FORMAT
) -> None:
    """The people at a partner who answer the partner pulse."""
    from cxm.employees.partner_pulse import contact_rows, list_contacts

    check_format(fmt)
    with errors(), engine().connect() as conn:
        rows = contact_rows(list_contacts(conn, partner))
    cols = ["name", "email", "role", "partner"]
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        print_csv(rows, cols)
    else:
        print_table(rows, cols, f"Contacts at {partner}", whole=("email",))


@app.command("partner-pulse")
def partner_pulse_results(
    partner: str = typer.Argument(..., help="partner key"),
    start: str | None = typer.Option(None, "--start", help="first of a month (UTC)"),
    end: str | None = typer.Option(None, "--end", help="first of a month, exclusive (UTC)"),
    fmt: str = FORMAT,
) -> None:
    """The partner pulse of a partner's own people (partner NPS, ease, communication), under
    the minimum group size per month."""
    from cxm.employees import partner_pulse
    from cxm.org import service as org

    check_format(fmt)
    with errors():
        with engine().connect() as conn:
            org.get_partner(conn, partner)
        result = partner_pulse.results(
            engine(), partner, minimum=settings().employee_min_group,
            start=_when(start, "start"), end=_when(end, "end"),
        )  # fmt: skip
    if fmt == "json":
        print_json(result)
        return
    rows = [{"question": "partner NPS", "value": result["pnps"], "low": result["pnps_low"],
             "high": result["pnps_high"], "answers": result["answers"]}]  # fmt: skip
    rows += [{"question": i["label"], "value": i["mean"], "low": i["low"], "high": i["high"],
              "answers": i["n"]} for i in result["items"]]  # fmt: skip
    if result["hidden"] or result["pnps"] is None:
        rows = []
    cols = ["question", "value", "low", "high", "answers"]
    if fmt == "csv":
        print_csv(rows, cols)
        return
    print_table(rows, cols, f"Partner pulse of {partner}: {result['respondents'] or 0} people")
    if result["note"]:
        console.print(result["note"])


@app.command("list")
def list_employees(
    team: str | None = typer.Option(None, help="only this team (now)"),
    department: str | None = typer.Option(None, help="only this department (now)"),
    fmt: str = FORMAT,
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """The employee directory as it is now."""
    from cxm.employees import directory

    check_format(fmt)
    check_page(limit, offset)
    with errors(), engine().connect() as conn:
        total, rows = directory.list_employees(
            conn, team=team, department=department, limit=limit, offset=offset
        )
    out = [
        {
            "employee_id": e.employee_id,
            "name": e.name,
            "email": e.email,
            "team": e.team_key,
            "department": e.department_key,
            "role": e.role,
            "manager_id": e.manager_id,
            "start_date": e.start_date,
            "location": e.location,
        }
        for e in rows
    ]
    print_list(
        out,
        list(out[0]) if out else ["employee_id"],
        "Employees",
        fmt=fmt,
        total=total,
        offset=offset,
        whole=("employee_id",),
    )


@app.command("show")
def show(employee_id: str) -> None:
    """One employee with their team history."""
    from cxm.employees import directory

    with errors(), engine().connect() as conn:
        e = directory.get_employee(conn, employee_id)
    console.print(f"{e.employee_id}  {e.name or ''}  {e.email or ''}")
    console.print(f"team {e.team_key} ({e.department_key}), role {e.role}, manager {e.manager_id}")
    for s in e.history:
        until = s.valid_to.isoformat() if s.valid_to else "now"
        console.print(f"  {s.team_key}: {s.valid_from.isoformat()} .. {until}")


def enps(
    by: str = typer.Option("team", "--by", help="company | department | team"),
    grain: str | None = typer.Option(None, "--grain", help="month | quarter | year"),
    start: str | None = typer.Option(None, "--start", help="inclusive, the first of a month (UTC)"),
    end: str | None = typer.Option(None, "--end", help="exclusive, the first of a month (UTC)"),
    fmt: str = FORMAT,
) -> None:
    """eNPS per group (points, with its 95% interval); groups under the minimum size, or that
    would reveal one by subtraction, show as hidden without figures."""
    from cxm.employees import service

    check_format(fmt)
    minimum = settings().employee_min_group
    with errors():
        rows = service.pulse_results(
            engine(), by, grain, minimum=minimum, start=_when(start, "start"), end=_when(end, "end")
        )
    cols = (["period"] if grain else []) + [
        by,
        "respondents",
        "enps",
        "enps_low",
        "enps_high",
        "score_mean",
        "engagement",
        "engagement_low",
        "engagement_high",
    ]
    out: list[dict[str, Any]] = []
    for r in rows:
        row: dict[str, Any] = {"period": r.period, by: r.key}
        if r.hidden:
            row.update(respondents=f"hidden (< {minimum})")
        else:
            row.update(
                respondents=r.respondents,
                enps=r.enps,
                enps_low=r.enps_low,
                enps_high=r.enps_high,
                score_mean=r.score_mean,
                engagement=r.engagement,
                engagement_low=r.engagement_low,
                engagement_high=r.engagement_high,
            )
        out.append(row)
    if fmt == "json":
        print_json([r.__dict__ for r in rows])
    elif fmt == "csv":
        print_csv(out, cols)
    else:
        print_table(
            out, cols, f"eNPS by {by} (points; groups under {minimum} are hidden)", whole=(by,)
        )


app.command("enps")(enps)


@app.command("comments")
def comments(
    key: str = typer.Argument(..., help="the team or department key"),
    by: str = typer.Option("team", "--by", help="department | team"),
) -> None:
    """A group's pulse comments (sorted, without who or when); refused for a hidden group."""
    from cxm.employees import service

    with errors():
        texts = service.pulse_comments(engine(), by, key, minimum=settings().employee_min_group)
    for t in texts:
        typer.echo(t)


@app.command("experience")
def experience(
    grain: str = typer.Option("quarter", "--grain", help="month | quarter | year"),
    department: str | None = typer.Option(None, help="only this department's teams"),
    fmt: str = FORMAT,
) -> None:
    """Each team's eNPS beside the CX of its touchpoints, and the relation across teams."""
    from cxm.employees import service

    check_format(fmt)
    s = settings()
    with errors():
        r = service.people_and_experience(
            engine(), s.data_dir, grain, minimum=s.employee_min_group, department=department
        )
    rel = [rel.__dict__ for rel in r.relations]
    if fmt == "json":
        print_json(
            {"grain": r.grain, "minimum_group": r.minimum, "teams": r.rows, "relations": rel}
        )
        return
    cols = [
        "team",
        "period",
        "respondents",
        "enps",
        "score_mean",
        "engagement",
        "csat_mean",
        "ces_mean",
        "friction_rate",
    ]
    if fmt == "csv":
        print_csv(r.rows, cols)
        return
    print_table(r.rows, cols, f"Team EX beside CX by {grain}", whole=("team",))
    print_table(
        [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items()} for x in rel],
        ["x", "y", "lag", "slope", "low", "high", "teams", "periods", "observations", "note"],
        "Relations across teams",
    )


@app.command("pulse-schedule")
def pulse_schedule(
    survey: str = typer.Argument(
        "employee_pulse", help="an employee or partner survey (kind: employee or partner)"
    ),
    every: str = typer.Option("monthly", "--every", help="monthly | quarterly"),
    first: str = typer.Option(..., "--first", help="the first round's date or time (UTC)"),
    reminder_days: int = typer.Option(7, "--reminder-days", help="days before the reminder"),
) -> None:
    """Send an employee survey to every employee (a partner survey: to every partner contact)
    on a schedule, with one reminder."""
    from cxm.employees import pulse

    when = _when(first, "first")
    assert when is not None
    with errors(), engine().begin() as conn:
        s = pulse.set_schedule(conn, survey, every, when.replace(tzinfo=dt.UTC), reminder_days)
    console.print(f"{s.survey_key}: {s.cadence} from {s.next_run_at.isoformat()}, "
                  f"reminder after {s.reminder_days} days")  # fmt: skip


@app.command("pulse-run")
def pulse_run() -> None:
    """Start the pulse rounds that are due and send due reminders now (the server does this
    every five minutes)."""
    from cxm.employees import pulse

    with errors(), engine().begin() as conn:
        result = pulse.run_due(conn, settings())
    console.print(result.line())
