"""Import responses collected elsewhere (a CSV export of another survey tool).

Good rows are stored in one transaction; rows that cannot be read go to ``<input stem>.rejects.csv``
with the line and the reason, so a person fixes them and imports that file again (already
imported ids are skipped). An import that rejects every row, or more than the mapping's
``max_rejected_share``, stores nothing and raises Invalid (exit code 2 on the command line).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from cxm.errors import Invalid, NotFound
from cxm.interactions.formats import Dates, Numbers
from cxm.store.bulk import insert_rows
from cxm.surveys import people
from cxm.surveys.schemas import Question, SurveyDefinition, split_choices
from cxm.surveys.service import (
    current_version,
    derived,
    get_definition,
    parse_answer,
    respondent_kind,
)
from cxm.surveys.tables import response_answers, responses
from cxm.yamldoc import YamlDoc, validate

BATCH = 1000


class Mapping(BaseModel):
    """Which CSV column holds what and how the file writes values; the defaults read cxm's own
    export format (ISO times in UTC, a point as decimal mark, options cut at commas)."""

    model_config = ConfigDict(extra="forbid")
    columns: dict[str, str] = Field(default_factory=dict)  # field -> column
    identifiers: dict[str, str] = Field(
        default_factory=lambda: {"email": "email", "crm_id": "crm_id"}
    )
    answers: dict[str, str] = Field(default_factory=dict)  # question id -> column
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    dates: Dates = Field(default_factory=Dates)
    numbers: Numbers = Field(default_factory=Numbers)
    choice_separator: str = Field(default=",", min_length=1, max_length=8)
    # Refuse the whole file when more than this share of rows is rejected (1: only when all are).
    max_rejected_share: float = Field(default=1.0, ge=0.0, le=1.0)


FIELDS = ("response_id", "survey", "submitted_at", "language", "touchpoint", "trigger_event_id",
          "employee_id", "channel")  # fmt: skip


def load_mapping(doc: YamlDoc) -> Mapping:
    mapping = validate(doc, Mapping)
    unknown = sorted(set(mapping.columns) - set(FIELDS))
    if unknown:
        raise Invalid(
            f"{doc.where(('columns',))}: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(FIELDS)}"
        )
    return mapping


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    rejects_file: Path | None = None
    by_survey: dict[str, int] = field(default_factory=dict)


def _answer_columns(defn: SurveyDefinition, mapping: Mapping, header: list[str]) -> dict[str, str]:
    """Question id -> column: the mapping's, else a column named like the question or its type."""
    out: dict[str, str] = {}
    used_comment = False
    for q in defn.questions:
        if q.id in mapping.answers:
            out[q.id] = mapping.answers[q.id]
            continue
        candidates = [q.id]
        if q.type in ("nps", "csat", "ces"):
            candidates += [q.type, "enps"] if q.type == "nps" else [q.type]
        if q.type == "open_text" and not used_comment:
            candidates.append("comment")
        if q.type == "hidden" and q.id == "touchpoint":
            candidates.append(mapping.columns.get("touchpoint", "touchpoint"))
        for c in candidates:
            if c in header and c not in out.values():
                out[q.id] = c
                used_comment = used_comment or (q.type == "open_text" and c == "comment")
                break
    return out


_DATE_PARTS = {"day_first": ("%d", "%m"), "month_first": ("%m", "%d")}
_TIME_PARTS = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S", " %I:%M %p", " %I:%M:%S %p")


def _formats(dates: Dates) -> list[str]:
    if dates.format:
        return [dates.format]
    first, second = _DATE_PARTS[dates.order]
    return [f"{first}{sep}{second}{sep}{year}{t}" for sep in "/.-" for year in ("%Y", "%y")
            for t in _TIME_PARTS]  # fmt: skip


def _time(raw: str, dates: Dates | None = None) -> dt.datetime:
    """An aware time from one cell; naive times are in the mapping's zone. ValueError if not."""
    dates = dates or Dates()
    text = raw.strip()
    value: dt.datetime | None = None
    if dates.order == "iso" and not dates.format:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        for fmt in _formats(dates):
            try:
                value = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if value is None:
            raise ValueError(text)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(dates.timezone))


