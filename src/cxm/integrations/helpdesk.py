"""Helpdesk history in one command: Zendesk, Freshdesk and Intercom exports as interactions
(``ticket_opened`` / ``ticket_closed``) and their satisfaction ratings as ``support_csat``
responses, so a support team's past arrives with its CSAT and feeds journeys, signals and
metrics like tickets logged live.

Formats read (each vendor's documented REST API objects, saved as a file; one object per line
(JSON Lines) or the API's list envelope):

- **Zendesk** tickets (Tickets API / incremental export / full JSON export): ``id``,
  ``created_at``, ``status``, ``via.channel``, ``requester_id`` (emails from a sideloaded
  ``users`` list or a ``requester`` object), ``satisfaction_rating.score`` good | bad with
  ``comment``; solved time from ``solved_at`` or ``metric_set.solved_at``; first reply from
  ``metric_set.reply_time_in_minutes.calendar``.
  https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
- **Freshdesk** tickets (API v2 with ``include=requester,stats``): numeric ``status``
  (4 resolved, 5 closed) and ``source`` (1 email, 2 portal, 3 phone, 7 chat, ...),
  ``stats.resolved_at``/``closed_at``/``first_responded_at``; ratings either embedded as
  ``satisfaction_rating`` or given as the Satisfaction Ratings API list (``ticket_id``,
  ``ratings.default_question`` on Freshdesk's scale 103 ... -103, ``feedback``).
  https://developers.freshdesk.com/api/#tickets
- **Intercom** conversations (Conversations API): unix-second ``created_at``, ``state``,
  ``source.type``/``source.author.email``, ``contacts.contacts[].external_id``,
  ``conversation_rating.rating`` 1-5 with ``remark``, ``statistics.last_close_at`` and
  ``statistics.first_admin_reply_at``.
  https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations

Ratings onto cxm's CSAT (1-5, top-two-box): Zendesk good -> 5 and bad -> 1, so cxm's CSAT
equals Zendesk's satisfaction score (good / (good + bad)); Freshdesk's happy answers (103, 102,
101) -> 5, 5, 4, neutral (100) -> 3, unhappy (-101, -102, -103) -> 2, 1, 1, so CSAT equals
Freshdesk's share of positive ratings; Intercom's 1-5 stars as they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.interactions import importer as interactions_import
from cxm.surveys import importer as responses_import
from cxm.surveys import service as surveys

SURVEY = "support_csat"
SYSTEMS = ("zendesk", "freshdesk", "intercom")
# A channel as each vendor names it -> the touchpoint it lands on (overridable per import).
CHANNEL_TOUCHPOINTS = {
    "phone": "support_phone",
    "voice": "support_phone",
    "chat": "support_chat",
    "messaging": "support_chat",
    "email": "support_email",
    "web": "support_web",
    "portal": "support_web",
    "social": "support_social",
}
_ZENDESK_CHANNELS = {
    "voice": "phone", "chat": "chat", "native_messaging": "messaging", "email": "email",
    "web": "web", "api": "web", "mobile_sdk": "messaging", "facebook": "social",
    "twitter": "social", "whatsapp": "messaging",
}  # fmt: skip
_FRESHDESK_SOURCES = {1: "email", 2: "portal", 3: "phone", 7: "chat", 9: "web", 10: "email"}
_FRESHDESK_STATUS = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
_FRESHDESK_RATING = {103: 5, 102: 5, 101: 4, 100: 3, -101: 2, -102: 1, -103: 1}
_INTERCOM_CHANNELS = {
    "conversation": "chat", "email": "email", "phone_call": "phone", "push": "messaging",
    "twitter": "social", "facebook": "social", "whatsapp": "messaging", "instagram": "social",
    "sms": "messaging",
}  # fmt: skip


@dataclass
class Ticket:
    """One helpdesk ticket or conversation, vendor-neutral."""

    system: str
    ticket_id: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None = None
    resolved: bool | None = None
    status: str | None = None
    channel: str | None = None
    email: str | None = None
    person_id: str | None = None  # the requester's id in the helpdesk
    subject: str | None = None
    priority: str | None = None
    agent: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    first_reply_minutes: float | None = None
    csat: int | None = None  # 1..5
    csat_comment: str | None = None
    rated_at: dt.datetime | None = None


@dataclass
class HelpdeskSummary:
    tickets: int = 0
    rejected: int = 0
    events: interactions_import.ImportSummary | None = None
    ratings: responses_import.ImportSummary | None = None
    rejects_file: Path | None = None
    channels: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        events = self.events.line() if self.events else "no events"
        rated = self.ratings.imported + self.ratings.already_present if self.ratings else 0
        new = self.ratings.imported if self.ratings else 0
        text = (
            f"{self.tickets} tickets ({self.rejected} rejected); events: {events}; "
            f"{rated} CSAT ratings ({new} new) as {SURVEY} responses"
        )
        return text + (f"; see {self.rejects_file}" if self.rejects_file else "")


def _time(value: Any, what: str) -> dt.datetime | None:
    """ISO 8601 text or unix seconds -> aware UTC; None stays None; ValueError names ``what``."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise ValueError(f"{what} {value!r} is neither a time nor unix seconds")


