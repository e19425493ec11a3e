"""Charts a reader understands: titled axes, the interval band named in the legend, every
period in its place (a withheld month is a gap, not a vanished one), the period stated."""

from __future__ import annotations

import datetime as dt
import json
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.surveys.tables import responses
from cxm.web.charts import BAND, period_label, trend_chart
from tests.web.factories import add_responses, company
from tests.web.test_pages import as_role


def _month(m: int, value: float | None, n: int) -> dict[str, object]:
    low = None if value is None else value - 5
    high = None if value is None else value + 5
    return {"month": dt.datetime(2026, m, 1), "value": value, "ci_low": low, "ci_high": high,
            "n": n}  # fmt: skip


def test_a_trend_keeps_every_month_and_names_its_axes_and_band() -> None:
    rows = [_month(5, 60.0, 40), _month(6, None, 12), _month(7, 70.0, 41), _month(8, None, 3),
            _month(9, 65.0, 50), _month(10, 72.0, 44)]  # fmt: skip
    figure = json.loads(trend_chart(rows, "month", "CSAT by month", "CSAT (%)") or "{}")
    band, line = figure["data"]
    assert line["x"] == ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    assert line["y"] == [60.0, None, 70.0, None, 65.0, 72.0] and line["connectgaps"] is False
    assert band["name"] == BAND and figure["layout"]["showlegend"] is True
    assert figure["layout"]["yaxis"]["title"]["text"] == "CSAT (%)"
    assert figure["layout"]["xaxis"]["title"]["text"] == "Month"
    note = figure["layout"]["annotations"][0]["text"]
    assert "2026-06" in note and "2026-08" in note and "too few answers" in note
    assert trend_chart([_month(5, None, 2)], "month", "x") is None


def test_quarters_read_as_people_say_them() -> None:
    assert period_label(dt.datetime(2026, 8, 1), "quarter") == "2026 Q3"
    assert period_label(dt.date(2026, 1, 1), "quarter") == "2026 Q1"
    assert period_label(dt.datetime(2026, 9, 1), "month") == "2026-09"


