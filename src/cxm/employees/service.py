"""Employee experience results: pulse figures per group with the confidentiality rule, and
each team's EX beside the CX of the touchpoints it owns, with their relation over time.

Every figure about employees leaves this module through ``pulse_results``, ``pulse_comments``
or ``people_and_experience``, which apply ``confidential.disclosed`` first: no caller (page,
API, CLI) can get a group's figure that the rule hides.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from ibis.backends import BaseBackend
from scipy import stats as st
from sqlalchemy.engine import Engine

from cxm.employees import analytics as ax
from cxm.employees.confidential import DEFAULT_MINIMUM, Node, disclosed
from cxm.employees.stats import grouped_slope
from cxm.errors import Invalid
from cxm.insights import service as insights
from cxm.metrics.stats import nps_interval
from cxm.store.analytics import reading

LEVELS = ("company", "department", "team")
COMPANY = "company"


@dataclass(frozen=True)
class GroupResult:
    """One group's pulse figures in one period; ``hidden`` groups carry no figures at all."""

    period: str | None
    level: str
    key: str
    department_key: str | None
    hidden: bool
    respondents: int | None = None
    enps: float | None = None  # points, -100..100
    enps_low: float | None = None
    enps_high: float | None = None
    score_mean: float | None = None  # the 0-10 answer
    engagement: float | None = None  # the engagement index, 0-100
    engagement_low: float | None = None
    engagement_high: float | None = None


def _key(level: str, row: Any) -> str:
    if level == "company":
        return COMPANY
    value = row["team_key"] if level == "team" else row["department_key"]
    return str(value) if value is not None and value == value else "(no team)"


def _parent(level: str, row: Any) -> str | None:
    if level == "company":
        return None
    if level == "department":
        return f"company:{COMPANY}"
    return f"department:{_key('department', row)}"


def _plan(rows: dict[str, list[dict[str, Any]]], minimum: int) -> set[tuple[str, str]]:
    """What the rule shows of one period's tree; ``rows``: that period's rows by level."""
    nodes: dict[str, Node] = {}
    for level_no, level in enumerate(LEVELS):
        for row in rows.get(level, []):
            node = Node(_parent(level, row), level_no, int(row["n"]))
            nodes[f"{level}:{_key(level, row)}"] = node
    return {tuple(k.split(":", 1)) for k in disclosed(nodes, minimum)}  # type: ignore[misc]


def _by_period(groups: dict[str, pd.DataFrame]) -> dict[Any, dict[str, list[dict[str, Any]]]]:
    """period -> level -> rows, split once (not filtered again for every period)."""
    out: dict[Any, dict[str, list[dict[str, Any]]]] = {}
    for level in LEVELS:
        for row in groups[level].to_dict("records"):
            out.setdefault(row["period"], {}).setdefault(level, []).append(
                {str(k): v for k, v in row.items()}
            )
    return out