def _records(path: Path, envelope: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The objects of a JSON / JSON Lines file (optionally gzipped), and the envelope's other
    top-level lists (sideloads such as Zendesk's ``users``)."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {path}: {exc}") from exc
    stripped = text.lstrip()
    if not stripped:
        raise Invalid(f"{path} is empty")
    try:
        if stripped.startswith("[") or (
            stripped.startswith("{") and "\n{" not in stripped.rstrip()
        ):
            doc = json.loads(text)
        else:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"{path}: line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg}); export the "
            "API's JSON or JSON Lines"
        ) from None
    if isinstance(doc, list):
        return [d for d in doc if isinstance(d, dict)], {}
    if isinstance(doc, dict):
        for key in envelope:
            if isinstance(doc.get(key), list):
                return doc[key], doc
        if "id" in doc:
            return [doc], {}
    raise Invalid(f"{path}: expected a list of objects or an object with {' or '.join(envelope)}")


def _opened(item: dict[str, Any]) -> dt.datetime:
    """When a ticket or conversation was opened; ValueError when it has no id or no time."""
    if item.get("id") is None:
        raise ValueError("no id")
    opened = _time(item.get("created_at"), "created_at")
    if opened is None:
        raise ValueError("no created_at")
    return opened


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def read_zendesk(path: Path) -> tuple[list[Ticket], list[tuple[str, str]]]:
    """Tickets from a Zendesk export; the second list names each refused ticket and why."""
    items, envelope = _records(path, ("tickets", "results"))
    emails = {
        str(u.get("id")): u.get("email") for u in envelope.get("users") or [] if isinstance(u, dict)
    }
    out: list[Ticket] = []
    bad: list[tuple[str, str]] = []
    for n, t in enumerate(items, start=1):
        where = f"ticket {t.get('id', f'#{n}')}"
        try:
            opened = _opened(t)
            status = _text(t.get("status"))
            solved = _time(t.get("solved_at") or _dig(t, "metric_set", "solved_at"), "solved_at")
            if solved is None and status in ("solved", "closed"):
                solved = _time(t.get("updated_at"), "updated_at")
            rating = t.get("satisfaction_rating") or {}
            score = rating.get("score") if isinstance(rating, dict) else None
            requester = str(t.get("requester_id")) if t.get("requester_id") is not None else None
            via = _text(_dig(t, "via", "channel"))
            out.append(
                Ticket(
                    system="zendesk",
                    ticket_id=str(t["id"]),
                    opened_at=opened,
                    closed_at=solved,
                    resolved=True if status in ("solved", "closed") else None,
                    status=status,
                    channel=_ZENDESK_CHANNELS.get(via or "", via),
                    email=_text(_dig(t, "requester", "email")) or emails.get(requester or ""),
                    person_id=requester,
                    subject=_text(t.get("subject")),
                    priority=_text(t.get("priority")),
                    agent=_text(t.get("assignee_id")),
                    group=_text(t.get("group_id")),
                    tags=[str(x) for x in t.get("tags") or []],
                    first_reply_minutes=_dig(t, "metric_set", "reply_time_in_minutes", "calendar"),
                    csat={"good": 5, "bad": 1}.get(str(score)),
                    csat_comment=_text(rating.get("comment")) if isinstance(rating, dict) else None,
                    rated_at=_time(rating.get("updated_at"), "satisfaction_rating.updated_at")
                    if isinstance(rating, dict)
                    else None,
                )
            )
        except (ValueError, TypeError) as exc:
            bad.append((where, str(exc)))
    return out, bad


def read_freshdesk(
    path: Path, ratings: Path | None = None
) -> tuple[list[Ticket], list[tuple[str, str]]]:
    """Tickets from Freshdesk's API v2; ``ratings`` is an optional Satisfaction Ratings file."""
    items, _ = _records(path, ("tickets", "results"))
    by_ticket: dict[str, dict[str, Any]] = {}
    if ratings is not None:
        for r in _records(ratings, ("satisfaction_ratings", "results"))[0]:
            by_ticket[str(r.get("ticket_id"))] = r
    out: list[Ticket] = []
    bad: list[tuple[str, str]] = []
    for n, t in enumerate(items, start=1):
        where = f"ticket {t.get('id', f'#{n}')}"
        try:
            opened = _opened(t)
            status = _FRESHDESK_STATUS.get(t.get("status"), _text(t.get("status")))  # type: ignore[arg-type]
            stats = t.get("stats") or {}
            closed = _time(stats.get("resolved_at") or stats.get("closed_at"), "resolved_at")
            replied = _time(stats.get("first_responded_at"), "first_responded_at")
            rating = by_ticket.get(str(t["id"])) or t.get("satisfaction_rating") or {}
            answer = _dig(rating, "ratings", "default_question")
            if answer is not None and answer not in _FRESHDESK_RATING:
                raise ValueError(
                    f"rating {answer!r} is not on Freshdesk's scale (103, 102, 101, 100, -101, "
                    "-102, -103)"
                )
            out.append(
                Ticket(
                    system="freshdesk",
                    ticket_id=str(t["id"]),
                    opened_at=opened,
                    closed_at=closed,
                    resolved=True if status in ("resolved", "closed") else None,
                    status=status,
                    channel=_FRESHDESK_SOURCES.get(t.get("source")),  # type: ignore[arg-type]
                    email=_text(_dig(t, "requester", "email")) or _text(t.get("email")),
                    person_id=_text(t.get("requester_id")),
                    subject=_text(t.get("subject")),
                    priority={1: "low", 2: "medium", 3: "high", 4: "urgent"}.get(
                        t.get("priority")  # type: ignore[arg-type]
                    ),
                    agent=_text(t.get("responder_id")),
                    group=_text(t.get("group_id")),
                    tags=[str(x) for x in t.get("tags") or []],
                    first_reply_minutes=(replied - opened).total_seconds() / 60
                    if replied
                    else None,
                    csat=_FRESHDESK_RATING.get(answer) if answer is not None else None,
                    csat_comment=_text(rating.get("feedback")),
                    rated_at=_time(rating.get("created_at"), "rating created_at"),
                )
            )
        except (ValueError, TypeError) as exc:
            bad.append((where, str(exc)))
    return out, bad


def read_intercom(path: Path) -> tuple[list[Ticket], list[tuple[str, str]]]:
    """Conversations from Intercom's Conversations API."""
    items, _ = _records(path, ("conversations", "data"))
    out: list[Ticket] = []
    bad: list[tuple[str, str]] = []
    for n, c in enumerate(items, start=1):
        where = f"conversation {c.get('id', f'#{n}')}"
        try:
            opened = _opened(c)
            state = _text(c.get("state"))
            closed = _time(_dig(c, "statistics", "last_close_at"), "statistics.last_close_at")
            replied = _time(
                _dig(c, "statistics", "first_admin_reply_at"), "statistics.first_admin_reply_at"
            )
            rating = c.get("conversation_rating") or {}
            stars = rating.get("rating")
            if stars is not None and stars not in (1, 2, 3, 4, 5):
                raise ValueError(f"conversation_rating.rating {stars!r} is not 1 to 5")
            contacts = _dig(c, "contacts", "contacts") or []
            contact = contacts[0] if contacts else {}
            source = _text(_dig(c, "source", "type"))
            out.append(
                Ticket(
                    system="intercom",
                    ticket_id=str(c["id"]),
                    opened_at=opened,
                    closed_at=closed if state == "closed" else None,
                    resolved=True if state == "closed" else None,
                    status=state,
                    channel=_INTERCOM_CHANNELS.get(source or "", source),
                    email=_text(_dig(c, "source", "author", "email"))
                    or _text(contact.get("email")),
                    person_id=_text(contact.get("external_id")) or _text(contact.get("id")),
                    subject=_text(_dig(c, "source", "subject")),
                    priority=_text(c.get("priority")),
                    agent=_text(c.get("admin_assignee_id")),
                    group=_text(c.get("team_assignee_id")),
                    tags=[str(x.get("name")) for x in _dig(c, "tags", "tags") or []],
                    first_reply_minutes=(replied - opened).total_seconds() / 60
                    if replied
                    else None,
                    csat=int(stars) if stars is not None else None,
                    csat_comment=_text(rating.get("remark")),
                    rated_at=_time(rating.get("created_at"), "conversation_rating.created_at"),
                )
            )
        except (ValueError, TypeError) as exc:
            bad.append((where, str(exc)))
    return out, bad


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _touchpoint(ticket: Ticket, override: str | None) -> str:
    return override or CHANNEL_TOUCHPOINTS.get(ticket.channel or "", "support_email")


def events(tickets: Iterable[Ticket], touchpoint: str | None = None) -> Iterator[dict[str, Any]]:
    """Interaction events (cxm's import layout) of the tickets: one ``ticket_opened`` each and
    a ``ticket_closed`` for each closed one. Event ids are stable, so a re-import adds nothing.
    """
    for t in tickets:
        ident: dict[str, Any] = {}
        if t.email:
            ident["email"] = t.email
        if t.person_id:
            ident[f"{t.system}_id"] = t.person_id
        common = {"ticket_id": f"{t.system}:{t.ticket_id}", "source_system": t.system}
        opened = common | {
            k: v
            for k, v in {
                "subject": t.subject,
                "priority": t.priority,
                "agent_id": t.agent,
                "group": t.group,
                "tags": t.tags or None,
                "helpdesk_channel": t.channel,
            }.items()
            if v is not None
        }
        base = {"type": "track", "touchpoint": _touchpoint(t, touchpoint), "channel": t.channel}
        yield (
            base
            | ident
            | {
                "event_id": f"{t.system}:{t.ticket_id}:opened",
                "name": "ticket_opened",
                "timestamp": _iso(t.opened_at),
                "properties": opened,
            }
        )
        if t.closed_at is not None:
            closed: dict[str, Any] = common | {"resolved": bool(t.resolved), "status": t.status}
            if t.first_reply_minutes is not None:
                closed["wait_minutes"] = round(float(t.first_reply_minutes), 1)
            closed["handle_minutes"] = round((t.closed_at - t.opened_at).total_seconds() / 60, 1)
            if t.agent:
                closed["agent_id"] = t.agent
            yield (
                base
                | ident
                | {
                    "event_id": f"{t.system}:{t.ticket_id}:closed",
                    "name": "ticket_closed",
                    "timestamp": _iso(t.closed_at),
                    "properties": closed,
                }
            )


READERS: dict[str, Callable[..., tuple[list[Ticket], list[tuple[str, str]]]]] = {
    "zendesk": read_zendesk,
    "freshdesk": read_freshdesk,
    "intercom": read_intercom,
}


def _ensure_survey(engine: Engine) -> None:
    from cxm.yamldoc import read

    with engine.begin() as conn:
        if SURVEY not in {s.key for s in surveys.list_surveys(conn)}:
            surveys.apply_definition(conn, read(surveys.TEMPLATES / f"{SURVEY}.yaml"))


def import_helpdesk(
    engine: Engine,
    path: Path,
    system: str,
    *,
    ratings: Path | None = None,
    touchpoint: str | None = None,
) -> HelpdeskSummary:
    """Import a helpdesk export: tickets as interactions, ratings as ``support_csat`` answers.

    Refused tickets (no id, an unreadable time, a rating off the vendor's scale) are written
    with their reason to ``<input stem>.rejects.csv``; everything else is stored. Re-running
    the same file stores nothing twice (stable event and response ids).

    Raises Invalid for an unknown system or a file that is not the vendor's JSON.
    """
    if system not in READERS:
        raise Invalid(f"unknown helpdesk '{system}'; use {', '.join(SYSTEMS)}")
    if ratings is not None and system != "freshdesk":
        raise Invalid("--ratings is for Freshdesk's separate satisfaction ratings file only")
    reader = READERS[system]
    tickets, bad = reader(path, ratings) if system == "freshdesk" else reader(path)
    summary = HelpdeskSummary(tickets=len(tickets) + len(bad), rejected=len(bad))
    for t in tickets:
        key = _touchpoint(t, touchpoint)
        summary.channels[key] = summary.channels.get(key, 0) + 1
    with tempfile.TemporaryDirectory(prefix="cxm-helpdesk-") as tmp:
        log = Path(tmp) / "events.jsonl"
        with log.open("w", encoding="utf-8") as out:
            for event in events(tickets, touchpoint):
                out.write(json.dumps(event) + "\n")
        if tickets:
            summary.events = interactions_import.import_file(engine, log)
        rated = [t for t in tickets if t.csat is not None]
        if rated:
            _ensure_survey(engine)
            answers = Path(tmp) / "ratings.csv"
            kinds = sorted({f"{t.system}_id" for t in rated if t.person_id})
            with answers.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(
                    ["response_id", "submitted_at", "touchpoint", "trigger_event_id", "channel",
                     "email", *kinds, "csat", "what_wrong", "agent"]
                )  # fmt: skip
                for t in rated:
                    when = t.rated_at or t.closed_at or t.opened_at
                    closed = t.closed_at is not None
                    writer.writerow(
                        [
                            f"{t.system}-csat-{t.ticket_id}",
                            _iso(when),
                            _touchpoint(t, touchpoint),
                            f"{t.system}:{t.ticket_id}:{'closed' if closed else 'opened'}",
                            "import",
                            t.email or "",
                            *[t.person_id if k == f"{t.system}_id" else "" for k in kinds],
                            t.csat,
                            t.csat_comment or "",
                            t.agent or "",
                        ]
                    )
            mapping = responses_import.Mapping(
                identifiers={"email": "email"} | {k: k for k in kinds}
            )
            rejects = Path(tmp) / "ratings.rejects.csv"
            with engine.begin() as conn:
                summary.ratings = responses_import.import_responses(
                    conn, answers, survey=SURVEY, mapping=mapping, rejects=rejects
                )
            if rejects.exists():
                with rejects.open(newline="", encoding="utf-8") as handle:
                    for row in csv.DictReader(handle):
                        bad.append((f"rating {row.get('response_id', '?')}", row.get("error", "")))
        if summary.events and summary.events.rejects_file:
            with summary.events.rejects_file.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    bad.append((f"event {row.get('event_id')}", row.get("reason", "")))
            summary.events.rejects_file = None
    target = path.with_name(f"{path.name.split('.')[0]}.rejects.csv")
    if bad:
        with target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["item", "reason"])
            writer.writerows(bad)
        summary.rejects_file = target
    elif target.exists():
        target.unlink()
    return summary
