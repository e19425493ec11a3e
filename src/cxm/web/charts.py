"""Plotly figures as JSON for the pages (the JavaScript is served from the plotly package)."""

from __future__ import annotations

import json
from typing import Any


def trend_chart(rows: list[dict[str, Any]], x: str, title: str) -> str | None:
    """A line with its confidence band; None when there is nothing to draw."""
    points = [r for r in rows if r.get("value") is not None]
    if not points:
        return None
    # Periods are labelled as people say them: 2026-09, not a midnight timestamp.
    xs = [str(r[x])[:7] if x == "month" else str(r[x])[:10] for r in points]
    low = [r["ci_low"] for r in points]
    high = [r["ci_high"] for r in points]
    figure = {
        "data": [
            {"x": xs + xs[::-1], "y": high + low[::-1], "fill": "toself", "type": "scatter",
             "mode": "lines", "line": {"width": 0}, "fillcolor": "rgba(11,92,173,0.15)",
             "name": "95% interval", "hoverinfo": "skip"},
            {"x": xs, "y": [r["value"] for r in points], "type": "scatter", "mode": "lines+markers",
             "name": title, "line": {"color": "#0b5cad"},
             "customdata": [[r["n"], r["ci_low"], r["ci_high"]] for r in points],
             "hovertemplate": "%{y:.1f} (n=%{customdata[0]}, 95% CI %{customdata[1]:.1f}"
                              " to %{customdata[2]:.1f})<extra></extra>"},
        ],
        "layout": {"title": {"text": title}, "height": 300, "showlegend": False,
                   "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
                   "yaxis": {"zeroline": True}, "xaxis": {"type": "category"}},
    }  # fmt: skip
    return json.dumps(figure, default=str)
