"""Case titles, written from a case's structured facts with display names.

A case's stored ``title`` is what it read when the case opened; what a person sees (pages, the
CLI, the API, emails) is rendered again from the rule and the fact that opened the case, with
the names known now. So a case opened before a survey, touchpoint or metric had a display name,
or before the wording changed, reads like a new one: "Detractor: Relationship survey (NPS 6 of
10)", never ``relationship_nps``. The stored title is the fallback when the fact is gone (an
erased response, a deleted rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions.tables import action_rules
from cxm.interactions.facts import interactions
from cxm.metrics.facts import metric_alerts
from cxm.org import service as org
from cxm.surveys import service as surveys
from cxm.surveys.facts import responses_table as responses
from cxm.surveys.schemas import FIXED_SCALES

# The top of each score's scale, so a title reads "NPS 6 of 10".
SCALE_TOP = {k: top for k, (_, top) in FIXED_SCALES.items()}
# Metrics that read as an abbreviation rather than as words.
ABBREVIATIONS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "enps": "eNPS"}


def words(key: str) -> str:
    """A key nobody named, as words: ``support_contact`` → "Support contact"."""
    text = key.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def metric_label(metric: str) -> str:
    """A metric's name as a person reads it: ``nps`` → "NPS", ``csat_mean`` → "CSAT mean"."""
    head, _, rest = metric.partition("_")
    if metric in ABBREVIATIONS:
        return ABBREVIATIONS[metric]
    if head in ABBREVIATIONS:
        return f"{ABBREVIATIONS[head]} {rest.replace('_', ' ')}"
    return words(metric)


class Names:
    """Names of the org's touchpoints, departments, teams and surveys, read once each."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._maps: dict[str, dict[str, str]] = {}

    def _map(self, kind: str) -> dict[str, str]:
        if kind not in self._maps:
            if kind == "touchpoint":
                self._maps[kind] = {t.key: t.name for t in org.list_touchpoints(self._conn)}
            elif kind == "department":
                self._maps[kind] = {d.key: d.name for d in org.list_departments(self._conn)}
            elif kind == "team":
                self._maps[kind] = {t.key: t.name for t in org.list_teams(self._conn)}
            else:
                self._maps[kind] = {
                    s.key: s.name or s.title for s in surveys.list_surveys(self._conn)
                }
        return self._maps[kind]

    def get(self, kind: str, key: str) -> str:
        return self._map(kind).get(key) or key

    def slice_text(self, slice_: str) -> str:
        """``touchpoint=delivery,plan=gold`` → "Home delivery, Plan gold"; "" → "whole company"."""
        parts = []
        for part in filter(None, slice_.split(",")):
            dim, _, value = part.partition("=")
            if dim in ("touchpoint", "department", "team"):
                parts.append(self.get(dim, value))
            else:
                parts.append(f"{words(dim.removeprefix('trait:'))} {value}")
        return ", ".join(parts) or "whole company"


def response_title(rule_name: str, survey: str, scores: Any) -> str:
    """ "Detractor: Relationship survey (NPS 6 of 10)"; ``scores`` maps nps/csat/ces to a score."""
    score = ", ".join(
        f"{k.upper()} {scores[k]} of {SCALE_TOP[k]}"
        for k in ("nps", "csat", "ces")
        if scores.get(k) is not None
    )
    return (f"{rule_name}: {survey}" + (f" ({score})" if score else ""))[:300]


def interaction_title(rule_name: str, count: int, event: str, within_days: int) -> str:
    """ "Repeat contact: 3 x Support contact in 14 days"."""
    return f"{rule_name}: {count} x {words(event)} in {within_days} days"[:300]


def alert_title(rule_name: str, alert: Any, names: Names) -> str:
    """ "Metric drop: CSAT fell from 82.0 to 71.0 (Home delivery, p=0.004)" from an alert row."""
    return (
        f"{rule_name}: {metric_label(alert['metric'])} fell from "
        f"{alert['previous_value']:.1f} to {alert['value']:.1f} "
        f"({names.slice_text(alert['slice'] or '')}, p={alert['p_adjusted']:.3f})"
    )[:300]


def _by_id(conn: Connection, table: sa.Table, id_col: str, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    column = table.c[id_col]
    rows = conn.execute(sa.select(table).where(column.in_(sorted(ids)))).mappings()
    return {str(r[id_col]): r for r in rows}


def render(conn: Connection, cases: Iterable[dict[str, Any]]) -> None:
    """Set each case dict's ``title`` from its rule and source fact, with today's names.

    ``cases`` are rows of the cases table as dicts (``rule_key``, ``source_kind``,
    ``source_id``, ``title``); they are changed in place. A few queries for the whole batch,
    whatever its length. A case whose rule or fact is gone keeps its stored title; a
    churn-risk case keeps it too (it quotes the risk when the case opened, with no keys).
    """
    batch = [c for c in cases if c.get("source_kind") in ("response", "interaction", "alert")]
    if not batch:
        return
    rule_rows = conn.execute(
        sa.select(action_rules.c.key, action_rules.c.name, action_rules.c.definition).where(
            action_rules.c.key.in_(sorted({c["rule_key"] for c in batch}))
        )
    ).mappings()
    rules = {r["key"]: r for r in rule_rows}
    wanted: dict[str, set[str]] = {"response": set(), "interaction": set(), "alert": set()}
    for c in batch:
        wanted[c["source_kind"]].add(str(c["source_id"]))
    facts = {
        "response": _by_id(conn, responses, "id", wanted["response"]),
        "interaction": _by_id(conn, interactions, "event_id", wanted["interaction"]),
        "alert": _by_id(conn, metric_alerts, "id", wanted["alert"]),
    }
    names = Names(conn)
    for c in batch:
        rule = rules.get(c["rule_key"])
        fact = facts[c["source_kind"]].get(str(c["source_id"]))
        if rule is None or fact is None:
            continue
        rule_name = str(rule["name"])
        if c["source_kind"] == "response":
            c["title"] = response_title(
                rule_name, names.get("survey", str(fact["survey_key"])), fact
            )
        elif c["source_kind"] == "alert":
            c["title"] = alert_title(rule_name, fact, names)
        else:
            pattern = (rule["definition"] or {}).get("when", {}).get("interaction") or {}
            c["title"] = interaction_title(
                rule_name,
                int(pattern.get("count", 1)),
                str(fact["name"]),
                int(pattern.get("within_days", 14)),
            )
