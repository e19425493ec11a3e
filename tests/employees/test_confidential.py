"""Confidentiality: no pulse figure of a group under the minimum, not even by subtraction."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.employees import service
from cxm.employees.confidential import Node, disclosed
from cxm.errors import Invalid
from tests.employees.factories import answer, build_org, hire


@pytest.fixture
def company(engine: Engine) -> Engine:
    with engine.begin() as conn:
        build_org(conn)
        ids = hire(conn)
        for team, people in ids.items():
            for i, e in enumerate(people):
                answer(conn, e, 9 if i % 2 else 4, comment=f"note from {team}")
    return engine


def _shown(rows: list[service.GroupResult]) -> dict[str, int]:
    return {r.key: r.respondents for r in rows if not r.hidden and r.respondents is not None}


def test_a_group_under_the_minimum_is_hidden(company: Engine) -> None:
    teams = {r.key: r for r in service.pulse_results(company, "team")}
    assert teams["ops_b"].hidden and teams["ops_c"].hidden
    assert teams["ops_b"].enps is None and teams["ops_b"].respondents is None
    assert not teams["sales_a"].hidden and teams["sales_a"].respondents == 12


def test_nested_groups_never_reveal_a_small_remainder_by_subtraction(company: Engine) -> None:
    # ops (11) minus ops_a (6) would leave the 5 people of ops_b and ops_c together, which is
    # allowed at a minimum of 5; at a minimum of 6 that remainder must not be derivable.
    for minimum in (5, 6):
        depts = _shown(service.pulse_results(company, "department", minimum=minimum))
        teams = _shown(service.pulse_results(company, "team", minimum=minimum))
        company_n = _shown(service.pulse_results(company, "company", minimum=minimum))
        for dept, members in {"ops": ["ops_a", "ops_b", "ops_c"], "sales": ["sales_a"]}.items():
            if dept in depts:
                rest = depts[dept] - sum(teams.get(t, 0) for t in members)
                assert rest == 0 or rest >= minimum, (minimum, dept, rest)
        if company_n:
            for level in (depts, teams):
                rest = company_n["company"] - sum(level.values())
                assert rest == 0 or rest >= minimum, (minimum, rest)
    teams6 = _shown(service.pulse_results(company, "team", minimum=6))
    depts6 = _shown(service.pulse_results(company, "department", minimum=6))
    assert "ops" in depts6 and "ops_a" not in teams6  # ops_a hidden, not the department


def test_department_and_team_views_agree_on_what_is_hidden(company: Engine) -> None:
    # The rule is decided on the whole tree, so asking by team and by department separately
    # cannot be combined to reveal ops_b + ops_c (5 people) at a minimum of 6.
    teams = _shown(service.pulse_results(company, "team", minimum=6))
    depts = _shown(service.pulse_results(company, "department", minimum=6))
    assert not ("ops_a" in teams and "ops" in depts)


def test_comments_only_for_groups_shown_and_without_who(company: Engine) -> None:
    texts = service.pulse_comments(company, "team", "sales_a")
    assert texts == ["note from sales_a"] * 12
    with pytest.raises(Invalid, match="fewer than 5"):
        service.pulse_comments(company, "team", "ops_b")


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Node]:
    nodes = {"c": Node(None, 0, 0)}
    total = 0
    for d in range(draw(st.integers(1, 4))):
        dept_n = 0
        for t in range(draw(st.integers(1, 4))):
            n = draw(st.integers(0, 12))
            nodes[f"t{d}{t}"] = Node(f"d{d}", 2, n)
            dept_n += n
        nodes[f"d{d}"] = Node("c", 1, dept_n)
        total += dept_n
    nodes["c"] = Node(None, 0, total)
    return nodes


@settings(max_examples=300, deadline=None)
@given(trees(), st.integers(2, 7))
def test_no_shown_group_minus_its_shown_subgroups_leaves_a_small_remainder(
    nodes: dict[str, Node], minimum: int
) -> None:
    shown = disclosed(nodes, minimum)
    assert all(nodes[k].n >= minimum for k in shown)
    for a in shown:
        for level in (1, 2):
            below = [k for k in shown if nodes[k].level == level and _under(nodes, k, a)]
            if not below:
                continue
            rest = nodes[a].n - sum(nodes[k].n for k in below)
            assert rest == 0 or rest >= minimum


def _under(nodes: dict[str, Node], key: str, ancestor: str) -> bool:
    parent = nodes[key].parent
    while parent is not None:
        if parent == ancestor:
            return True
        parent = nodes[parent].parent
    return False


# ---- overlapping time ranges ----------------------------------------------------------------

JAN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
APR, MAY = dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


@pytest.fixture
def quarter_then_april(engine: Engine) -> Engine:
    """Everyone answers in January to March; in April only 2 of sales_a's 12 answer (both
    detractors), and the 6 of ops_a and 3 of ops_b (all promoters)."""
    with engine.begin() as conn:
        build_org(conn)
        ids = hire(conn)
        for month in (1, 2, 3):
            for people in ids.values():
                for i, e in enumerate(people):
                    answer(conn, e, 9 if i % 2 else 4, when=dt.datetime(2026, month, 10, 9,
                                                                     tzinfo=dt.UTC))  # fmt: skip
        april = dt.datetime(2026, 4, 10, 9, tzinfo=dt.UTC)
        for e in ids["sales_a"][:2]:
            answer(conn, e, 0, when=april, comment="april secret")
        for e in ids["ops_a"] + ids["ops_b"]:
            answer(conn, e, 10, when=april)
    return engine


def _figures(engine: Engine, by: str, end: dt.datetime) -> dict[str, tuple[float | None, ...]]:
    rows = service.pulse_results(engine, by, start=JAN, end=end)
    return {r.key: (r.hidden, r.respondents, r.enps, r.score_mean) for r in rows}


def test_two_overlapping_ranges_never_differ_by_a_small_group(quarter_then_april: Engine) -> None:
    for by in ("team", "department"):
        q1, to_april = _figures(quarter_then_april, by, APR), _figures(quarter_then_april, by, MAY)
        key = "sales_a" if by == "team" else "sales"
        # sales_a's 2 April answers would be January-April minus January-March: left out.
        assert q1[key] == to_april[key] and not q1[key][0], by
    # ops_a's 6 April answers may be shown (the company's 11 minus them leaves 5), so its
    # range moves with them; the ops department's 9 may not (the company minus ops is sales'
    # 2), so it stays as it was.
    teams_q1, teams_apr = (
        _figures(quarter_then_april, "team", APR),
        _figures(quarter_then_april, "team", MAY),
    )
    assert teams_apr["ops_a"][2] is not None and teams_apr["ops_a"][2] > teams_q1["ops_a"][2]
    depts_q1, depts_apr = (
        _figures(quarter_then_april, "department", APR),
        _figures(quarter_then_april, "department", MAY),
    )
    assert depts_q1["ops"] == depts_apr["ops"]
    # The April comments of the 2 are not read in a range either.
    texts = service.pulse_comments(quarter_then_april, "team", "sales_a", start=JAN, end=MAY)
    assert "april secret" not in texts


def test_ranges_cover_whole_months(quarter_then_april: Engine) -> None:
    for start, end in ((JAN.replace(day=2), APR), (JAN, APR.replace(hour=1))):
        with pytest.raises(Invalid, match="first of a month"):
            service.pulse_results(quarter_then_april, "team", start=start, end=end)


@st.composite
def monthly_trees(draw: st.DrawFn) -> list[dict[str, Node]]:
    """A company's answer counts per month: the same departments and teams, fresh counts."""
    shape = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 3)))]
    months = []
    for _ in range(draw(st.integers(2, 5))):
        nodes: dict[str, Node] = {}
        total = 0
        for d, teams in enumerate(shape):
            dept_n = 0
            for t in range(teams):
                n = draw(st.integers(0, 9))
                nodes[f"t{d}{t}"] = Node(f"d{d}", 2, n)
                dept_n += n
            nodes[f"d{d}"] = Node("c", 1, dept_n)
            total += dept_n
        nodes["c"] = Node(None, 0, total)
        months.append(nodes)
    return months