def test_the_overview_states_its_period_when_from_and_to_are_empty(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    assert "Period: every response to date" in client.get("/").text
    narrowed = client.get("/?start=2026-01-01&end=2026-03-31").text
    assert "Period: 2026-01-01 to 2026-03-31" in narrowed


def _segments(xs: list[object], ys: list[object]) -> list[list[tuple[object, object]]]:
    """A trace's points split at its gaps (None), as Plotly draws it with connectgaps off."""
    out: list[list[tuple[object, object]]] = [[]]
    for xv, yv in zip(xs, ys, strict=True):
        if xv is None or yv is None:
            out.append([])
        else:
            out[-1].append((xv, yv))
    return [s for s in out if s]


def test_the_band_and_the_line_break_where_a_month_has_no_figure() -> None:
    rows = [_month(5, 60.0, 40), _month(6, 62.0, 40), _month(7, None, 12),
            _month(8, 70.0, 41), _month(9, None, 3), _month(10, 72.0, 44)]  # fmt: skip
    figure = json.loads(trend_chart(rows, "month", "CSAT by month") or "{}")
    band, line = figure["data"]
    assert band["fill"] == "toself" and band["connectgaps"] is False
    # One closed shape per run of months with a figure: the upper bounds forth, the lower back.
    assert _segments(band["x"], band["y"]) == [
        [("2026-05", 65.0), ("2026-06", 67.0), ("2026-06", 57.0), ("2026-05", 55.0)],
        [("2026-08", 75.0), ("2026-08", 65.0)],
        [("2026-10", 77.0), ("2026-10", 67.0)],
    ]
    assert "2026-07" not in band["x"] and "2026-09" not in band["x"]
    # The line breaks at the same months.
    assert [[p[0] for p in s] for s in _segments(line["x"], line["y"])] == [
        ["2026-05", "2026-06"],
        ["2026-08"],
        ["2026-10"],
    ]


def test_a_figure_carries_the_same_interval_on_every_page_and_in_the_api(
    app_client: TestClient, seeded: Engine
) -> None:
    import html
    import re

    from tests.conftest import make_key

    company(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    score = re.compile(r'<span class="score"[^>]*?data-query="([^"]+)"[^>]*title="([^"]+)"')
    titles: dict[str, set[str]] = {}
    pages: dict[str, set[str]] = {}
    for path in ("/", "/departments", "/departments/supply_chain", "/departments/billing"):
        for query, title in score.findall(client.get(path).text):
            titles.setdefault(html.unescape(query), set()).add(html.unescape(title))
            pages.setdefault(html.unescape(query), set()).add(path)
    # A department's headline shows on the overview, the list and its scorecard.
    assert sum(len(p) > 1 for p in pages.values()) >= 2, pages
    headers = make_key(seeded, "read")
    for raw, seen in titles.items():
        assert len(seen) == 1, (raw, seen)  # one interval wherever the figure shows
        q = json.loads(raw)
        params = [("filter", f"{k}={v}") for k, v in q["filters"].items()]
        params += [(k, q[k]) for k in ("start", "end") if q[k]]
        (row,) = client.get(f"/api/v1/metrics/{q['metric']}", params=params,
                            headers=headers).json()["rows"]  # fmt: skip
        expected = f"n={row['n']}, 95% CI {row['ci_low']:.1f} to {row['ci_high']:.1f}"
        assert next(iter(seen)).startswith(expected), (raw, seen, expected)


def _not_counted(engine: Engine) -> None:
    """Responses no customer score counts: an employee's, later; an unfinished one, earlier."""
    base = {"survey_key": "relationship_nps", "survey_version": 1, "customer_id": None,
            "employee_id": None, "invitation_id": None, "trigger_event_id": None,
            "touchpoint_key": "delivery", "channel": None, "language": "en", "nps": 9,
            "nps_category": "promoter", "csat": None, "ces": None, "comment": None,
            "source": "import"}  # fmt: skip
    late = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    early = dt.datetime(2026, 2, 3, 9, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(responses.insert(), [
            {**base, "id": "employee-late", "respondent_kind": "employee", "started_at": late,
             "submitted_at": late, "completed": True},
            {**base, "id": "unfinished-early", "respondent_kind": "customer",
             "started_at": early, "submitted_at": early, "completed": False},
        ])  # fmt: skip


def _span_by_sql(engine: Engine, department: str | None = None) -> tuple[str, str]:
    """First and last submitted_at dates of completed customer responses, in plain SQL."""
    where = "r.respondent_kind = 'customer' AND r.completed"
    if department:
        where += " AND t.department_key = :department"
    sql = ("SELECT min(r.submitted_at), max(r.submitted_at) FROM responses r "
           f"LEFT JOIN touchpoints t ON t.key = r.touchpoint_key WHERE {where}")  # fmt: skip
    with engine.connect() as conn:
        first, last = conn.execute(sa.text(sql), {"department": department}).one()
    return first.date().isoformat(), last.date().isoformat()


def _span_on_page(html: str) -> tuple[str, str]:
    found = re.search(r"every response to date, <span class=\"span-first\">([\d-]+)</span> to "
                      r"<span class=\"span-last\">([\d-]+)</span>", html)  # fmt: skip
    assert found, "the period line names no dates"
    return found.group(1), found.group(2)


def test_the_period_line_names_the_first_and_last_response_counted(
    app_client: TestClient, seeded: Engine
) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    assert "Period: no responses yet." in client.get("/").text
    company(seeded)
    _not_counted(seeded)
    add_responses(seeded, "invoice", [8] * 3, month=10)
    app_client.app.state.frame_cache = None  # type: ignore[attr-defined]
    overview = _span_on_page(client.get("/").text)
    assert overview == _span_by_sql(seeded)
    assert "2026-02-03" not in overview and "2026-11-20" not in overview  # not counted
    delivery = _span_on_page(client.get("/departments/supply_chain").text)
    assert delivery == _span_by_sql(seeded, "supply_chain")
    assert delivery != overview
    # With From and To given, the page states them.
    assert (
        "Period: 2026-09-01 to 2026-09-30." in client.get("/?start=2026-09-01&end=2026-09-30").text
    )
