"""The weekly department digest: its scores with their change, the touchpoints that moved most,
the themes its customers wrote about most, and its open cases past their SLA, emailed to the
people who subscribed.

Every figure comes from the one place that defines it: scores from :func:`cxm.metrics.compute`
(so a digest's NPS equals the dashboard's for the same department and week, interval and
minimum sample included), cases from the actions facts, themes from the text facts. A week is
Monday 00:00 to Monday 00:00 UTC; the digest reports the last complete week against the one
before it.
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
import smtplib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.actions import titles
from cxm.actions.routing import OPEN
from cxm.actions.tables import cases, report_sends, report_subscriptions
from cxm.config import Settings
from cxm.errors import Forbidden, Invalid, NotFound
from cxm.mail import classify_failure, send_mail
from cxm.metrics import compute
from cxm.metrics.definitions import load
from cxm.org import auth
from cxm.org import service as org
from cxm.org.scope import Scope
from cxm.store import utcnow
from cxm.store.analytics import reading
from cxm.surveys.facts import responses as survey_responses
from cxm.text import taxonomy
from cxm.text.facts import tags

REPORT = "department_digest"
PAGE_EXPORT = "page_export"
# The scores a digest shows, in order; a metric an installation removed is left out.
SCORES = ("nps", "csat", "ces")
MOVERS = 3
THEMES = 5


@dataclass
class Score:
    metric: str
    description: str
    unit: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    previous: float | None
    previous_n: int

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass
class Digest:
    department_key: str
    department: str
    week_start: dt.date
    week_end: dt.date  # exclusive
    scores: list[Score] = field(default_factory=list)
    movers: list[dict[str, Any]] = field(default_factory=list)
    themes: list[dict[str, Any]] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)


def week_of(day: dt.date) -> dt.date:
    """The Monday that starts the last complete week before ``day``."""
    this_monday = day - dt.timedelta(days=day.weekday())
    return this_monday - dt.timedelta(days=7)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _row(frame: Any) -> dict[str, Any] | None:
    rows = frame.to_dict("records")
    return rows[0] if rows else None


def _num(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def build(engine: Engine, department_key: str, week_start: dt.date) -> Digest:
    """The digest of one department for the week starting ``week_start`` (a Monday).

    Raises NotFound for an unknown department, Invalid when ``week_start`` is not a Monday.
    """
    if week_start.weekday() != 0:
        raise Invalid(f"a digest week starts on a Monday; {week_start} is a {week_start:%A}")
    with engine.connect() as conn:
        department = org.get_department(conn, department_key)
        owned = {
            t.key: t.name for t in org.list_touchpoints(conn) if t.department_key == department_key
        }
        theme_names = {(t.taxonomy, t.key): t.name for t in taxonomy.list_themes(conn)}
    start, end = _at(week_start), _at(week_start + dt.timedelta(days=7))
    before = _at(week_start - dt.timedelta(days=7))
    digest = Digest(department_key, department.name, week_start, end.date())
    metrics = load()
    where = {"department": department_key}
    for name in (m for m in SCORES if m in metrics):
        now = _row(compute(engine, name, start=start, end=end, filters=where, metrics=metrics))
        prev = _row(compute(engine, name, start=before, end=start, filters=where, metrics=metrics))
        digest.scores.append(
            Score(
                metric=name,
                description=metrics[name].description,
                unit=metrics[name].unit,
                value=_num(now["value"]) if now else None,
                ci_low=_num(now["ci_low"]) if now else None,
                ci_high=_num(now["ci_high"]) if now else None,
                n=int(now["n"]) if now else 0,
                previous=_num(prev["value"]) if prev else None,
                previous_n=int(prev["n"]) if prev else 0,
            )
        )
        by = ["touchpoint"]
        this = compute(engine, name, by, start=start, end=end, filters=where, metrics=metrics)
        last = compute(engine, name, by, start=before, end=start, filters=where, metrics=metrics)
        previous = {r["touchpoint"]: r for r in last.to_dict("records")}
        for r in this.to_dict("records"):
            p = previous.get(r["touchpoint"])
            value, old = _num(r["value"]), _num(p["value"]) if p else None
            if value is None or old is None:
                continue  # below the minimum sample in either week: no change to report
            digest.movers.append(
                {
                    "metric": name,
                    "unit": metrics[name].unit,
                    "touchpoint": owned.get(r["touchpoint"], r["touchpoint"]),
                    "value": value,
                    "previous": old,
                    "change": value - old,
                    "n": int(r["n"]),
                }
            )
    digest.movers = sorted(digest.movers, key=lambda m: -abs(m["change"]))[:MOVERS]
    digest.themes = _themes(engine, set(owned), start, end, theme_names)
    digest.overdue = _overdue(engine, department_key)
    return digest


def _themes(
    engine: Engine,
    touchpoints: set[str],
    start: dt.datetime,
    end: dt.datetime,
    names: dict[tuple[str, str], str],
) -> list[dict[str, Any]]:
    if not touchpoints:
        return []
    with reading(engine) as con:
        return _theme_counts(con, touchpoints, start, end, names)


def _theme_counts(
    con: Any,
    touchpoints: set[str],
    start: dt.datetime,
    end: dt.datetime,
    names: dict[tuple[str, str], str],
) -> list[dict[str, Any]]:
    r = survey_responses(con)
    naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))
    r = r.filter(
        r.completed,
        r.submitted_at >= naive[0],
        r.submitted_at < naive[1],
        r.touchpoint_key.isin(sorted(touchpoints)),
    )
    t = tags(con)
    t = t.filter(t.source == "survey_response")
    joined = t.join(r, t.source_id == r.id)
    counts = (
        joined.group_by([joined.taxonomy, joined.theme_key])
        .aggregate(mentions=joined.source_id.nunique())
        .order_by([joined.source_id.nunique().desc(), joined.theme_key])
        .limit(THEMES)
        .to_pyarrow()
        .to_pylist()
    )
    return [
        {"theme": names.get((c["taxonomy"], c["theme_key"]), c["theme_key"]),
         "mentions": int(c["mentions"])}
        for c in counts
    ]  # fmt: skip


def _overdue(engine: Engine, department_key: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cases)
            .where(
                cases.c.department_key == department_key,
                cases.c.status.in_(OPEN),
                cases.c.sla_state == "breached",
            )
            .order_by(cases.c.resolution_due)
        ).mappings()
        found = [dict(r) for r in rows]
        titles.render(conn, found)
    return [{"id": r["id"], "title": r["title"], "priority": r["priority"],
             "due": r["resolution_due"]} for r in found]  # fmt: skip


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "too few answers"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "points":
        return f"{value:+.1f}" if value else "0.0"
    return f"{value:.2f}"


def _change(change: float | None, unit: str) -> str:
    if change is None:
        return "no comparison"
    suffix = " pts" if unit in ("%", "points") else ""
    return f"{change:+.1f}{suffix}" if suffix else f"{change:+.2f}"


def render(digest: Digest, base_url: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a digest email."""
    last = digest.week_end - dt.timedelta(days=1)
    week = f"{digest.week_start.day} {digest.week_start:%b} to {last.day} {last:%b %Y}"
    subject = f"{digest.department}: your week in customer experience ({week})"
    link = f"{base_url.rstrip('/')}/departments/{digest.department_key}"
    lines = [subject, ""]
    lines.append("Scores (the week; change against the week before):")
    for s in digest.scores:
        interval = (
            f", 95% CI {_fmt(s.ci_low, s.unit)} to {_fmt(s.ci_high, s.unit)}"
            if s.ci_low is not None and s.ci_high is not None
            else ""
        )
        lines.append(
            f"- {s.metric.upper()}: {_fmt(s.value, s.unit)} (n={s.n}{interval}); "
            f"{_change(s.change, s.unit)}"
        )
    lines += ["", "Touchpoints that moved most:"]
    lines += [
        f"- {m['touchpoint']}, {m['metric'].upper()}: {_fmt(m['previous'], m['unit'])} -> "
        f"{_fmt(m['value'], m['unit'])} ({_change(m['change'], m['unit'])}, n={m['n']})"
        for m in digest.movers
    ] or ["- none with enough answers in both weeks"]
    lines += ["", "What customers wrote about most:"]
    lines += [f"- {t['theme']}: {t['mentions']} comments" for t in digest.themes] or [
        "- no tagged comments this week"
    ]
    lines += ["", f"Open cases past their SLA: {len(digest.overdue)}"]
    lines += [f"- [{c['priority']}] {c['title']}" for c in digest.overdue[:10]]
    lines += ["", f"Open the scorecard: {link}", ""]
    text = "\n".join(lines)
    body = "".join(
        f"<p>{html.escape(line)}</p>" if line and not line.startswith("- ")
        else f"<li>{html.escape(line[2:])}</li>" if line else ""
        for line in lines
    )  # fmt: skip
    return subject, text, f"<!doctype html><html><body>{body}</body></html>"


