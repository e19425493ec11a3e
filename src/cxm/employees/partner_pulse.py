"""Partner pulse surveys: the people at a partner who answer them (partner contacts), and their
results on the partner's scorecard under the minimum group size.

Partner contacts are neither employees nor customers: their answers are the ``partner``
population of the survey responses (``respondent_kind = partner``), which no customer metric,
theme, impact or journey reads. Each answer carries the contact id and the partner key as
hidden fields (set on the invitation when a round is sent, or as columns of an imported
file), so it stays with the partner the contact worked for when they were asked.

Confidentiality is the employee rule (``cxm.employees.confidential``) on month cells: the
answers of one partner in one calendar month count only when at least ``minimum`` contacts
answered in that month, so two overlapping ranges never differ by fewer than ``minimum``
people. No figure across partners is shown, so there is nothing above a partner to subtract
from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import sqlalchemy as sa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection, Engine

from cxm.employees.confidential import DEFAULT_MINIMUM, Node, disclosed
from cxm.employees.importer import read_rows
from cxm.employees.schemas import PartnerContactBody as ContactIn
from cxm.employees.service import _check_month_bounds, engagement_interval
from cxm.employees.tables import partner_contacts
from cxm.errors import Invalid
from cxm.metrics.stats import nps_interval
from cxm.org import service as org
from cxm.store import utcnow
from cxm.store.analytics import reading
from cxm.surveys.facts import PARTNER
from cxm.surveys.facts import answers as survey_answers
from cxm.surveys.facts import responses as survey_responses

SURVEY = "partner_pulse"
# The rated items of the shipped template beside the partner NPS: id -> (label, min, max).
ITEMS: dict[str, tuple[str, float, float]] = {
    "ease": ("Ease of working together", 1.0, 5.0),
    "communication": ("Communication", 1.0, 5.0),
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PROBLEMS = 10


# ---- contacts ----


@dataclass(frozen=True)
class Contact:
    id: str
    partner_key: str
    email: str
    name: str
    role: str | None


@dataclass
class ContactsResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def line(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def contact_id(partner_key: str, email: str) -> str:
    """A contact's id: the same for the same partner and email (lower case) wherever it is
    made, so a file of answers can name the contacts of a file of contacts."""
    return hashlib.sha256(f"{partner_key}\x1f{email.strip().lower()}".encode()).hexdigest()[:32]


def _problems(rows: Sequence[tuple[str, str, ContactIn]]) -> list[str]:
    """What is wrong with ``rows`` (partner, label, contact), in order: bad emails, empty
    names, an email given twice for one partner."""
    out = []
    seen: dict[tuple[str, str], str] = {}
    for partner, label, c in rows:
        email = c.email.strip().lower()
        if not EMAIL.match(email):
            out.append(f"{label}: email {c.email!r} is not an email address")
        if not c.name.strip():
            out.append(f"{label}: name is empty")
        if (partner, email) in seen:
            out.append(f"{label}: email {email!r} is given twice (also {seen[partner, email]})")
        seen[partner, email] = label
    return out


def apply_contacts(
    conn: Connection, items: Sequence[tuple[str, ContactIn]], labels: Sequence[str] | None = None
) -> ContactsResult:
    """Create or update partner contacts, ``(partner key, contact)`` each, matched by partner
    and email (lower case). All or nothing: an unknown partner is NotFound, any invalid
    contact Invalid naming every problem (the first ten); nothing is written then."""
    labels = list(labels or [f"contact {i}" for i in range(1, len(items) + 1)])
    known = {p.key for p in org.list_partners(conn)}
    unknown = sorted({k for k, _ in items if k not in known})
    if unknown:
        org.get_partner(conn, unknown[0])  # NotFound naming the known partners
    problems = _problems([(k, lab, c) for (k, c), lab in zip(items, labels, strict=True)])
    if problems:
        more = len(problems) - MAX_PROBLEMS
        text = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise Invalid(f"nothing was written: {text}")
    existing = {
        (r.partner_key, r.email): r
        for r in conn.execute(
            sa.select(partner_contacts).where(
                partner_contacts.c.partner_key.in_(sorted({k for k, _ in items}))
            )
        )
    }
    now = utcnow()
    result = ContactsResult()
    for key, c in items:
        email, name = c.email.strip().lower(), c.name.strip()
        role = c.role.strip() if c.role and c.role.strip() else None
        row = existing.get((key, email))
        if row is None:
            conn.execute(
                partner_contacts.insert().values(
                    id=contact_id(key, email), partner_key=key, email=email, name=name,
                    role=role, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            result.created += 1
        elif (row.name, row.role) != (name, role):
            conn.execute(
                partner_contacts.update()
                .where(partner_contacts.c.id == row.id)
                .values(name=name, role=role, updated_at=now)
            )
            result.updated += 1
        else:
            result.unchanged += 1
    return result


def list_contacts(conn: Connection, partner_key: str | None = None) -> list[Contact]:
    """The contacts of one partner (NotFound for an unknown one), or of every partner."""
    c = partner_contacts.c
    q = sa.select(partner_contacts).order_by(c.partner_key, c.email)
    if partner_key is not None:
        org.get_partner(conn, partner_key)
        q = q.where(partner_contacts.c.partner_key == partner_key)
    return [Contact(r.id, r.partner_key, r.email, r.name, r.role) for r in conn.execute(q)]


# Target field -> the column names a file may use for it (the first present wins).
COLUMNS: dict[str, tuple[str, ...]] = {
    "partner": ("partner", "partner_key"),
    "name": ("name", "full_name"),
    "email": ("email",),
    "role": ("role", "title"),
}


def import_contacts(conn: Connection, path: Path, partner: str | None = None) -> ContactsResult:
    """Apply the contacts in a CSV or Parquet file (columns ``name``, ``email``, optional
    ``role``, and ``partner`` unless ``partner`` is given). All or nothing."""
    rows = read_rows(path)
    if not rows:
        raise Invalid(f"{path}: no rows")
    header = set(rows[0])
    cols = {t: next((n for n in names if n in header), None) for t, names in COLUMNS.items()}
    for target in ("name", "email"):
        if cols[target] is None:
            raise Invalid(f"{path}: no {target} column (looked for {', '.join(COLUMNS[target])})")
    if cols["partner"] is None and partner is None:
        raise Invalid(f"{path}: no partner column; name the partner of every row with --partner")

    def get(row: dict[str, Any], target: str) -> str:
        col = cols[target]
        value = row.get(col) if col else None
        return "" if value is None else str(value).strip()

    items: list[tuple[str, ContactIn]] = []
    labels: list[str] = []
    problems = []
    for line, row in enumerate(rows, start=2):
        key = get(row, "partner") or (partner or "")
        if partner is not None and get(row, "partner") not in ("", partner):
            problems.append(f"row {line}: partner {get(row, 'partner')!r} is not {partner!r}")
            continue
        if not key:
            problems.append(f"row {line}: partner is empty")
            continue
        name, email = get(row, "name"), get(row, "email")
        if not name or not email:
            problems.append(f"row {line}: {'name' if not name else 'email'} is empty")
            continue
        items.append((key, ContactIn(name=name[:200], email=email[:320],
                                     role=get(row, "role")[:100] or None)))  # fmt: skip
        labels.append(f"row {line}")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        text = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise Invalid(f"{path}: nothing was written: {text}")
    return apply_contacts(conn, items, labels)


def recipients(conn: Connection) -> list[tuple[str, str, str]]:
    """(contact id, partner key, email) of every contact of a partner that still exists."""
    known = {p.key for p in org.list_partners(conn)}
    q = sa.select(partner_contacts).order_by(partner_contacts.c.partner_key, partner_contacts.c.id)
    return [(r.id, r.partner_key, r.email) for r in conn.execute(q) if r.partner_key in known]


# ---- results ----


def pulse_answers(con: BaseBackend, survey: str = SURVEY) -> ir.Table:
    """Completed partner pulse answers: ``id, submitted_at, nps, comment, partner_key,
    respondent`` (the contact id, or the response id when the answer names none) and one
    column per item of ``ITEMS`` (null when skipped)."""
    r = survey_responses(con, PARTNER, customer=False)
    r = r.filter(r.completed, r.survey_key == survey, r.submitted_at.notnull())
    r = r.select("id", "submitted_at", "nps", "comment")
    a = survey_answers(con)
    hidden = a.filter(a.question_id.isin(["partner", "contact_id"]))
    hidden = hidden.group_by("response_id").aggregate(
        _partner=hidden.value_text.max(where=hidden.question_id == "partner"),
        _contact=hidden.value_text.max(where=hidden.question_id == "contact_id"),
    )
    items = a.filter(a.question_id.isin(list(ITEMS)), a.value_number.notnull())
    items = items.group_by("response_id").aggregate(
        **{
            f"_i_{item}": items.value_number.cast("float64").max(where=items.question_id == item)
            for item in ITEMS
        }
    )
    j = r.inner_join(hidden, r.id == hidden.response_id)
    j = j.left_join(items, j.id == items.response_id)
    return j.select(
        "id", "submitted_at", "nps", "comment",
        partner_key=j._partner,
        respondent=j._contact.fill_null(j.id),
        **{item: j[f"_i_{item}"] for item in ITEMS},
    )  # fmt: skip


def _in_range(
    p: ir.Table, partner: str, start: dt.datetime | None, end: dt.datetime | None
) -> ir.Table:
    p = p.filter(p.partner_key == partner)
    if start is not None:
        p = p.filter(p.submitted_at >= start)
    if end is not None:
        p = p.filter(p.submitted_at < end)
    return p.mutate(month=p.submitted_at.truncate("M").date())


def month_cells(
    con: BaseBackend, partner: str, start: dt.datetime | None, end: dt.datetime | None
) -> list[tuple[dt.date, int]]:
    """(month, distinct respondents) of one partner's pulse answers in ``[start, end)``."""
    p = _in_range(pulse_answers(con), partner, start, end)
    df = p.group_by("month").aggregate(n=p.respondent.nunique()).to_pandas()
    return sorted((m, int(n)) for m, n in zip(df["month"], df["n"], strict=True))


