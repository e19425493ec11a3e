"""Survey logic: versioned definitions, invitations and links, and responses saved as they come."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.errors import Conflict, CxmError, Invalid, NotFound
from cxm.org import service as org
from cxm.store import utcnow
from cxm.surveys import people, suppressions
from cxm.surveys.schemas import SurveyDefinition, check, parse_score, visible
from cxm.surveys.tables import (
    contact_rules,
    invitations,
    response_answers,
    responses,
    survey_versions,
    surveys,
    trigger_rules,
)
from cxm.surveys.writer import deferred
from cxm.yamldoc import YamlDoc, read, validate

TEMPLATES = Path(__file__).parent / "templates"
SCORE_TYPES = ("nps", "csat", "ces")


class Expired(CxmError):
    """An invitation past its expiry date."""

    status_code = 410


# ---- definitions ----


@dataclass(frozen=True)
class ApplyResult:
    key: str
    version: int
    status: str  # created | updated | unchanged


@dataclass(frozen=True)
class SurveySummary:
    key: str
    title: str
    kind: str
    version: int
    languages: list[str]
    questions: int
    triggers: int
    updated_at: datetime
    name: str = ""  # the staff-facing name: the definition's ``name``, else its title


def validate_definition(doc: YamlDoc) -> SurveyDefinition:
    """The definition in ``doc``, or Invalid listing every problem with its line and path."""
    defn = validate(doc, SurveyDefinition)
    problems = check(defn)
    if problems:
        raise Invalid("; ".join(f"{doc.where(path)}: {msg}" for path, msg in problems))
    return defn


def _canonical(defn: SurveyDefinition) -> dict[str, Any]:
    return defn.model_dump(mode="json", exclude_defaults=False)


def apply_definition(conn: Connection, doc: YamlDoc, now: datetime | None = None) -> ApplyResult:
    """Publish the survey in ``doc``: a new version when it changed, nothing when it did not."""
    defn = validate_definition(doc)
    now = now or utcnow()
    data = _canonical(defn)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    current = conn.execute(sa.select(surveys).where(surveys.c.key == defn.key)).mappings().first()
    if current is not None:
        latest = conn.execute(
            sa.select(survey_versions.c.digest).where(
                survey_versions.c.survey_key == defn.key,
                survey_versions.c.version == current["current_version"],
            )
        ).scalar()
        if latest == digest:
            return ApplyResult(defn.key, current["current_version"], "unchanged")
    version = 1 if current is None else current["current_version"] + 1
    conn.execute(
        survey_versions.insert().values(
            survey_key=defn.key, version=version, definition=data, digest=digest, published_at=now
        )
    )
    title = defn.title[defn.default_language]
    if current is None:
        conn.execute(
            surveys.insert().values(
                key=defn.key, title=title, kind=defn.kind, current_version=version,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    else:
        conn.execute(
            surveys.update()
            .where(surveys.c.key == defn.key)
            .values(title=title, kind=defn.kind, current_version=version, updated_at=now)
        )
    # Trigger rules follow the published definition; ids are stable so dedupe keys hold.
    conn.execute(trigger_rules.delete().where(trigger_rules.c.survey_key == defn.key))
    if defn.triggers:
        conn.execute(
            trigger_rules.insert(),
            [
                {
                    "id": f"{defn.key[:28]}:{i}",
                    "survey_key": defn.key,
                    "event": t.event,
                    "touchpoint_key": t.touchpoint,
                    "filters": dict(t.where),
                    "delay_seconds": t.delay_seconds(),
                    "channel": t.channel,
                    "sample_rate": t.sample,
                }
                for i, t in enumerate(defn.triggers)
            ],
        )
    return ApplyResult(defn.key, version, "created" if current is None else "updated")


def apply_data(conn: Connection, data: Any, source: str = "request body") -> ApplyResult:
    """Publish a definition given as parsed JSON (the API and the web editor)."""
    return apply_definition(conn, YamlDoc(data, source))


def _unknown_survey(conn: Connection, key: str) -> NotFound:
    known = ", ".join(conn.execute(sa.select(surveys.c.key)).scalars()) or "none"
    return NotFound(f"survey '{key}' does not exist; known: {known}")


def get_definition(conn: Connection, key: str, version: int | None = None) -> SurveyDefinition:
    if version is None:
        version = conn.execute(
            sa.select(surveys.c.current_version).where(surveys.c.key == key)
        ).scalar()
        if version is None:
            raise _unknown_survey(conn, key)
    data = conn.execute(
        sa.select(survey_versions.c.definition).where(
            survey_versions.c.survey_key == key, survey_versions.c.version == version
        )
    ).scalar()
    if data is None:
        raise NotFound(f"survey '{key}' has no version {version}")
    return SurveyDefinition.model_validate(data)


# Published versions never change (a changed definition is a new version), so a version's
# parsed definition is kept per process. The digest is part of the key: another store (another
# database, or a test's fresh one) holding a different definition under the same survey key and
# version number has another digest, so it never gets this one's definition.
DEFINITION_CACHE = 256  # parsed definitions kept, least recently used dropped first
_definitions: OrderedDict[tuple[str, int, str], SurveyDefinition] = OrderedDict()
_definitions_lock = threading.Lock()


def published_definition(
    conn: Connection, key: str, version: int, digest: str | None = None
) -> SurveyDefinition:
    """Version ``version`` of survey ``key``, parsed once per process and shared: read it,
    never change it (``get_definition`` gives a private copy to edit).

    ``digest`` is the version's ``survey_versions.digest`` when the caller already read it (no
    statement then, once cached); NotFound when the survey has no such version.
    """
    if digest is not None:
        with _definitions_lock:
            found = _definitions.get((key, version, digest))
            if found is not None:
                _definitions.move_to_end((key, version, digest))
                return found
    row = conn.execute(
        sa.select(survey_versions.c.definition, survey_versions.c.digest).where(
            survey_versions.c.survey_key == key, survey_versions.c.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"survey '{key}' has no version {version}")
    cached = (key, version, row.digest)
    with _definitions_lock:
        found = _definitions.get(cached)
    if found is not None:
        return found
    defn = SurveyDefinition.model_validate(row.definition)
    with _definitions_lock:
        _definitions[cached] = defn
        while len(_definitions) > DEFINITION_CACHE:
            _definitions.popitem(last=False)
    return defn


def current_definition(conn: Connection, key: str) -> tuple[int, SurveyDefinition]:
    """The current version of survey ``key`` and its definition (shared, as
    ``published_definition``); NotFound naming the known surveys when there is no such survey.

    In the answer writer's shared transaction the version is read once for all its steps: no
    step publishes, so every step would read the same."""
    pending = deferred(conn)
    memo = ("current survey version", key)
    found: tuple[int, str | None] | None = pending.memo.get(memo) if pending else None
    if found is None:
        row = conn.execute(
            sa.select(surveys.c.current_version, survey_versions.c.digest)
            .select_from(surveys.outerjoin(survey_versions, sa.and_(
                survey_versions.c.survey_key == surveys.c.key,
                survey_versions.c.version == surveys.c.current_version,
            )))
            .where(surveys.c.key == key)
        ).first()  # fmt: skip
        if row is None:
            raise _unknown_survey(conn, key)
        found = int(row.current_version), row.digest
        if pending is not None:
            pending.memo[memo] = found
    version, digest = found
    return version, published_definition(conn, key, version, digest)


def current_version(conn: Connection, key: str) -> int:
    version = conn.execute(
        sa.select(surveys.c.current_version).where(surveys.c.key == key)
    ).scalar()
    if version is None:
        raise NotFound(f"survey '{key}' does not exist")
    return int(version)


def export_definition(conn: Connection, key: str) -> dict[str, Any]:
    """The current definition as a document 'apply' reads back unchanged."""
    defn = get_definition(conn, key)
    return defn.model_dump(mode="json", exclude_defaults=True, exclude_none=True) | {
        "key": defn.key
    }


def list_surveys(conn: Connection) -> list[SurveySummary]:
    rows = conn.execute(
        sa.select(surveys, survey_versions.c.definition)
        .join(
            survey_versions,
            sa.and_(
                survey_versions.c.survey_key == surveys.c.key,
                survey_versions.c.version == surveys.c.current_version,
            ),
        )
        .order_by(surveys.c.key)
    ).mappings()
    out = []
    for r in rows:
        d = r["definition"]
        out.append(
            SurveySummary(
                r["key"], r["title"], r["kind"], r["current_version"], list(d["languages"]),
                len(d["questions"]), len(d.get("triggers") or []), r["updated_at"],
                d.get("name") or r["title"],
            )
        )  # fmt: skip
    return out


def template_paths() -> list[Path]:
    """The ready-made survey templates shipped with cxm."""
    return sorted(TEMPLATES.glob("*.yaml"))


def apply_templates(conn: Connection) -> list[ApplyResult]:
    return [apply_definition(conn, read(p)) for p in template_paths()]


# ---- links ----


def invitation_link(base_url: str, token: str, language: str | None = None) -> str:
    suffix = f"?{urlencode({'lang': language})}" if language else ""
    return f"{base_url.rstrip('/')}/s/{token}{suffix}"


def open_link(base_url: str, key: str, channel: str = "web", language: str | None = None) -> str:
    params = {"channel": channel} | ({"lang": language} if language else {})
    return f"{base_url.rstrip('/')}/s/open/{quote(key)}?{urlencode(params)}"


def embed_snippet(base_url: str, key: str, channel: str = "web", height: int = 520) -> str:
    """An iframe to paste into a web page or app web view."""
    src = escape(open_link(base_url, key, channel), quote=True)
    return (
        f'<iframe src="{src}" title="{escape(key, quote=True)} survey" loading="lazy" '
        f'style="width:100%;max-width:640px;height:{height}px;border:0"></iframe>'
    )


# ---- invitations ----


@dataclass(frozen=True)
class Invitation:
    id: str
    token: str | None
    survey_key: str
    customer_id: str | None
    channel: str
    status: str
    reason: str | None
    expires_at: datetime | None


def create_invitation(
    conn: Connection, survey_key: str, *, customer_id: str | None = None, channel: str = "link",
    language: str | None = None, touchpoint: str | None = None,
    trigger_event_id: str | None = None, trigger_rule_id: str | None = None,
    hidden: dict[str, Any] | None = None, now: datetime | None = None,
) -> Invitation:  # fmt: skip
    """A personal invitation with an unguessable token (256 bits), valid until it expires."""
    defn = get_definition(conn, survey_key)
    now = now or utcnow()
    if language is not None and language not in defn.languages:
        raise Invalid(
            f"language '{language}' is not offered by survey '{survey_key}'; "
            f"offered: {', '.join(defn.languages)}"
        )
    inv = Invitation(
        secrets.token_hex(16), secrets.token_urlsafe(32), survey_key, customer_id, channel,
        "created", None, now + timedelta(days=defn.expires_days),
    )  # fmt: skip
    conn.execute(
        invitations.insert().values(
            id=inv.id, token=inv.token, survey_key=survey_key, customer_id=customer_id,
            channel=channel, language=language, touchpoint_key=touchpoint,
            trigger_event_id=trigger_event_id, trigger_rule_id=trigger_rule_id,
            hidden=hidden or {}, status="created", reason=None, response_id=None,
            created_at=now, sent_at=None, opened_at=None, expires_at=inv.expires_at,
        )
    )  # fmt: skip
    return inv


def mark_sent(conn: Connection, invitation_id: str, now: datetime | None = None) -> None:
    """Record that an invitation was handed to its channel (for senders outside this domain)."""
    conn.execute(
        invitations.update()
        .where(invitations.c.id == invitation_id, invitations.c.status == "created")
        .values(status="sent", sent_at=now or utcnow())
    )


def record_suppressed(
    conn: Connection, survey_key: str, reason: str, *, customer_id: str | None,
    channel: str, touchpoint: str | None = None, trigger_event_id: str | None = None,
    trigger_rule_id: str | None = None, now: datetime | None = None,
) -> Invitation:  # fmt: skip
    """Record an invitation that was held back, with why, so response rates stay honest."""
    inv = Invitation(
        secrets.token_hex(16), None, survey_key, customer_id, channel, "suppressed", reason, None
    )
    conn.execute(
        invitations.insert().values(
            id=inv.id, token=None, survey_key=survey_key, customer_id=customer_id,
            channel=channel, language=None, touchpoint_key=touchpoint,
            trigger_event_id=trigger_event_id, trigger_rule_id=trigger_rule_id, hidden={},
            status="suppressed", reason=reason, response_id=None, created_at=now or utcnow(),
            sent_at=None, opened_at=None, expires_at=None,
        )
    )  # fmt: skip
    return inv


def personal_link(
    conn: Connection, base_url: str, survey_key: str, identifier: str,
    language: str | None = None, channel: str = "link",
) -> str:  # fmt: skip
    """Create an invitation for the customer ``identifier`` and return its link."""
    customer_id = people.find(conn, identifier)
    if customer_id is None:
        raise NotFound(f"no customer matches '{identifier}'; give an email, phone or kind:value")
    if is_unsubscribed(conn, customer_id) or people.erased(conn, customer_id):
        raise Conflict(f"customer '{identifier}' has unsubscribed or been erased; no survey link")
    inv = create_invitation(
        conn, survey_key, customer_id=customer_id, channel=channel, language=language
    )
    assert inv.token is not None
    return invitation_link(base_url, inv.token)


# ---- unsubscribes and contact rules ----


def unsubscribe(
    conn: Connection, customer_id: str, source: str, now: datetime | None = None
) -> None:
    """No survey reaches this customer again, on any channel (the suppression ledger)."""
    suppressions.unsubscribe(conn, customer_id, source, now)


def is_unsubscribed(conn: Connection, customer_id: str) -> bool:
    return suppressions.is_unsubscribed(conn, customer_id)


@dataclass(frozen=True)
class ContactRule:
    scope: str  # all | relationship | transactional | employee
    min_days: int
    quiet_start_hour: int | None = None
    quiet_end_hour: int | None = None


DEFAULT_RULE = ContactRule("all", 14, 21, 8)
SCOPES = ("all", "relationship", "transactional", "employee")


def contact_rules_list(conn: Connection) -> list[ContactRule]:
    rows = {r.scope: r for r in conn.execute(sa.select(contact_rules))}
    out = [
        ContactRule(r.scope, r.min_days, r.quiet_start_hour, r.quiet_end_hour)
        for r in rows.values()
    ]
    if "all" not in rows:
        out.append(DEFAULT_RULE)
    return sorted(out, key=lambda r: SCOPES.index(r.scope))


def set_contact_rule(conn: Connection, rule: ContactRule) -> ContactRule:
    if rule.scope not in SCOPES:
        raise Invalid(f"scope '{rule.scope}' is not one of {', '.join(SCOPES)}")
    if rule.min_days < 0 or rule.min_days > 365:
        raise Invalid("min_days must be between 0 and 365")
    hours = (rule.quiet_start_hour, rule.quiet_end_hour)
    if (hours[0] is None) != (hours[1] is None):
        raise Invalid("give both quiet_start_hour and quiet_end_hour, or neither")
    if any(h is not None and not 0 <= h <= 23 for h in hours):
        raise Invalid("quiet hours are whole hours from 0 to 23")
    conn.execute(contact_rules.delete().where(contact_rules.c.scope == rule.scope))
    conn.execute(contact_rules.insert().values(**rule.__dict__))
    return rule


# ---- responses ----


@dataclass
class Session:
    """One respondent filling one survey: what the page needs to show the next question."""

    defn: SurveyDefinition
    version: int
    channel: str
    response_id: str | None = None
    invitation_id: str | None = None
    customer_id: str | None = None
    touchpoint: str | None = None
    trigger_event_id: str | None = None
    language: str | None = None
    hidden: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    completed: bool = False
    # When this request first opened the invitation, until that is written (``record_open``,
    # or with the invitation's link to a new response in ``save_answer``).
    opening: datetime | None = None

    def next_question(self) -> Any:
        for q in self.defn.questions:
            if q.id not in self.seen and visible(q, self.answers):
                return q
        return None

    def progress(self) -> tuple[int, int]:
        shown = [q for q in self.defn.questions if visible(q, self.answers)]
        return len([q for q in shown if q.id in self.seen]), len(shown)


def _load_answers(conn: Connection, session: Session) -> None:
    if session.response_id is None:
        return
    pending = deferred(conn)
    memo = ("answers of response", session.response_id)
    if pending is not None and memo in pending.memo:
        rows = pending.memo.pop(memo)
    else:
        rows = conn.execute(
            sa.select(response_answers)
            .where(response_answers.c.response_id == session.response_id)
        ).mappings().all()  # fmt: skip
    for r in rows:
        session.seen.add(r["question_id"])
        q = session.defn.question(r["question_id"])
        if q is None:
            continue
        if r["value_number"] is not None:
            session.answers[q.id] = int(r["value_number"])
        elif q.type == "multiple_choice" and r["value_list"] is not None:
            session.answers[q.id] = list(r["value_list"])
        elif r["value_text"] is not None:
            session.answers[q.id] = r["value_text"]


def read_invitations(conn: Connection, tokens: list[str], memo: dict[Hashable, Any]) -> None:
    """Read what ``session_for_token`` reads for each of ``tokens`` (the invitation, the
    response it began, that response's answers), one statement each for them all, into
    ``memo`` (the answer writer's read ahead: ``cxm.surveys.writer``), where
    ``session_for_token`` in the same transaction takes it from. The same statement reads the
    current version of each invitation's survey (``current_definition``'s read, one fewer
    statement in every transaction that starts responses)."""
    current = surveys.c.current_version.label("_current_version")
    digest = survey_versions.c.digest.label("_current_digest")
    rows = conn.execute(
        sa.select(invitations, current, digest)
        .select_from(invitations.outerjoin(surveys, surveys.c.key == invitations.c.survey_key)
                     .outerjoin(survey_versions, sa.and_(
                         survey_versions.c.survey_key == surveys.c.key,
                         survey_versions.c.version == surveys.c.current_version)))
        .where(invitations.c.token.in_(tokens))
    ).mappings().all()  # fmt: skip
    found = {r["token"]: r for r in rows}
    for token in tokens:
        memo["invitation by token", token] = found.get(token)
    for r in rows:
        if r["_current_version"] is not None:
            memo["current survey version", r["survey_key"]] = (
                int(r["_current_version"]), r["_current_digest"])  # fmt: skip
    begun = [r["response_id"] for r in rows if r["response_id"]]
    if not begun:
        return
    for response in conn.execute(_responses_of_invitations(responses.c.id.in_(begun))).all():
        memo["response of invitation", response.id] = response
    answers: dict[str, list[Any]] = {rid: [] for rid in begun}
    for a in conn.execute(
        sa.select(response_answers).where(response_answers.c.response_id.in_(begun))
    ).mappings():
        answers[a["response_id"]].append(a)
    for rid, rows in answers.items():
        memo["answers of response", rid] = rows


def _responses_of_invitations(where: Any) -> Any:
    """What ``session_for_token`` needs of a response begun: its version (with that version's
    digest, so its parsed definition comes from the cache), completion and language."""
    return (
        sa.select(responses.c.id, responses.c.survey_version, responses.c.completed,
                  responses.c.language, survey_versions.c.digest)
        .select_from(responses.outerjoin(survey_versions, sa.and_(
            survey_versions.c.survey_key == responses.c.survey_key,
            survey_versions.c.version == responses.c.survey_version)))
        .where(where)
    )  # fmt: skip


def _read(conn: Connection, memo_key: tuple[str, str], query: Any, *, mappings: bool) -> Any:
    """The first row of ``query``, or what the answer writer read ahead under ``memo_key``
    (taken once: a second read in the same step asks the store)."""
    pending = deferred(conn)
    if pending is not None and memo_key in pending.memo:
        return pending.memo.pop(memo_key)
    result = conn.execute(query)
    return (result.mappings() if mappings else result).first()


def session_for_token(
    conn: Connection, token: str, now: datetime | None = None, *, record: bool = True
) -> Session:
    """The session of an invitation; NotFound, Expired (410) or Conflict (used) otherwise.

    The first visit records when the invitation was opened; with ``record=False`` that write
    is left to the caller (``record_open``, or ``save_answer`` with the answer's own writes),
    so a submission writes the invitation once.
    """
    now = now or utcnow()
    inv = _read(
        conn, ("invitation by token", token),
        sa.select(invitations).where(invitations.c.token == token), mappings=True,
    ) if token else None  # fmt: skip
    if inv is None:
        raise NotFound("This survey link is not known. Please check that it was copied whole.")
    response = None
    if inv["response_id"]:
        response = _read(
            conn, ("response of invitation", inv["response_id"]),
            _responses_of_invitations(responses.c.id == inv["response_id"]), mappings=False,
        )  # fmt: skip
    if response is not None and response.completed:
        raise Conflict("This survey has already been answered. Thank you for your feedback!")
    if inv["expires_at"] is not None and inv["expires_at"] <= now:
        raise Expired("This survey link has expired. Thank you for wanting to help.")
    opening = now if inv["opened_at"] is None else None
    if opening is not None and record:
        conn.execute(
            invitations.update().where(invitations.c.id == inv["id"]).values(opened_at=now)
        )
        opening = None
    key = inv["survey_key"]
    if response is not None:
        version = response.survey_version
        defn = published_definition(conn, key, version, response.digest)
    else:
        try:
            version, defn = current_definition(conn, key)
        except NotFound:
            raise NotFound(f"survey '{key}' does not exist") from None
    session = Session(
        defn, version, inv["channel"],
        response_id=inv["response_id"], invitation_id=inv["id"], customer_id=inv["customer_id"],
        touchpoint=inv["touchpoint_key"], trigger_event_id=inv["trigger_event_id"],
        language=(response.language if response else None) or inv["language"],
        hidden=dict(inv["hidden"] or {}), opening=opening,
    )  # fmt: skip
    if session.language is None and session.customer_id:
        session.language = people.traits(conn, session.customer_id).get("language")
    _load_answers(conn, session)
    return session


def record_open(conn: Connection, session: Session) -> None:
    """Write when the invitation was first opened, if ``session_for_token(record=False)``
    left it to be written and no answer has written it since."""
    if session.opening is not None and session.invitation_id is not None:
        _update(conn, invitations, {"id": session.invitation_id, "opened_at": session.opening})
    session.opening = None


def session_for_open(
    conn: Connection, key: str, response_id: str | None = None, channel: str = "web",
    hidden: dict[str, str] | None = None,
) -> Session:  # fmt: skip
    """The session of an anonymous open link (a new one until the first answer is saved)."""
    if response_id is None:
        version, defn = current_definition(conn, key)
        if not defn.open_link:
            raise NotFound(f"survey '{key}' has no open link")
        wanted = {q.id for q in defn.questions if q.type == "hidden"}
        carried = {k: v[:500] for k, v in (hidden or {}).items() if k in wanted}
        # Anyone can edit an open link: a touchpoint counts only if the org knows it.
        if "touchpoint" in carried and carried["touchpoint"] not in {
            t.key for t in org.list_touchpoints(conn)
        }:
            del carried["touchpoint"]
        return Session(
            defn, version, channel[:32], hidden=carried,
            touchpoint=carried.get("touchpoint"),
        )  # fmt: skip
    row = conn.execute(
        sa.select(responses, survey_versions.c.digest.label("s_digest"))
        .select_from(responses.outerjoin(survey_versions, sa.and_(
            survey_versions.c.survey_key == responses.c.survey_key,
            survey_versions.c.version == responses.c.survey_version,
        )))
        .where(responses.c.id == response_id, responses.c.survey_key == key)
    ).mappings().first()  # fmt: skip
    if row is None or row["invitation_id"] is not None:
        raise NotFound("This survey page is not known. Please start again from the link.")
    if row["completed"]:
        raise Conflict("This survey has already been answered. Thank you for your feedback!")
    session = Session(
        published_definition(conn, key, row["survey_version"], row["s_digest"]),
        row["survey_version"],
        row["channel"],
        response_id=response_id, touchpoint=row["touchpoint_key"], language=row["language"],
    )  # fmt: skip
    _load_answers(conn, session)
    return session


class ParsedAnswer(NamedTuple):
    """One validated answer and the ``response_answers`` columns that store it."""

    value: Any  # int for scores, list[str] for multiple choice, str otherwise; None: unanswered
    number: float | None = None
    text: str | None = None
    items: list[str] | None = None  # multiple choice: the chosen option values, as a list

    def columns(self) -> dict[str, Any]:
        return {"value_number": self.number, "value_text": self.text, "value_list": self.items}


def choice_display(items: list[str]) -> str:
    """A multiple-choice answer as one line for people to read (never parsed back)."""
    return "; ".join(items) if any("," in v for v in items) else ", ".join(items)


def parse_answer(question: Any, values: list[str]) -> ParsedAnswer:
    """Validate raw values (form fields, or one import cell already cut into options).

    Scores (NPS, CSAT, CES, rating) take one whole number on the question's scale, written as
    other tools write it ("9", " 9 ", "9.0"); "7.5" is refused, never rounded. Multiple choice
    takes whole option values and is stored as a list. Invalid says what a valid answer is.
    """
    values = [v.strip() for v in values if v is not None and v.strip() != ""]
    if not values:
        if question.required:
            raise Invalid("Please answer this question; it is required.")
        return ParsedAnswer(None)
    bounds = question.bounds()
    if bounds is not None:
        lo, hi = bounds
        if len(values) > 1:
            raise Invalid(f"Please pick one number from {lo} to {hi}.")
        try:
            number = parse_score(values[0], lo, hi)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        return ParsedAnswer(number, float(number))
    if question.type in ("single_choice", "multiple_choice"):
        allowed = [o.value for o in question.options or []]
        unknown = [v for v in values if v not in allowed]
        if unknown or (question.type == "single_choice" and len(values) > 1):
            shown = ", ".join(repr(v[:64]) for v in unknown) or f"{len(values)} values"
            raise Invalid(f"Please pick from the options shown ({shown} is not one of them).")
        if question.type == "single_choice":
            return ParsedAnswer(values[0], text=values[0])
        chosen = [v for v in allowed if v in values]
        return ParsedAnswer(chosen, text=choice_display(chosen), items=chosen)
    text = values[0]
    if len(text) > question.max_length:
        raise Invalid(f"Please keep this answer under {question.max_length} characters.")
    return ParsedAnswer(text, text=text)  # stored as text; escaped wherever it is shown


def _start_response(conn: Connection, session: Session, source: str,
                    now: datetime) -> dict[str, Any]:  # fmt: skip
    """Start a response: its hidden answers and the invitation's link to it are written; the
    response row is returned for the caller to insert with the first answer's scores."""
    session.response_id = secrets.token_urlsafe(32)
    row = dict(
        id=session.response_id, survey_key=session.defn.key, survey_version=session.version,
        respondent_kind=respondent_kind(session.defn.kind),
        customer_id=session.customer_id, employee_id=session.hidden.get("employee_id"),
        invitation_id=session.invitation_id, trigger_event_id=session.trigger_event_id,
        touchpoint_key=session.touchpoint, channel=session.channel,
        language=session.language or session.defn.default_language, started_at=now,
        submitted_at=None, completed=False, nps=None, nps_category=None, csat=None,
        ces=None, comment=None, source=source,
    )  # fmt: skip
    hidden_rows = []
    for q in session.defn.questions:
        if q.type == "hidden":
            value = session.hidden.get(q.source or q.id)
            if q.id == "touchpoint" and value is None:
                value = session.touchpoint
            if value is not None:
                session.seen.add(q.id)
                session.answers[q.id] = str(value)
                hidden_rows.append(
                    {"response_id": session.response_id, "question_id": q.id,
                     "question_type": "hidden", "value_number": None,
                     "value_text": str(value)[:500], "value_list": None, "answered_at": now}
                )  # fmt: skip
    if hidden_rows:
        _insert(conn, response_answers, hidden_rows)
    if session.invitation_id:
        opened = {} if session.opening is None else {"opened_at": session.opening}
        _update(conn, invitations, {"id": session.invitation_id,
                                    "response_id": session.response_id} | opened)  # fmt: skip
        session.opening = None
    return row


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` now, or with the other respondents' at the end of a shared
    transaction (``cxm.surveys.writer.deferred``)."""
    pending = deferred(conn)
    if pending is not None:
        pending.insert(table, rows)
    elif len(rows) == 1:
        conn.execute(table.insert().values(rows[0]))
    else:
        conn.execute(table.insert(), rows)


def _update(conn: Connection, table: sa.Table, row: dict[str, Any]) -> None:
    """Set the columns in ``row`` of the row whose ``id`` is ``row["id"]``, now or deferred
    as ``_insert``."""
    pending = deferred(conn)
    if pending is not None:
        pending.update(table, "id", row)
    else:
        values = {c: v for c, v in row.items() if c != "id"}
        conn.execute(table.update().where(table.c.id == row["id"]).values(values))


def respondent_kind(survey_kind: str) -> str:
    """Whose answers a survey of ``survey_kind`` collects: ``employee`` (employee pulse),
    ``partner`` (partner pulse: people at a partner) or ``customer`` (every other kind)."""
    return survey_kind if survey_kind in ("employee", "partner") else "customer"


def nps_category(score: int | None) -> str | None:
    if score is None:
        return None
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def derived(defn: SurveyDefinition, answers: dict[str, Any]) -> dict[str, Any]:
    """The score columns of a response, from its answers (first question of each type)."""
    out: dict[str, Any] = {"nps": None, "csat": None, "ces": None, "comment": None}
    comments = []
    for q in defn.questions:
        value = answers.get(q.id)
        if value is None:
            continue
        if q.type in SCORE_TYPES and out[q.type] is None:
            out[q.type] = int(value)
        elif q.type == "open_text" and str(value).strip():
            comments.append(str(value).strip())
    out["nps_category"] = nps_category(out["nps"])
    out["comment"] = "\n\n".join(comments) or None
    return out


def save_answer(
    conn: Connection, session: Session, question_id: str, values: list[str], *,
    source: str = "web", now: datetime | None = None,
) -> Session:  # fmt: skip
    """Validate and store one answer (a partial response counts); completes after the last."""
    now = now or utcnow()
    question = session.defn.question(question_id)
    upcoming = session.next_question()
    allowed = question is not None and (
        question.id in session.seen or (upcoming is not None and upcoming.id == question.id)
    )
    if (
        question is None
        or question.type == "hidden"
        or not allowed
        or not visible(question, session.answers)
    ):
        raise Invalid(f"'{question_id}' is not a question on this page")
    parsed = parse_answer(question, values)
    answer = parsed.value
    started = _start_response(conn, session, source, now) if session.response_id is None else None
    was_seen = question.id in session.seen  # answered before (every stored answer is in seen)
    session.seen.add(question.id)
    if answer is None:
        session.answers.pop(question.id, None)
    else:
        session.answers[question.id] = answer
    # An answer that changes the logic may hide questions answered before; drop them.
    dropped = []
    for q in session.defn.questions:
        if q.type != "hidden" and q.id in session.seen and not visible(q, session.answers):
            session.seen.discard(q.id)
            session.answers.pop(q.id, None)
            dropped.append(q.id)
    gone = [question.id] * was_seen + [qid for qid in dropped if qid != question.id]
    if gone and started is None:  # a new response has stored none of them
        conn.execute(
            response_answers.delete().where(
                response_answers.c.response_id == session.response_id,
                response_answers.c.question_id.in_(gone),
            )
        )
    if question.id not in dropped:
        _insert(conn, response_answers, [{
            "response_id": session.response_id, "question_id": question.id,
            "question_type": question.type, "answered_at": now, **parsed.columns(),
        }])  # fmt: skip
    session.completed = session.next_question() is None
    values_out = derived(session.defn, session.answers) | {"completed": session.completed}
    if session.completed:
        values_out["submitted_at"] = now
    if started is not None:  # a new response: one insert with its scores, not two statements
        _insert(conn, responses, [started | values_out])
    else:
        _update(conn, responses, {"id": session.response_id} | values_out)
    return session


def text_in(text: dict[str, str] | None, language: str, fallback: str) -> str:
    """Wording in ``language``, falling back to the survey's default language."""
    text = text or {}
    return text.get(language) or text.get(fallback) or next(iter(text.values()), "")