# ---- subscriptions ----


def subscribe(
    conn: Connection, scope: Scope, user_email: str, department_key: str, weekday: int = 0
) -> dict[str, Any]:
    """Subscribe a user to a department's weekly digest.

    A manager subscribes only to their own department; admins and CX leads to any.
    Raises NotFound (unknown user or department), Forbidden (outside the caller's scope),
    Invalid (a weekday outside 0..6).
    """
    if not 0 <= weekday <= 6:
        raise Invalid("weekday is 0 (Monday) to 6 (Sunday)")
    org.get_department(conn, department_key)
    if scope.by_department and scope.department_key != department_key:
        raise Forbidden("a manager may subscribe to their own department's digest only")
    user = next((u for u in auth.list_users(conn) if u["email"] == user_email.lower()), None)
    if user is None:
        raise NotFound(f"no user with email {user_email}")
    sub_id = secrets.token_hex(16)
    conn.execute(
        report_subscriptions.insert().values(
            id=sub_id,
            user_id=user["id"],
            report=REPORT,
            department_key=department_key,
            weekday=weekday,
            created_at=utcnow(),
        )
    )
    return {"id": sub_id, "email": user["email"], "department_key": department_key,
            "weekday": weekday}  # fmt: skip


def subscribe_export(
    conn: Connection, user_email: str, path: str, fmt: str, weekday: int = 0
) -> dict[str, Any]:
    """Email a page to a user every week as PDF or PNG, rendered as that user sees it.

    Raises NotFound (unknown user), Invalid (format or weekday); the caller checks the path.
    """
    if fmt not in ("pdf", "png"):
        raise Invalid(f"format '{fmt}' is not pdf or png")
    if not 0 <= weekday <= 6:
        raise Invalid("weekday is 0 (Monday) to 6 (Sunday)")
    user = next((u for u in auth.list_users(conn) if u["email"] == user_email.lower()), None)
    if user is None:
        raise NotFound(f"no user with email {user_email}")
    sub_id = secrets.token_hex(16)
    conn.execute(
        report_subscriptions.insert().values(
            id=sub_id, user_id=user["id"], report=PAGE_EXPORT, department_key=None,
            weekday=weekday, path=path, format=fmt, created_at=utcnow(),
        )
    )  # fmt: skip
    return {"id": sub_id, "email": user["email"], "path": path, "format": fmt, "weekday": weekday}


