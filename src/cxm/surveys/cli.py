"""``cxm surveys`` commands and ``cxm import responses``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from cxm.console import (
    check_format,
    check_page,
    console,
    engine,
    errors,
    page,
    print_list,
    settings,
)
from cxm.errors import Invalid, NotFound

FORMAT = typer.Option("table", "--format", help="table | csv | json")
AS_JSON = typer.Option(False, "--json", help="print JSON (same as --format json)")
LIMIT = typer.Option(100, "--limit", help="at most this many rows")
OFFSET = typer.Option(0, "--offset", help="skip this many rows (the next page)")

app = typer.Typer(help="Surveys: definitions, links, contact rules, funnel.", no_args_is_help=True)


@app.command("apply")
def apply(files: list[Path] = typer.Argument(..., help="survey YAML or JSON files")) -> None:
    """Publish survey definitions; a changed survey gets a new version (all or nothing)."""
    from cxm.surveys import service
    from cxm.yamldoc import read

    with errors(), engine().begin() as conn:
        results = [service.apply_definition(conn, read(f)) for f in files]
    for r in results:
        console.print(f"{r.key}: {r.status} (version {r.version})")


@app.command("templates")
def templates() -> None:
    """Publish the ready-made templates (relationship NPS, support CSAT, CES, ...)."""
    from cxm.surveys import service

    with errors(), engine().begin() as conn:
        results = service.apply_templates(conn)
    for r in results:
        console.print(f"{r.key}: {r.status} (version {r.version})")


@app.command("export")
def export(
    key: str,
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML"),
) -> None:
    """Write a survey's current definition (the format 'cxm surveys apply' reads)."""
    import yaml

    from cxm.surveys import service

    with errors(), engine().connect() as conn:
        data = service.export_definition(conn, key)
    text = (
        json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if as_json
        else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command("list")
def list_(fmt: str = FORMAT, limit: int = LIMIT, offset: int = OFFSET) -> None:
    """List surveys with their current version, bounces and suppressed invitations."""
    from cxm.surveys import service, suppressions

    check_format(fmt)
    check_page(limit, offset)
    eng = engine()
    with eng.connect() as conn:
        rows = [s.__dict__ for s in service.list_surveys(conn)]
    held = suppressions.per_survey(eng)
    none = {"bounced": 0, "suppressed_bounced": 0, "suppressed": 0}
    for r in rows:
        r.update(held.get(r["key"], none))
    total, rows = len(rows), page(rows, limit, offset)
    if fmt != "json":
        for r in rows:
            r["languages"] = ", ".join(r["languages"])
    print_list(rows, ["key", "title", "kind", "version", "languages", "questions", "triggers",
                      "bounced", "suppressed", "suppressed_bounced"], "Surveys", fmt=fmt,
               total=total, offset=offset, whole=("key",))  # fmt: skip


def _link_base() -> str:
    """CXM_BASE_URL when set; else the address of the server running on this data dir; else
    the default (http://127.0.0.1:8000)."""
    from cxm.console import running_server

    conf = settings()
    server = None if conf.base_url_set else running_server(conf.data_dir)
    return server.url if server is not None else conf.base_url


@app.command("link")
def link(
    key: str,
    customer: str | None = typer.Option(None, help="email, phone or kind:value of the customer"),
    lang: str | None = typer.Option(None, "--lang", help="language of the survey page"),
    channel: str = typer.Option("link", help="the channel you will use (sms, receipt, qr, web)"),
) -> None:
    """Print a personal invitation link, or the open link without --customer."""
    from cxm.surveys import service

    base = _link_base()
    with errors(), engine().begin() as conn:
        if customer:
            url = service.personal_link(conn, base, key, customer, lang, channel)
        else:
            if not service.get_definition(conn, key).open_link:
                raise NotFound(f"survey '{key}' has no open link (open_link: false)")
            url = service.open_link(base, key, "web" if channel == "link" else channel, lang)
    typer.echo(url)


@app.command("embed")
def embed(key: str, channel: str = typer.Option("web")) -> None:
    """Print an iframe snippet that embeds the survey's open link in a web page."""
    from cxm.surveys import service

    with errors(), engine().connect() as conn:
        service.current_version(conn, key)
    typer.echo(service.embed_snippet(_link_base(), key, channel))


@app.command("rule")
def rule(
    scope: str = typer.Argument("all", help="all | relationship | transactional | employee"),
    days: int = typer.Option(..., help="at most one invitation per customer per this many days"),
    quiet: str | None = typer.Option(None, help="quiet hours in the customer's zone, e.g. 21-8"),
) -> None:
    """Set a contact-fatigue rule."""
    from cxm.surveys import service

    with errors():
        start = end = None
        if quiet:
            try:
                start, end = (int(x) for x in quiet.split("-"))
            except ValueError as exc:
                raise Invalid(f"--quiet '{quiet}' is not like 21-8") from exc
        with engine().begin() as conn:
            service.set_contact_rule(conn, service.ContactRule(scope, days, start, end))
    console.print(f"contact rule '{scope}': {days} days" + (f", quiet {quiet}" if quiet else ""))


@app.command("funnel")
def funnel(
    key: str | None = typer.Argument(None),
    as_json: bool = AS_JSON,
    fmt: str = FORMAT,
    limit: int = LIMIT,
    offset: int = OFFSET,
) -> None:
    """Invited, suppressed, sent, opened, started, completed and response rate per channel."""
    from cxm.surveys import analytics

    fmt = "json" if as_json else check_format(fmt)
    check_page(limit, offset)
    from cxm.names import Names

    eng = engine()
    every = analytics.funnel(eng, key)
    rows = page(every, limit, offset)
    names = Names(eng)
    for r in rows if fmt != "json" else []:
        r["suppressed_by_reason"] = ", ".join(
            f"{k} {v}" for k, v in r["suppressed_by_reason"].items()
        )
        r["survey"] = names.survey(r["survey_key"])  # the name beside the key 'funnel' takes
    columns = ["survey_key", "survey", "channel", "invited", "suppressed", "sent", "opened",
               "started", "completed", "response_rate", "suppressed_by_reason"]  # fmt: skip
    print_list(rows, columns, "Funnel", fmt=fmt, total=len(every), offset=offset, noun="rows",
               whole=("survey_key",))  # fmt: skip


@app.command("suppressions")
def suppressions_command(
    survey: str | None = typer.Option(None, help="only addresses that bounced on this survey"),
    as_json: bool = AS_JSON,
    fmt: str = FORMAT,
    limit: int = LIMIT,
    offset: int = OFFSET,
) -> None:
    """The contact-suppression ledger: addresses no invitation goes to, and why (bounced)."""
    from cxm.surveys import suppressions

    fmt = "json" if as_json else check_format(fmt)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = suppressions.ledger(conn, survey)
    print_list(page(rows, limit, offset), ["created_at", "channel", "address", "reason", "source",
                                          "status_code", "survey_key"],
               "Contact suppressions", fmt=fmt, total=len(rows), offset=offset,
               noun="suppressed addresses", whole=("address",))  # fmt: skip


@app.command("read-bounces")
def read_bounces(
    maildir: Path | None = typer.Option(
        None, help="maildir of delivery status notifications; default: CXM_BOUNCE_MAILDIR"
    ),
) -> None:
    """Read bounce reports (RFC 3464 DSNs) from the bounce maildir once; hard bounces
    suppress their address like a 5xx at send time. The server does this every 5 minutes."""
    from cxm.surveys import distribution

    conf = settings()
    if maildir is not None:
        conf = dataclasses.replace(conf, bounce_maildir=str(maildir))
    with errors(), engine().begin() as conn:
        counts = distribution.read_bounces(conn, conf)
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))