def _cells(months: list[dict[str, Node]]) -> dict[str, pd.DataFrame]:
    """The month cells of ``service.kept_month_cells`` for counts by month."""
    rows: dict[str, list[dict[str, object]]] = {"company": [], "department": [], "team": []}
    for m, nodes in enumerate(months):
        month = dt.date(2026, m + 1, 1)
        for key, node in nodes.items():
            if node.level == 0:
                rows["company"].append({"cell": f"{m}|c", "month": month, "n": node.n})
            elif node.level == 1:
                rows["department"].append({"cell": f"{m}|{key}", "month": month,
                                           "department_key": key, "n": node.n})  # fmt: skip
            else:
                rows["team"].append({"cell": f"{m}|{key}", "month": month, "n": node.n,
                                     "department_key": node.parent, "team_key": key})  # fmt: skip
    return {level: pd.DataFrame(r) for level, r in rows.items()}


@settings(max_examples=300, deadline=None)
@given(monthly_trees(), st.integers(2, 7), st.data())
def test_no_range_minus_an_overlapping_range_leaves_a_small_group(
    months: list[dict[str, Node]], minimum: int, data: st.DataObject
) -> None:
    kept = service.kept_month_cells(_cells(months), minimum)
    counted = {c for cells in kept.values() for c in cells}
    # Two ranges with the same start, one ending later (January-March, January-April); in the
    # generated company each person answers once, so a range's respondents add up by month.
    start = data.draw(st.integers(0, len(months) - 2))
    short = data.draw(st.integers(start + 1, len(months) - 1))
    for key in months[0]:

        def n(end: int, key: str = key) -> int:
            return sum(months[m][key].n for m in range(start, end) if f"{m}|{key}" in counted)

        rest = n(len(months)) - n(short)
        assert rest == 0 or rest >= minimum, (key, rest)
    for m, nodes in enumerate(months):  # what counts in a month is shown for that month alone
        shown = disclosed(nodes, minimum)
        assert {k for k in nodes if f"{m}|{k}" in counted} == shown
