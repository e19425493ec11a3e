"""Journey definitions: the shipped ones load, and every mistake names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxm.errors import Invalid, NotFound
from cxm.journeys import definitions
from cxm.yamldoc import parse

GOOD = """\
name: orders
case: order_id
activities:
  - {event: order_placed}
  - {event: order_delivered}
start: [order_placed]
success: [order_delivered]
max_duration: 2w
"""


def test_shipped_journeys_load_for_the_demo() -> None:
    journeys = definitions.load()
    assert set(journeys) == {"order_to_delivery", "problem_to_resolution", "renewal"}
    assert journeys["order_to_delivery"].case == "order_id"
    assert journeys["problem_to_resolution"].case == "ticket_id"
    assert journeys["renewal"].case == definitions.CUSTOMER
    assert journeys["renewal"].failure == ("subscription_cancelled",)


def test_durations_are_read_in_hours() -> None:
    assert definitions.from_doc(parse(GOOD)).max_hours == 14 * 24


def test_an_unknown_outcome_names_its_line_and_the_known_activities() -> None:
    bad = GOOD.replace("success: [order_delivered]", "success: [order_shipped]")
    with pytest.raises(Invalid, match=r"orders.yaml line 7, success.0: 'order_shipped' .*"
                       r"known: order_delivered, order_placed"):  # fmt: skip
        definitions.from_doc(parse(bad, "orders.yaml"))


def test_a_bad_duration_names_its_line() -> None:
    bad = GOOD.replace("max_duration: 2w", "max_duration: two weeks")
    with pytest.raises(Invalid, match=r"orders.yaml line 8, max_duration: .*30d"):
        definitions.from_doc(parse(bad, "orders.yaml"))


def test_an_unknown_field_in_an_activity_names_its_line() -> None:
    bad = GOOD.replace("{event: order_delivered}", "{event: order_delivered, when: x}")
    with pytest.raises(Invalid, match=r"orders.yaml line 5, activities.1.when: Extra inputs"):
        definitions.from_doc(parse(bad, "orders.yaml"))


def test_a_journey_needs_an_outcome() -> None:
    bad = GOOD.replace("success: [order_delivered]\n", "")
    with pytest.raises(Invalid, match="at least one success or failure outcome"):
        definitions.from_doc(parse(bad, "orders.yaml"))


def test_a_company_file_replaces_a_shipped_journey_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "renewal.yaml").write_text(GOOD.replace("name: orders", "name: renewal"))
    assert definitions.load([tmp_path])["renewal"].case == "order_id"


def test_an_unknown_journey_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match="known: order_to_delivery, problem_to_resolution"):
        definitions.get("onboarding")


def test_a_case_must_name_a_property() -> None:
    bad = GOOD.replace("case: order_id", "case: order id")
    with pytest.raises(Invalid, match=r"orders.yaml line 2, case: .*event property name"):
        definitions.from_doc(parse(bad, "orders.yaml"))


def test_a_rule_for_every_event_keeps_the_event_name() -> None:
    text = GOOD.replace("{event: order_delivered}", "{event: '*', label: step}")
    with pytest.raises(Invalid, match=r"orders.yaml line 5, activities.1: .*remove 'label'"):
        definitions.from_doc(parse(text, "orders.yaml"))
    anything = definitions.from_doc(parse(GOOD.replace(
        "  - {event: order_delivered}\nstart: [order_placed]",
        "  - {event: '*'}\nstart: ['*']")))  # fmt: skip
    assert anything.any_event and anything.any_start


def test_require_trait_is_for_per_customer_journeys() -> None:
    bad = GOOD + "require_trait: plan\n"
    with pytest.raises(Invalid, match=r"orders.yaml line 9, require_trait: .*case: customer"):
        definitions.from_doc(parse(bad, "orders.yaml"))
    ok = definitions.from_doc(parse(bad.replace("case: order_id", "case: customer")))
    assert ok.require_trait == "plan"


def test_a_repeatable_label_must_be_an_activity() -> None:
    bad = GOOD + "repeatable: [order_shipped]\n"
    with pytest.raises(Invalid, match=r"line 9, repeatable.0: 'order_shipped' is not an activ"):
        definitions.from_doc(parse(bad, "orders.yaml"))
