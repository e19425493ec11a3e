"""Ibis expressions for employee experience: pulse aggregates per group and period, and the CX
(CSAT, CES, friction rate) of the touchpoints each team owns, per period.

Every expression runs on the engine; results are small (teams x periods) and go to pandas only
for the statistics.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis.backends import BaseBackend

from cxm.employees.facts import pulse_answers
from cxm.errors import Invalid
from cxm.insights.definitions import Signal
from cxm.interactions.facts import log
from cxm.org.facts import touchpoints_expr
from cxm.store.analytics import to_frame
from cxm.surveys.facts import answers as survey_answers
from cxm.surveys.facts import responses

GRAINS = {"month": "M", "quarter": "Q", "year": "Y"}
# Events that are never a unit of service at a touchpoint (the survey ask itself).
NOT_SERVICE = ("survey_sent",)


def check_grain(grain: str | None) -> str | None:
    if grain is not None and grain not in GRAINS:
        raise Invalid(f"grain: use {', '.join(GRAINS)}, not {grain!r}")
    return grain


def _period(t: ir.Table, column: str, grain: str | None) -> ir.Value:
    if grain is None:
        return ibis.literal(dt.date(1970, 1, 1))
    return t[column].truncate(GRAINS[grain]).date()


LEVEL_KEYS = {
    "company": [],
    "department": ["department_key"],
    "team": ["department_key", "team_key"],
}


def _answers(
    con: BaseBackend,
    start: dt.datetime | None,
    end: dt.datetime | None,
    survey: str | None,
) -> ir.Table:
    p = pulse_answers(con)
    p = p.filter(p.nps.notnull())
    if survey:
        p = p.filter(p.survey_key == survey)
    if start is not None:
        p = p.filter(p.submitted_at >= start)
    if end is not None:
        p = p.filter(p.submitted_at < end)
    return p


def _cell(p: ir.Table, level: str) -> ir.StringValue:
    """One text key per group and month (``2026-04-01|ops|ops_b``), nulls as empty text, so
    the kept cells join back to the answers in one equality."""
    parts: list[ir.StringValue] = [p.submitted_at.truncate("M").date().cast("string")]
    parts += [p[k].cast("string").fill_null("") for k in LEVEL_KEYS[level]]
    out = parts[0]
    for part in parts[1:]:
        out = out.concat("|", part)
    return out


def pulse_month_cells(
    con: BaseBackend,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    survey: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Distinct respondents per group and calendar month at each level: ``cell`` (see
    ``_cell``), ``month`` (a date), the group key columns and ``n``."""

    def build(level: str, keys: list[str]) -> ir.Table:
        p = _answers(con, start, end, survey)
        q = p.mutate(cell=_cell(p, level), month=p.submitted_at.truncate("M").date())
        return q.group_by(["cell", "month", *keys]).aggregate(n=q.employee_id.nunique())

    return {
        level: to_frame(
            con,
            ("pulse_month_cells", level, start, end, survey),
            functools.partial(build, level, list(keys)),
        )
        for level, keys in LEVEL_KEYS.items()
    }