def due(conn: Connection, report: str, now: dt.datetime) -> tuple[dt.date, list[dict[str, Any]]]:
    """(the reported week, the subscriptions of ``report`` due today and not sent for it)."""
    week = week_of(now.date())
    sent = sa.select(report_sends.c.subscription_id).where(
        report_sends.c.period_start == week, report_sends.c.status == "sent"
    )
    rows = conn.execute(
        sa.select(report_subscriptions).where(
            report_subscriptions.c.report == report,
            report_subscriptions.c.weekday == now.weekday(),
            report_subscriptions.c.id.not_in(sent),
        )
    ).mappings()
    return week, [dict(r) for r in rows]


def record_send(
    conn: Connection, subscription_id: str, week: dt.date, status: str, error: str | None
) -> None:
    """Remember how the week's send went (one row per subscription and week)."""
    conn.execute(
        report_sends.delete().where(
            report_sends.c.subscription_id == subscription_id, report_sends.c.period_start == week
        )
    )
    conn.execute(
        report_sends.insert().values(
            subscription_id=subscription_id, period_start=week, status=status, error=error,
            sent_at=utcnow(),
        )
    )  # fmt: skip


def subscriptions(conn: Connection, user_email: str) -> list[dict[str, Any]]:
    """The digests a user receives (department and weekday)."""
    user = next((u for u in auth.list_users(conn) if u["email"] == user_email.lower()), None)
    if user is None:
        return []
    rows = conn.execute(
        sa.select(report_subscriptions).where(report_subscriptions.c.user_id == user["id"])
    ).mappings()
    return [dict(r) for r in rows]


def send_due(engine: Engine, settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every digest due today and not yet sent for its week; a failed send is recorded
    with its reason and tried again on the next run. Returns counts by outcome."""
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0}
    with engine.connect() as conn:
        users = {str(u["id"]): u for u in auth.list_users(conn)}
        week, subs = due(conn, REPORT, now)
    for sub in subs:
        user = users.get(sub["user_id"])
        if user is None or not user["is_active"]:
            continue
        digest = build(engine, sub["department_key"], week)
        subject, text, body = render(digest, settings.base_url)
        status, error = "sent", None
        try:
            send_mail(settings, str(user["email"]), subject, text, html=body,
                      headers={"X-Cxm-Report": REPORT})  # fmt: skip
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            status, error = "failed", classify_failure(exc, str(user["email"])).text
        counts[status] += 1
        with engine.begin() as conn:
            record_send(conn, sub["id"], week, status, error)
    return counts
