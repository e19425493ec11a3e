"""Multiple-choice answers stored as lists: response_answers.value_list.

Answers used to be joined with commas in value_text, so an option whose value contains a comma
("Price, value") could not be read back. Existing multiple-choice rows are converted by matching
whole option values of the answered survey version before cutting at commas; value_text stays
as it was, a line for people to read.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_answers = sa.table(
    "response_answers",
    sa.column("response_id", sa.String),
    sa.column("question_id", sa.String),
    sa.column("question_type", sa.String),
    sa.column("value_text", sa.Text),
    sa.column("value_list", sa.JSON),
)
_responses = sa.table(
    "responses",
    sa.column("id", sa.String),
    sa.column("survey_key", sa.String),
    sa.column("survey_version", sa.Integer),
)
_versions = sa.table(
    "survey_versions",
    sa.column("survey_key", sa.String),
    sa.column("version", sa.Integer),
    sa.column("definition", sa.JSON),
)


def _split(raw: str, options: list[str]) -> list[str]:
    """Whole option values first, then the comma (a frozen copy of the import's rule)."""
    known = {o.strip(): o for o in options}
    text = raw.strip()
    if text in known:
        return [known[text]]
    pieces = text.split(",")
    best: dict[int, list[str] | None] = {len(pieces): []}
    for i in range(len(pieces) - 1, -1, -1):
        best[i] = None
        for j in range(len(pieces), i, -1):
            candidate = ",".join(pieces[i:j]).strip()
            rest = best[j]
            if candidate in known and rest is not None:
                best[i] = [known[candidate], *rest]
                break
    found = best[0]
    return found if found is not None else [p.strip() for p in pieces if p.strip()]


def _options(definition: Any, question_id: str) -> list[str]:
    for q in (definition or {}).get("questions", []):
        if q.get("id") == question_id:
            return [str(o.get("value")) for o in q.get("options") or []]
    return []


def upgrade() -> None:
    op.add_column("response_answers", sa.Column("value_list", sa.JSON))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_answers.c.response_id, _answers.c.question_id, _answers.c.value_text,
                  _responses.c.survey_key, _responses.c.survey_version)
        .select_from(_answers.join(_responses, _responses.c.id == _answers.c.response_id))
        .where(_answers.c.question_type == "multiple_choice", _answers.c.value_text.is_not(None))
    ).all()  # fmt: skip
    definitions: dict[tuple[str, int], Any] = {}
    for r in rows:
        key = (r.survey_key, r.survey_version)
        if key not in definitions:
            definitions[key] = conn.execute(
                sa.select(_versions.c.definition).where(
                    _versions.c.survey_key == key[0], _versions.c.version == key[1]
                )
            ).scalar()
        items = _split(r.value_text, _options(definitions[key], r.question_id))
        conn.execute(
            _answers.update()
            .where(_answers.c.response_id == r.response_id,
                   _answers.c.question_id == r.question_id)
            .values(value_list=items)
        )  # fmt: skip


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_answers.c.response_id, _answers.c.question_id, _answers.c.value_list).where(
            _answers.c.question_type == "multiple_choice", _answers.c.value_list.is_not(None)
        )
    ).all()
    for r in rows:
        conn.execute(
            _answers.update()
            .where(_answers.c.response_id == r.response_id,
                   _answers.c.question_id == r.question_id)
            .values(value_text=",".join(r.value_list))
        )  # fmt: skip
    op.drop_column("response_answers", "value_list")