def pulse_groups(
    con: BaseBackend,
    grain: str | None = None,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    survey: str | None = None,
    kept: dict[str, list[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Pulse aggregates at three levels: ``company``, ``department``, ``team``.

    Each frame: ``period`` (a date; 1970-01-01 when no grain), the group key columns, ``n``
    (distinct employees who answered), ``answers``, ``promoters``, ``passives``,
    ``detractors``, ``score_mean`` (the 0-10 answer) and the engagement index: each answer to
    an item of ``ENGAGEMENT_ITEMS`` rescaled to 0-100, ``(answer - min) / (max - min) * 100``,
    averaged per respondent, then ``eng_mean`` and ``eng_sd`` (sample standard deviation; null
    for one) over the ``eng_n`` respondents. Naive UTC bounds, ``[start, end)``.
    ``kept``: per level, the month cells (``pulse_month_cells``) whose answers count; the
    answers of the other cells are left out of that level's groups.
    """
    check_grain(grain)

    def build() -> ir.Table:
        # The three levels in one statement (a union of three group-bys): one scan plan, one
        # compilation, one round trip.
        p = _engagement_items(con, _answers(con, start, end, survey))
        p = p.mutate(period=_period(p, "submitted_at", grain))
        parts = []
        for level, keys in LEVEL_KEYS.items():
            q = p
            if kept is not None:
                q = p.filter(_cell(p, level).isin(kept[level]))
            # Per respondent first (the engagement index averages respondents), then per group.
            per = q.group_by(["period", *keys, "employee_id"]).aggregate(**_stats(q))
            g = per.group_by(["period", *keys]).aggregate(**_group_stats(per))
            g = g.select(
                level=ibis.literal(level),
                period=g.period,
                department_key=g.department_key.cast("string")
                if "department_key" in keys
                else ibis.null().cast("string"),
                team_key=g.team_key.cast("string")
                if "team_key" in keys
                else ibis.null().cast("string"),
                n=g.n.cast("int64"),
                answers=g.answers.cast("int64"),
                promoters=g.promoters.cast("int64"),
                passives=g.passives.cast("int64"),
                detractors=g.detractors.cast("int64"),
                score_mean=g.score_mean,
                eng_n=g.eng_n.cast("int64"),
                eng_mean=g.eng_mean.cast("float64"),
                eng_sd=g.eng_sd.cast("float64"),
            )
            parts.append(g)
        return ibis.union(*parts)

    if kept is None:  # the statement is kept per question (compiling costs more than running)
        df = to_frame(con, ("pulse_groups", grain, start, end, survey), build)
    else:
        df = build().to_pandas()
    out = {}
    for level, keys in LEVEL_KEYS.items():
        part = df[df["level"] == level][["period", *keys, *STAT_COLUMNS]]
        out[level] = part.sort_values(["period", *keys]).reset_index(drop=True)
    return out


STAT_COLUMNS = (
    "n", "answers", "promoters", "passives", "detractors", "score_mean",
    "eng_n", "eng_mean", "eng_sd",
)  # fmt: skip


def _stats(p: ir.Table) -> dict[str, ir.Value]:
    """One respondent's sums in a group and period (``_engagement_items`` columns needed)."""
    one, zero = ibis.literal(1), ibis.literal(0)
    return {
        "answers": p.count(),
        "promoters": ibis.ifelse(p.nps >= 9, one, zero).sum(),
        "passives": ibis.ifelse((p.nps >= 7) & (p.nps <= 8), one, zero).sum(),
        "detractors": ibis.ifelse(p.nps <= 6, one, zero).sum(),
        "nps_sum": p.nps.cast("float64").sum(),
        "item_sum": p._item_sum.sum(),
        "item_count": p._item_count.sum(),
    }


def _group_stats(per: ir.Table) -> dict[str, ir.Value]:
    """A group's figures from its respondents' sums (``_stats``). Answers without an employee
    id count in the answer totals but are no respondent."""
    score = ibis.ifelse(
        per.employee_id.notnull(), per.item_sum / per.item_count.cast("float64"), ibis.null()
    )
    return {
        "n": per.employee_id.count(),
        "answers": per.answers.sum(),
        "promoters": per.promoters.sum(),
        "passives": per.passives.sum(),
        "detractors": per.detractors.sum(),
        "score_mean": per.nps_sum.sum() / per.answers.sum().cast("float64"),
        "eng_n": score.count(),
        "eng_mean": score.mean(),
        "eng_sd": score.std(how="sample"),
    }


# The engagement items of the shipped ``employee_pulse`` template with their answer scales:
# item id -> (where the answer is read, scale min, scale max). ``enps`` is the 0-10 answer kept
# on the response; any other item is read from the response's answers by question id.
ENGAGEMENT_ITEMS: dict[str, tuple[str, float, float]] = {
    "enps": ("response", 0.0, 10.0),
    "tools": ("answer", 1.0, 5.0),
}


def _engagement_items(con: BaseBackend, p: ir.Table) -> ir.Table:
    """``p`` plus ``_item_sum`` (the sum of the response's item answers, each rescaled to
    0-100) and ``_item_count`` (how many of the items it answered)."""
    item_sum: ir.NumericValue = ibis.literal(0.0)
    item_count: ir.NumericValue = ibis.literal(0)
    for item, (where, low, high) in ENGAGEMENT_ITEMS.items():
        if where == "response":
            value = p.nps.cast("float64")
        else:
            a = survey_answers(con)
            a = a.filter(a.question_id == item, a.value_number.notnull())
            a = a.select(**{f"_rid_{item}": a.response_id, f"_v_{item}": a.value_number})
            p = p.left_join(a, p.id == a[f"_rid_{item}"]).drop(f"_rid_{item}")
            value = p[f"_v_{item}"].cast("float64")
        scaled = (value - low) / (high - low) * 100.0
        item_sum = item_sum + scaled.fill_null(0.0)
        item_count = item_count + ibis.ifelse(value.notnull(), 1, 0)
    return p.mutate(_item_sum=item_sum, _item_count=item_count)


def pulse_score_cells(con: BaseBackend, grain: str) -> pd.DataFrame:
    """Answers per team, period and 0-10 score: ``team_key, period, score, answers``."""

    def build() -> ir.Table:
        p = pulse_answers(con)
        p = p.filter(p.nps.notnull(), p.team_key.notnull())
        p = p.mutate(period=_period(p, "submitted_at", check_grain(grain)), score=p.nps)
        return p.group_by(["team_key", "period", "score"]).aggregate(answers=p.count())

    return to_frame(con, ("pulse_score_cells", grain), build)


def pulse_comments(
    con: BaseBackend,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    level: str = "team",
    kept: list[str] | None = None,
) -> pd.DataFrame:
    """Pulse comments with only their group: ``department_key, team_key, comment`` (no person,
    no time, so a comment can never be joined back to whoever wrote it). ``kept``: the month
    cells of ``level`` (``pulse_month_cells``) whose comments may be read; None: all."""
    p = pulse_answers(con)
    p = p.filter(p.comment.notnull(), p.comment.strip() != "")
    if start is not None:
        p = p.filter(p.submitted_at >= start)
    if end is not None:
        p = p.filter(p.submitted_at < end)
    if kept is not None:
        p = p.filter(_cell(p, level).isin(kept))
    return p.select("department_key", "team_key", "comment").to_pandas()


def team_cx(con: BaseBackend, grain: str) -> pd.DataFrame:
    """Per team and period, the customer answers at the team's touchpoints: ``team_key,
    period, csat_mean, csat_n, ces_mean, ces_n`` (customer population only)."""

    def build() -> ir.Table:
        r = responses(con)
        r = r.filter(r.completed, r.touchpoint_key.notnull())
        tp = touchpoints_expr(con)
        tp = tp.filter(tp.team_key.notnull()).select(_tp=tp.key, team_key=tp.team_key)
        j = r.inner_join(tp, r.touchpoint_key == tp._tp)
        j = j.mutate(period=_period(j, "submitted_at", check_grain(grain)))
        return j.group_by(["team_key", "period"]).aggregate(
            csat_mean=j.csat.cast("float64").mean(),
            csat_n=j.csat.count(),
            ces_mean=j.ces.cast("float64").mean(),
            ces_n=j.ces.count(),
        )

    return to_frame(con, ("team_cx", grain), build)


def service_events(con: BaseBackend) -> pd.DataFrame:
    """Per touchpoint, the event that counts one unit of its service: its most frequent event
    other than a survey ask (``touchpoint_key, name``); ties go to the first name."""

    def build() -> ir.Table:
        t = log(con)
        t = t.filter(t.touchpoint_key.notnull(), ~t.name.isin(list(NOT_SERVICE)))
        c = t.group_by(["touchpoint_key", "name"]).aggregate(n=t.count())
        w = ibis.window(group_by=c.touchpoint_key, order_by=[ibis.desc(c.n), c.name])
        c = c.mutate(rank=ibis.row_number().over(w))
        return c.filter(c["rank"] == 0).select("touchpoint_key", "name")

    return to_frame(con, ("service_events",), build)


def team_frictions(con: BaseBackend, signals: Sequence[Signal], grain: str) -> pd.DataFrame:
    """Per team and period: ``frictions`` (events meeting any signal at the team's
    touchpoints), ``volume`` (units of service there, see ``service_events``) and
    ``friction_rate`` = frictions / volume."""
    check_grain(grain)
    tp = touchpoints_expr(con)
    owners = tp.filter(tp.team_key.notnull()).select("key", "team_key").to_pandas()
    owner = dict(zip(owners["key"], owners["team_key"], strict=True))
    owned = tuple(sorted(owner))

    def owned_log() -> ir.Table:
        t = log(con)
        t = t.filter(t.touchpoint_key.isin(list(owned)))
        return t.mutate(period=_period(t, "event_time", grain))

    def frictions(s: Signal) -> ir.Table:
        t = owned_log()
        f = t.filter(s.predicate(t))
        return f.group_by(["touchpoint_key", "period"]).aggregate(n=f.count())

    frames = []
    for s in signals:
        # the key names everything the statement holds: the owned touchpoints and the signal
        key = ("team_frictions", grain, owned, s.key, s.touchpoints, s.when)
        frame = to_frame(con, key, functools.partial(frictions, s))
        frames.append(frame.assign(kind="frictions"))
    units = service_events(con)
    if len(units):
        pairs = tuple(zip(units["touchpoint_key"], units["name"], strict=True))

        def volume() -> ir.Table:
            t = owned_log()
            v = t.filter(ibis.or_(*[(t.touchpoint_key == k) & (t.name == n) for k, n in pairs]))
            return v.group_by(["touchpoint_key", "period"]).aggregate(n=v.count())

        frame = to_frame(con, ("team_volume", grain, owned, pairs), volume)
        frames.append(frame.assign(kind="volume"))
    cols = ["team_key", "period", "frictions", "volume", "friction_rate"]
    if not frames:
        return pd.DataFrame(columns=cols)
    df = pd.concat(frames, ignore_index=True)
    df["team_key"] = df["touchpoint_key"].map(owner)
    wide = df.pivot_table(
        index=["team_key", "period"], columns="kind", values="n", aggfunc="sum", fill_value=0
    ).reset_index()
    for col in ("frictions", "volume"):
        if col not in wide:
            wide[col] = 0
    wide["friction_rate"] = wide["frictions"] / wide["volume"].where(wide["volume"] > 0)
    return wide[cols]