def _check_month_bounds(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Invalid unless each bound is the start of a calendar month (UTC): a range ending a day
    later than another would otherwise isolate that day's answers."""
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        utc = value if value.tzinfo is None else value.astimezone(dt.UTC)
        if (utc.day, utc.hour, utc.minute, utc.second, utc.microsecond) != (1, 0, 0, 0, 0):
            raise Invalid(
                f"{name}: employee results cover whole calendar months, so {name} must be the "
                f"first of a month at 00:00 UTC (for example "
                f"{utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0):%Y-%m-%d}), "
                f"not {value.isoformat()}"
            )


def kept_month_cells(cells: dict[str, pd.DataFrame], minimum: int) -> dict[str, list[str]]:
    """Per level, the month cells whose answers may count in a range longer than a month:
    those the confidentiality rule discloses in the tree of their own month.

    Two overlapping ranges (January to March, January to April) differ by whole months, and
    each month contributes only cells that may be shown on their own, together with the
    remainders the tree rule allows; so no difference of two ranges, nor of a range and its
    subgroups, isolates fewer than ``minimum`` people. ``cells``: ``ax.pulse_month_cells``.
    """
    out: dict[str, list[str]] = {level: [] for level in LEVELS}
    months = sorted(set(cells["company"]["month"]))
    for month in months:
        nodes: dict[str, Node] = {}
        cell_of: dict[str, tuple[str, str]] = {}
        for level_no, level in enumerate(LEVELS):
            df = cells[level]
            for row in df[df["month"] == month].to_dict("records"):
                node = f"{level}:{_key(level, row)}"
                nodes[node] = Node(_parent(level, row), level_no, int(row["n"]))
                cell_of[node] = (level, str(row["cell"]))
        for node in disclosed(nodes, minimum):
            level, cell = cell_of[node]
            out[level].append(cell)
    return out


def _with_emptied_groups(
    kept: dict[str, pd.DataFrame], every: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """The kept aggregates plus, with no answers (n 0, so hidden), the groups that answered
    in the range but whose every month cell was withheld."""
    out = {}
    for level, df in kept.items():
        keys = ["period", *ax.LEVEL_KEYS[level]]
        full = every[level]
        key_cols = [full[k].astype("string").fillna("") for k in keys]
        have = set(zip(*[df[k].astype("string").fillna("") for k in keys], strict=True))
        missing = [i for i, row in enumerate(zip(*key_cols, strict=True)) if row not in have]
        extra = full.iloc[missing][keys].assign(
            n=0,
            answers=0,
            promoters=0,
            passives=0,
            detractors=0,
            score_mean=float("nan"),
            eng_n=0,
            eng_mean=float("nan"),
            eng_sd=float("nan"),
        )
        out[level] = pd.concat([df, extra], ignore_index=True) if len(extra) else df
    return out


def engagement_interval(
    mean: float, sd: float | None, n: int, confidence: float = 0.95
) -> tuple[float, float] | None:
    """The t interval of a mean over ``n`` respondents: ``mean ± t(1 - a/2, n - 1) · sd /
    √n`` with a = 1 - confidence (Student's t; scipy ``stats.t``). None when ``n < 2`` (no
    spread to estimate)."""
    if n < 2 or sd is None or sd != sd:
        return None
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * float(sd) / math.sqrt(n)
    return mean - half, mean + half


def pulse_results(
    source: Engine | BaseBackend,
    by: str = "team",
    grain: str | None = None,
    *,
    minimum: int = DEFAULT_MINIMUM,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    survey: str | None = None,
) -> list[GroupResult]:
    """eNPS (points, with the adjusted Wald interval of Rocks 2016), the mean 0-10 answer and
    the engagement index (0-100, with its t interval; ``ax.pulse_groups``) per group
    (``by``: company | department | team) and period (``grain``: month | quarter | year, or
    None for the whole range). Groups the confidentiality rule hides come back with
    ``hidden`` and no numbers; the rule is decided on the whole tree of the period, so
    ``--by team`` and ``--by department`` never combine into a figure either one hides.
    """
    if by not in LEVELS:
        raise Invalid(f"by: use {', '.join(LEVELS)}, not {by!r}")
    if minimum < 1:
        raise Invalid("the minimum group size is at least 1")
    _check_month_bounds(start, end)
    with reading(source) as con:
        kept = None
        if ax.check_grain(grain) != "month":
            cells = ax.pulse_month_cells(con, start=start, end=end, survey=survey)
            kept = kept_month_cells(cells, minimum)
        groups = ax.pulse_groups(con, grain, start=start, end=end, survey=survey, kept=kept)
        if kept is not None:
            every = ax.pulse_groups(con, grain, start=start, end=end, survey=survey)
            groups = _with_emptied_groups(groups, every)
    out: list[GroupResult] = []
    periods = _by_period(groups)
    for period in sorted(periods):
        shown = _plan(periods[period], minimum)
        for row in periods[period].get(by, []):
            key = _key(by, row)
            label = period.isoformat() if grain else None
            dept = None if by == "company" else _key("department", row)
            if (by, key) not in shown:
                out.append(GroupResult(label, by, key, dept, True))
                continue
            iv = nps_interval(
                float(row["promoters"]), float(row["passives"]), float(row["detractors"])
            )
            e_mean = e_iv = None
            if row["eng_n"] > 0:
                e_mean = float(row["eng_mean"])
                e_iv = engagement_interval(e_mean, row["eng_sd"], int(row["eng_n"]))
            out.append(
                GroupResult(
                    label,
                    by,
                    key,
                    dept,
                    False,
                    int(row["n"]),
                    round(100 * iv.value, 1),
                    round(100 * iv.low, 1),
                    round(100 * iv.high, 1),
                    round(float(row["score_mean"]), 2),
                    None if e_mean is None else round(e_mean, 1),
                    None if e_iv is None else round(e_iv[0], 1),
                    None if e_iv is None else round(e_iv[1], 1),
                )
            )
    return out


def pulse_comments(
    source: Engine | BaseBackend,
    by: str,
    key: str,
    *,
    minimum: int = DEFAULT_MINIMUM,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[str]:
    """The pulse comments of one group (sorted, without who or when), or Invalid when the
    group's results are hidden by the confidentiality rule."""
    results = pulse_results(source, by, None, minimum=minimum, start=start, end=end)
    match = [r for r in results if r.key == key]
    if not match:
        raise Invalid(f"no pulse answers from {by} {key!r} in this range")
    if match[0].hidden:
        raise Invalid(
            f"{by} {key!r}: fewer than {minimum} people answered (or its figures "
            "would reveal a smaller group), so its comments are not shown"
        )
    with reading(source) as con:
        cells = ax.pulse_month_cells(con, start=start, end=end)
        kept = kept_month_cells(cells, minimum)[by]
        df = ax.pulse_comments(con, start=start, end=end, level=by, kept=kept)
    column = {"team": "team_key", "department": "department_key"}.get(by)
    if column is not None:
        df = df[df[column] == key]
    return sorted(str(c).strip() for c in df["comment"])


# ---- EX beside CX ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    """The slope of ``y`` on ``x`` (``lag`` periods later) over team-periods, with its interval.

    OLS weighted by respondents, standard errors clustered by team (statsmodels ``cluster``
    covariance), so repeated periods of one team are not counted as independent evidence.
    """

    x: str
    y: str
    lag: int
    slope: float | None
    low: float | None
    high: float | None
    p_value: float | None
    teams: int
    periods: int
    observations: int
    note: str = ""


@dataclass
class PeopleAndExperience:
    grain: str
    minimum: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)


def relation(
    panel: pd.DataFrame,
    x: str,
    y: str,
    lag: int = 0,
    confidence: float = 0.95,
    weight: str | None = "respondents",
) -> Relation:
    """Regress ``y`` at period t + ``lag`` on ``x`` at t across teams (one row per team and
    period in ``panel``, periods in order); needs at least 3 teams and 5 observations."""
    df = panel.sort_values(["team_key", "period"]).copy()
    periods = sorted(df["period"].unique())
    index = {p: i for i, p in enumerate(periods)}
    df["_t"] = df["period"].map(index)
    right = df[["team_key", "_t", y]].rename(columns={y: "_y"})
    right["_t"] = right["_t"] - lag
    cols = ["team_key", "_t", x] + ([weight] if weight else [])
    data = df[cols].merge(right, on=["team_key", "_t"]).dropna()
    data = data[data[weight] > 0] if weight else data
    teams = int(data["team_key"].nunique())
    n_periods = int(data["_t"].nunique())
    if teams < 3 or len(data) < 5 or data[x].nunique() < 2:
        return Relation(
            x,
            y,
            lag,
            None,
            None,
            None,
            None,
            teams,
            n_periods,
            len(data),
            "too few teams or periods with both figures",
        )
    X = sm.add_constant(data[x].astype(float))
    w = data[weight].astype(float) if weight else np.ones(len(data))
    groups = pd.factorize(data["team_key"])[0]
    fit = sm.WLS(data["_y"].astype(float), X, weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    low, high = fit.conf_int(alpha=1 - confidence).loc[x]
    return Relation(
        x,
        y,
        lag,
        float(fit.params[x]),
        float(low),
        float(high),
        float(fit.pvalues[x]),
        teams,
        n_periods,
        len(data),
    )


def friction_penalty(
    panel: pd.DataFrame, cells: pd.DataFrame, confidence: float = 0.95
) -> Relation:
    """The eNPS penalty of friction: the change in the latent 0-10 pulse answer per unit of
    the friction rate of the team's touchpoints in the same period (``stats.grouped_slope``
    on answer counts per team, period and score; clustered by team)."""
    rates = panel[["team_key", "period", "friction_rate"]]
    data = cells.merge(rates, on=["team_key", "period"], how="left").dropna()
    teams, periods = int(data["team_key"].nunique()), int(data["period"].nunique())
    try:
        s = grouped_slope(data, "friction_rate", confidence=confidence)
    except Invalid as exc:
        return Relation(
            "friction_rate",
            "score_mean",
            0,
            None,
            None,
            None,
            None,
            teams,
            periods,
            int(data["answers"].sum()),
            str(exc),
        )
    return Relation(
        "friction_rate",
        "score_mean",
        0,
        s.slope,
        s.low,
        s.high,
        s.p_value,
        teams,
        periods,
        s.answers,
        "interval regression of the 0-10 answers",
    )


def panel(con: BaseBackend, data_dir: Path, grain: str) -> pd.DataFrame:
    """One row per team and period: EX (``respondents``, ``promoters``, ``passives``,
    ``detractors``, ``score_mean``) beside CX (``csat_mean``, ``ces_mean``, ``friction_rate``)
    of the touchpoints the team owns. Unfiltered: callers apply the confidentiality rule."""
    groups = ax.pulse_groups(con, grain)
    ex = groups["team"].rename(columns={"n": "respondents"})
    ex = ex[ex["team_key"].notna()]
    cx = ax.team_cx(con, grain)
    signals = list(insights.signals(data_dir).values())
    fr = (
        ax.team_frictions(con, signals, grain)
        if signals
        else pd.DataFrame(columns=["team_key", "period", "frictions", "volume", "friction_rate"])
    )
    out = ex.merge(cx, on=["team_key", "period"], how="outer").merge(
        fr, on=["team_key", "period"], how="outer"
    )
    owns = set(cx["team_key"]) | set(fr["team_key"])
    # A team that owns no touchpoint meets no friction there: its rate is 0, not unknown.
    out.loc[~out["team_key"].isin(owns), "friction_rate"] = 0.0
    return out.sort_values(["team_key", "period"]).reset_index(drop=True)


def people_and_experience(
    source: Engine | BaseBackend,
    data_dir: Path,
    grain: str = "quarter",
    *,
    minimum: int = DEFAULT_MINIMUM,
    department: str | None = None,
) -> PeopleAndExperience:
    """Each team's eNPS over time beside the CSAT, CES and friction rate of its touchpoints,
    and two relations across teams: the eNPS penalty of friction (mean 0-10 pulse answer on the
    friction rate, same period) and EX this period against CX the next (CSAT mean on the
    pulse answer, lag 1). Team EX figures hidden by the confidentiality rule read as None."""
    ax.check_grain(grain)
    if grain is None:
        raise Invalid("grain: give month, quarter or year")
    with reading(source) as con:
        p = panel(con, data_dir, grain)
        cells = ax.pulse_score_cells(con, grain)
        # The shown figures are exactly those of pulse_results (the rule, month cells included).
        figures = {
            (str(r.period)[:10], r.key): r
            for r in pulse_results(con, "team", grain, minimum=minimum)
            if not r.hidden
        }
    result = PeopleAndExperience(grain, minimum)
    result.relations = [
        friction_penalty(p, cells),
        relation(p, "score_mean", "csat_mean", 1),
        relation(p, "score_mean", "ces_mean", 1),
    ]
    for _, row in p.iterrows():
        if department and row.get("department_key") != department:
            continue
        shown = figures.get((row["period"].isoformat()[:10], str(row["team_key"])))
        result.rows.append(
            {
                "team": row["team_key"],
                "period": row["period"].isoformat(),
                "respondents": shown.respondents if shown else None,
                "enps": shown.enps if shown else None,
                "score_mean": shown.score_mean if shown else None,
                "engagement": shown.engagement if shown else None,
                "csat_mean": _num(row.get("csat_mean")),
                "ces_mean": _num(row.get("ces_mean")),
                "friction_rate": _num(row.get("friction_rate"), 4),
            }
        )
    return result


def _num(value: Any, digits: int = 2) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else round(v, digits)
