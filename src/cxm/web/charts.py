"""Plotly figures as JSON for the pages (the JavaScript is served from the plotly package)."""

from __future__ import annotations

import json
from typing import Any

from cxm.names import period_label

__all__ = ["BAND", "GRAIN_WORDS", "band_outline", "period_label", "trend_chart", "trend_rows"]

BAND = "95% confidence interval"
GRAIN_WORDS = {"month": "month", "quarter": "quarter"}


def trend_rows(board: Any, metric: str) -> tuple[list[dict[str, Any]], str]:
    """A metric's trend on ``board`` (a ``web.board.Board``) as (rows, grain): by month, or by
    quarter when fewer than three months reach the metric's minimum sample and quarters show
    more, so a department with a few answers a month still gets a trend."""
    months = board.rows(metric, ["month"])
    shown = sum(r.get("value") is not None for r in months)
    if shown >= 3:
        return months, "month"
    quarters = board.rows(metric, ["quarter"])
    if sum(r.get("value") is not None for r in quarters) > shown:
        return quarters, "quarter"
    return months, "month"


def band_outline(
    xs: list[str], rows: list[dict[str, Any]]
) -> tuple[list[str | None], list[float | None]]:
    """The outline of the interval band as (x, y) for one ``fill: toself`` trace: each run of
    periods that have a figure is its own closed shape (upper bound forth, lower bound back),
    runs separated by a None, so the band breaks where a period has no figure instead of
    bridging it (Plotly closes each segment of a trace with gaps into its own shape)."""
    runs: list[list[int]] = [[]]
    for i, r in enumerate(rows):
        if r.get("value") is None or r.get("ci_low") is None or r.get("ci_high") is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(i)
    bx: list[str | None] = []
    by: list[float | None] = []
    for run in filter(None, runs):
        if bx:
            bx.append(None)
            by.append(None)
        bx += [xs[i] for i in run] + [xs[i] for i in reversed(run)]
        by += [rows[i]["ci_high"] for i in run] + [rows[i]["ci_low"] for i in reversed(run)]
    return bx, by


def trend_chart(
    rows: list[dict[str, Any]], x: str, title: str, y_title: str | None = None
) -> str | None:
    """A line with its 95% confidence band, both named in the legend, and titled axes; None
    when there is nothing to draw.

    Every period in ``rows`` keeps its place on the axis: one whose value was withheld (fewer
    answers than the metric's minimum sample) is a gap, not a vanished month, so six months
    of data never read as a two-point trend.
    """
    if not any(r.get("value") is not None for r in rows):
        return None
    # Periods are labelled as people say them: 2026-09, not a midnight timestamp.
    xs = [period_label(r[x], x) for r in rows]
    bx, by = band_outline(xs, rows)
    withheld = [xv for xv, r in zip(xs, rows, strict=True) if r.get("value") is None]
    figure = {
        "data": [
            {"x": bx, "y": by, "fill": "toself", "type": "scatter", "connectgaps": False,
             "mode": "lines", "line": {"width": 0}, "fillcolor": "rgba(11,92,173,0.15)",
             "name": BAND, "hoverinfo": "skip"},
            {"x": xs, "y": [r.get("value") for r in rows], "type": "scatter",
             "mode": "lines+markers", "name": title, "line": {"color": "#0b5cad"},
             "connectgaps": False,
             "customdata": [[r.get("n"), r.get("ci_low"), r.get("ci_high")] for r in rows],
             "hovertemplate": "%{y:.1f} (n=%{customdata[0]}, 95% CI %{customdata[1]:.1f}"
                              " to %{customdata[2]:.1f})<extra></extra>"},
        ],
        "layout": {"title": {"text": title}, "height": 340, "showlegend": True,
                   "legend": {"orientation": "h", "x": 0, "y": -0.3},
                   "margin": {"l": 60, "r": 10, "t": 40, "b": 90},
                   "yaxis": {"zeroline": True, "title": {"text": y_title or title}},
                   "xaxis": {"type": "category", "categoryorder": "array", "categoryarray": xs,
                             "title": {"text": "Month" if x == "month" else x.capitalize()}}},
    }  # fmt: skip
    if withheld:
        figure["layout"]["annotations"] = [{  # type: ignore[index]
            "text": f"No figure for {', '.join(withheld)}: too few answers",
            "xref": "paper", "yref": "paper", "x": 0, "y": 1.0, "xanchor": "left",
            "yanchor": "bottom", "showarrow": False, "font": {"size": 11, "color": "#57606a"},
        }]  # fmt: skip
    return json.dumps(figure, default=str)