def _time_help(dates: Dates) -> str:
    if dates.format:
        return f"a time in the mapping's format {dates.format}"
    if dates.order == "day_first":
        return "a day-first time like 31/01/2026 09:30"
    if dates.order == "month_first":
        return "a month-first time like 01/31/2026 09:30"
    return ("an ISO time like 2026-01-31T09:30:00Z (for 31/01/2026 09:30 set dates.order: "
            "day_first in the mapping)")  # fmt: skip


def _number_text(raw: str, numbers: Numbers) -> str:
    """A numeric cell in the file's notation rewritten with a point and no grouping."""
    text = raw.strip()
    if numbers.thousands:
        text = text.replace(numbers.thousands, "")
    if numbers.decimal == ",":
        text = text.replace(",", ".")
    return text


def _cell_values(q: Any, raw: str, mapping: Mapping) -> list[str]:
    """The answer values in one cell: scores in the file's number notation, choices matched to
    whole option values before the cell is cut at the separator."""
    if q.bounds() is not None:
        return [_number_text(raw, mapping.numbers)]
    if q.type == "multiple_choice":
        options = q.options or []
        labels = {text: o.value for o in options for text in o.text.values()}
        return split_choices(raw, [o.value for o in options], mapping.choice_separator, labels)
    return [raw]