def kept_months(cells: Sequence[tuple[dt.date, int]], minimum: int) -> list[dt.date]:
    """The months whose answers may count: those in which the rule shows the partner."""
    kept = []
    for month, n in cells:
        if disclosed({"partner": Node(None, 0, n)}, minimum):
            kept.append(month)
    return kept


def results(
    source: Engine | BaseBackend,
    partner: str,
    *,
    minimum: int = DEFAULT_MINIMUM,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Any]:
    """The partner pulse of ``partner`` over ``[start, end)`` (naive UTC, whole months).

    Returns ``{"hidden", "respondents", "answers", "pnps", "pnps_low", "pnps_high", "items":
    [{item, label, mean, low, high, n}], "comments", "months", "months_withheld", "note"}``.
    The partner NPS is % promoters (9-10) - % detractors (0-6) of the 0-10 answers, with the
    adjusted Wald interval of Rocks (2016); each rated item is a mean on its 1-5 scale with the
    t interval over answers. Only months in which at least ``minimum`` contacts answered
    count; when none does the result is ``hidden`` with no figures and no comments.
    """
    out: dict[str, Any] = {
        "hidden": False, "respondents": 0, "answers": 0, "pnps": None, "pnps_low": None,
        "pnps_high": None, "items": [], "comments": [], "months": 0, "months_withheld": 0,
        "note": "",
    }  # fmt: skip
    try:
        _check_month_bounds(start, end)
    except Invalid:
        out["note"] = ("the partner pulse covers whole calendar months: choose a range from the "
                       "first of a month to the first of a month (00:00 UTC)")  # fmt: skip
        return out
    with reading(source) as con:
        cells = month_cells(con, partner, start, end)
        kept = kept_months(cells, minimum)
        out["months"], out["months_withheld"] = len(kept), len(cells) - len(kept)
        if not cells:
            out["note"] = "no partner pulse answers in this range"
            return out
        if not kept:
            out["hidden"] = True
            out["respondents"] = None
            out["note"] = (f"fewer than {minimum} people at this partner answered in any one "
                           "month, so the partner pulse is not shown")  # fmt: skip
            return out
        p = _in_range(pulse_answers(con), partner, start, end)
        p = p.filter(p.month.isin(kept))
        one, zero = ibis.literal(1), ibis.literal(0)
        agg: dict[str, ir.Value] = {
            "respondents": p.respondent.nunique(),
            "answers": p.nps.count(),
            "promoters": ibis.ifelse(p.nps >= 9, one, zero).sum(),
            "passives": ibis.ifelse((p.nps >= 7) & (p.nps <= 8), one, zero).sum(),
            "detractors": ibis.ifelse(p.nps <= 6, one, zero).sum(),
        }
        for item in ITEMS:
            agg[f"{item}_n"] = p[item].count()
            agg[f"{item}_mean"] = p[item].mean()
            agg[f"{item}_sd"] = p[item].std(how="sample")
        row = p.aggregate(**agg).to_pandas().to_dict("records")[0]
        c = p.filter(p.comment.notnull() & (p.comment.strip() != ""))
        comments = sorted(c.select("comment").to_pandas()["comment"].astype(str))
    out["respondents"] = int(row["respondents"])
    out["answers"] = int(row["answers"])
    if out["answers"]:
        iv = nps_interval(float(row["promoters"]), float(row["passives"]), float(row["detractors"]))
        out["pnps"] = round(100 * iv.value, 1)
        out["pnps_low"], out["pnps_high"] = round(100 * iv.low, 1), round(100 * iv.high, 1)
    for item, (label, _low, _high) in ITEMS.items():
        n = int(row[f"{item}_n"] or 0)
        if not n:
            continue
        mean = float(row[f"{item}_mean"])
        sd = row[f"{item}_sd"]
        iv2 = engagement_interval(mean, None if sd is None else float(sd), n)
        out["items"].append(
            {"item": item, "label": label, "mean": round(mean, 2), "n": n,
             "low": None if iv2 is None else round(iv2[0], 2),
             "high": None if iv2 is None else round(iv2[1], 2)}
        )  # fmt: skip
    out["comments"] = comments
    if out["months_withheld"]:
        out["note"] = (f"{out['months_withheld']} month(s) with fewer than {minimum} "
                       "respondents are left out")  # fmt: skip
    return out


def contact_rows(contacts: Sequence[Contact]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "partner": c.partner_key, "name": c.name, "email": c.email, "role": c.role}
        for c in contacts
    ]