@app.command("record-sends")
def record_sends_command() -> None:
    """Record the log's survey_sent events (surveys another tool sent) as sent invitations,
    linked to the answers that followed, so the response rate counts them."""
    from cxm.surveys import sends

    with errors():
        new = sends.record_sends(engine())
    console.print(f"{new} sent invitations recorded")


def import_responses(
    file: Path = typer.Argument(..., help="CSV of responses"),
    survey: str | None = typer.Option(None, help="survey key, when the file has no survey column"),
    mapping: Path | None = typer.Option(None, "--map", help="mapping YAML (columns, answers)"),
    rejects: Path | None = typer.Option(None, help="where to write rejected rows"),
    max_rejected: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="store nothing and exit 2 when more than this share of rows is rejected "
        "(default: the mapping's max_rejected_share, else only when every row is)",
    ),
) -> None:
    """Import responses collected elsewhere; bad rows go to <file stem>.rejects.csv with the
    line and reason."""
    from cxm.surveys import importer
    from cxm.yamldoc import read

    with errors():
        mapped = importer.load_mapping(read(mapping)) if mapping else None
        if max_rejected is not None:
            mapped = (mapped or importer.Mapping()).model_copy(
                update={"max_rejected_share": max_rejected}
            )
        with engine().begin() as conn:
            summary = importer.import_responses(
                conn, file, survey=survey, mapping=mapped, rejects=rejects
            )
    console.print(
        f"imported {summary.imported} responses, {summary.already_present} already present, "
        f"{summary.rejected} rejected"
    )
    if summary.rejects_file:
        console.print(f"rejected rows with reasons: {summary.rejects_file}")
