"""Confidentiality: no pulse figure of a group under the minimum, not even by subtraction."""

from __future__ import annotations

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