def import_responses(
    conn: Connection, path: Path, *, survey: str | None = None, mapping: Mapping | None = None,
    rejects: Path | None = None, source: str = "import",
) -> ImportSummary:  # fmt: skip
    """Read ``path`` and store each good row as a completed response with long-form answers."""
    mapping = mapping or Mapping()
    col = {f: mapping.columns.get(f, f) for f in FIELDS}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle, delimiter=mapping.delimiter)
        header = list(reader.fieldnames or [])
        if survey is None and col["survey"] not in header:
            raise Invalid(
                f"{path}: no '{col['survey']}' column; give --survey KEY or map 'survey' "
                "in the mapping file"
            )
        if col["submitted_at"] not in header:
            raise Invalid(f"{path}: no '{col['submitted_at']}' column (when it was answered)")
        rows = list(reader)
    defs: dict[str, tuple[SurveyDefinition, int, list[tuple[str, str, Question]]]] = {}
    summary = ImportSummary()
    bad: list[dict[str, Any]] = []
    out_rows: list[dict[str, Any]] = []
    out_answers: list[dict[str, Any]] = []
    for line, row in enumerate(rows, start=2):
        try:
            key = survey or (row.get(col["survey"]) or "").strip()
            if not key:
                raise Invalid(f"the '{col['survey']}' column is empty")
            if key not in defs:
                try:
                    defn = get_definition(conn, key)
                except NotFound as exc:
                    raise Invalid(str(exc)) from exc
                # Each question once, made optional (a blank cell is no answer), for every row.
                optional = {q.id: q.model_copy(update={"required": False}) for q in defn.questions}
                defs[key] = (
                    defn,
                    current_version(conn, key),
                    [(qid, column, optional[qid])
                     for qid, column in _answer_columns(defn, mapping, header).items()],
                )  # fmt: skip
            defn, version, qcols = defs[key]
            raw_time = (row.get(col["submitted_at"]) or "").strip()
            try:
                submitted = _time(raw_time, mapping.dates)
            except ValueError as exc:
                raise Invalid(
                    f"'{col['submitted_at']}' must be {_time_help(mapping.dates)}, "
                    f"not {raw_time[:40]!r}"
                ) from exc
            answers: dict[str, Any] = {}
            answer_rows = []
            for qid, column, q in qcols:
                raw = (row.get(column) or "").strip()
                if not raw:
                    continue
                try:
                    parsed = parse_answer(q, _cell_values(q, raw, mapping))
                except Invalid as exc:
                    raise Invalid(f"column '{column}' ({qid}): {exc}") from exc
                answers[qid] = parsed.value
                columns = parsed.columns()
                if columns["value_text"]:
                    columns["value_text"] = columns["value_text"][:10000]
                answer_rows.append(
                    {"question_id": qid, "question_type": q.type, **columns,
                     "answered_at": submitted}
                )  # fmt: skip
            if not answer_rows:
                raise Invalid("the row has no answers in any mapped column")
            rid = (row.get(col["response_id"]) or "").strip() or hashlib.sha256(
                "\x1f".join([key, *map(str, row.values())]).encode()).hexdigest()[:40]  # fmt: skip
            ids = {k: (row.get(c) or "").strip() for k, c in mapping.identifiers.items()}
            ids = {k: (v.lower() if k == "email" else v) for k, v in ids.items() if v}
            language = (row.get(col["language"]) or "").strip()
            out_rows.append(
                {
                    "id": rid[:64], "survey_key": key, "survey_version": version,
                    "respondent_kind": respondent_kind(defn.kind),
                    "customer_id": ids or None,  # resolved below, only for new rows
                    "employee_id": (row.get(col["employee_id"]) or "").strip() or None,
                    "invitation_id": None,
                    "trigger_event_id": (row.get(col["trigger_event_id"]) or "").strip() or None,
                    "touchpoint_key": (row.get(col["touchpoint"]) or "").strip() or None,
                    "channel": (row.get(col["channel"]) or "").strip() or None,
                    "language": language if language in defn.languages else defn.default_language,
                    "started_at": submitted, "submitted_at": submitted, "completed": True,
                    **derived(defn, answers), "source": source,
                }
            )  # fmt: skip
            out_answers.append({"response_id": rid[:64], "rows": answer_rows})
        except Invalid as exc:
            bad.append(row | {"error": f"line {line}: {exc}"})
    summary.rows = len(rows)
    summary.rejected = len(bad)
    if bad:
        target = rejects or path.with_name(f"{path.stem}.rejects.csv")
        with target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=[*header, "error"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(bad)
        summary.rejects_file = target
        _refuse_if_too_many(path, summary, mapping.max_rejected_share)
    _store(conn, summary, out_rows, out_answers)
    return summary


def _refuse_if_too_many(path: Path, summary: ImportSummary, max_share: float) -> None:
    """Invalid (nothing stored) when every row, or more than ``max_share`` of them, failed."""
    share = summary.rejected / summary.rows
    if summary.rejected == summary.rows:
        why = f"every row ({summary.rows}) was rejected"
    elif share > max_share:
        why = (f"{summary.rejected} of {summary.rows} rows ({share:.0%}) were rejected, more "
               f"than the allowed {max_share:.0%} (max_rejected_share in the mapping)")  # fmt: skip
    else:
        return
    raise Invalid(
        f"{path}: {why}; nothing was imported. The reason for each row is in "
        f"{summary.rejects_file}; fix the rows or the mapping (date format, time zone, "
        "decimal mark) and import again"
    )


def _store(conn: Connection, summary: ImportSummary, out_rows: list[dict[str, Any]],
           out_answers: list[dict[str, Any]]) -> None:  # fmt: skip
    existing: set[str] = set()
    ids_all = [r["id"] for r in out_rows]
    for i in range(0, len(ids_all), BATCH):
        chunk = ids_all[i : i + BATCH]
        existing |= set(
            conn.execute(sa.select(responses.c.id).where(responses.c.id.in_(chunk))).scalars()
        )
    new_rows, new_answers = [], []
    seen: set[str] = set()
    for r, a in zip(out_rows, out_answers, strict=True):
        if r["id"] in existing or r["id"] in seen:
            summary.already_present += 1
            continue
        seen.add(r["id"])
        new_rows.append(r)
        new_answers += [x | {"response_id": a["response_id"]} for x in a["rows"]]
        summary.by_survey[r["survey_key"]] = summary.by_survey.get(r["survey_key"], 0) + 1
    # Respondents resolve in one pass for the whole file, not one identity lookup per row.
    known = [r for r in new_rows if r["customer_id"] and r["respondent_kind"] == "customer"]
    resolved = people.resolve_many(conn, [(r["customer_id"], r["submitted_at"]) for r in known])
    for r in new_rows:
        if r["respondent_kind"] != "customer":
            r["customer_id"] = None
    for r, customer_id in zip(known, resolved, strict=True):
        r["customer_id"] = customer_id
    # Bulk paths (Arrow on DuckDB): executemany there runs one row at a time.
    insert_rows(conn, responses, new_rows)
    insert_rows(conn, response_answers, new_answers)
    summary.imported = len(new_rows)
