"""Pages show names, not keys; every list has a total, pages, sorting and a CSV download; a
follow-up or notification that could not be sent shows on its case and on the status page."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.config import load_settings
from cxm.org.scope import Scope
from cxm.store import jobs
from cxm.surveys import distribution
from cxm.surveys import service as surveys
from cxm.yamldoc import parse, read
from tests.actions.conftest import DETRACTOR_RULES, add_customer, add_response, setup_org
from tests.web.test_pages import as_role

LEAD = Scope("cx_lead")
TEMPLATES = Path(surveys.__file__).parent / "templates"


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities read."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _detractors(engine: Engine, scores: list[int], name: str = "Ana Novak") -> str:
    """One customer with a detractor response per score at Home delivery; the rules run."""
    with engine.begin() as conn:
        setup_org(conn)
        surveys.apply_definition(conn, read(TEMPLATES / "relationship_nps.yaml"))
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        cid = add_customer(conn, "ana@example.com", {"name": name})
        for score in scores:
            add_response(conn, cid, "delivery", nps=score)
        service.run_rules(conn)
    return cid


def test_case_titles_and_pages_name_things_instead_of_keys(
    app_client: TestClient, seeded: Engine
) -> None:
    cid = _detractors(seeded, [4])
    with seeded.connect() as conn:
        (case,) = service.list_cases(conn, LEAD)
    # The survey's and the score's names, not "relationship_nps (NPS 4)".
    assert case["title"] == "Detractor: Relationship NPS (NPS 4 of 10)"
    client = as_role(app_client, seeded, "cx_lead")
    inbox = _text(client.get("/cases").text)
    assert "Home delivery" in inbox and "Delivery team" in inbox
    assert "delivery_team" not in inbox and "relationship_nps" not in inbox
    page = _text(client.get(f"/cases/{case['id']}").text)
    assert "Ana Novak" in page and "Home delivery" in page and "Delivery team" in page
    assert "Rule Detractor" in page  # the rule's name, not its key and source kind
    customer = client.get(f"/customers/{cid}").text
    heading = re.search(r"<h1>(.*?)</h1>", customer, re.S)
    assert heading and heading.group(1).strip() == "Ana Novak"
    feedback = _text(client.get("/feedback").text)
    assert "Ana Novak" in feedback and cid[:8] not in feedback


def test_feedback_names_score_bands_and_the_customer_page_names_identity_kinds(
    app_client: TestClient, seeded: Engine
) -> None:
    from cxm.customers.tables import customer_identities
    from tests.actions.conftest import T0

    cid = _detractors(seeded, [3])
    with seeded.begin() as conn:
        conn.execute(customer_identities.insert().values(
            kind="crm_id", value="C123", customer_id=cid, first_seen=T0))  # fmt: skip
        conn.execute(customer_identities.insert().values(
            kind="loyalty_id", value="L9", customer_id=cid, first_seen=T0))  # fmt: skip
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/feedback?band=low_csat").text
    options = dict(re.findall(r'<option value="([a-z_]+)" ?(?:selected)?>([^<]*)</option>', page))
    assert options["detractor"] == "Detractor" and options["promoter"] == "Promoter"
    assert options["low_csat"] == "Low CSAT (1-2)" and options["low_ces"] == "Low CES (1-3)"
    assert options["small_business"] == "Small business"
    assert 'value="low_csat" selected' in page  # the key stays what the filter sends
    badges = re.findall(r'<span class="badge[^"]*">([^<]*)</span>', client.get("/feedback").text)
    assert badges == ["Detractor"]
    kinds = re.findall(r'<li><span class="muted">([^<]*)</span> ([^<]*)</li>',
                       client.get(f"/customers/{cid}").text)  # fmt: skip
    assert sorted(kinds) == [("CRM id", "C123"), ("Email", "ana@example.com"),
                             ("Loyalty id", "L9")]  # fmt: skip


def test_case_inbox_has_a_total_pages_sorting_and_a_csv_of_the_whole_list(
    app_client: TestClient, seeded: Engine
) -> None:
    scores = [n % 7 for n in range(60)]  # 60 detractors: one more page than 50
    _detractors(seeded, scores)
    client = as_role(app_client, seeded, "cx_lead")
    first = client.get("/cases")
    assert "1\u201350 of 60 cases" in _text(first.text)  # an en dash between the bounds
    assert len(re.findall(r'<tr id="case-', first.text)) == 50
    second = client.get("/cases?offset=50")
    assert "51\u201360 of 60 cases" in _text(second.text)
    assert len(re.findall(r'<tr id="case-', second.text)) == 10
    shown = set(re.findall(r'<tr id="case-(\w+)"', first.text + second.text))
    assert len(shown) == 60  # the two pages neither overlap nor leave one out
    assert "of 60 cases" in _text(client.get("/cases?status=all").text)  # no filter at all

    def titles(query: str) -> list[str]:
        page = client.get(f"/cases?{query}").text
        return [html.unescape(t) for t in re.findall(r'<a href="/cases/\w+">([^<]+)</a>', page)]

    ascending = titles("sort=title")
    assert ascending == sorted(ascending) and ascending[0].endswith("(NPS 0 of 10)")
    descending = titles("sort=-title")
    assert descending[0].endswith("(NPS 6 of 10)")
    assert client.get("/cases?sort=password").status_code == 422

    download = client.get("/cases?format=csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == 60 and {r["id"] for r in rows} == shown
    assert {r["touchpoint"] for r in rows} == {"Home delivery"}
    assert {r["customer"] for r in rows} == {"Ana Novak"}


def test_feedback_surveys_and_rules_lists_count_sort_and_download(
    app_client: TestClient, seeded: Engine
) -> None:
    _detractors(seeded, [0, 3, 6])
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/feedback?sort=nps")
    assert "3 responses" in _text(page.text)
    scores = [int(s) for s in re.findall(r"NPS (\d+) <span", page.text)]
    assert scores == [0, 3, 6]
    assert [int(s) for s in re.findall(r"NPS (\d+) <span", client.get(
        "/feedback?sort=-nps").text)] == [6, 3, 0]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(client.get("/feedback?format=csv").text)))
    assert sorted(int(r["nps"]) for r in rows) == [0, 3, 6]
    assert {r["survey"] for r in rows} == {"Relationship NPS"}
    rules = list(csv.DictReader(io.StringIO(client.get("/rules?format=csv").text)))
    assert [r["key"] for r in rules] == ["detractor"] and rules[0]["cases_opened"] == "3"
    assert "1 rule" in _text(client.get("/rules").text)
    listed = list(csv.DictReader(io.StringIO(client.get("/surveys?format=csv").text)))
    assert [(r["key"], r["name"]) for r in listed] == [("relationship_nps", "Relationship NPS")]


def test_a_follow_up_that_cannot_be_sent_says_so_on_the_case_and_the_status_page(
    app_client: TestClient, seeded: Engine, tmp_path: Path, refused_port: int
) -> None:
    _detractors(seeded, [2])
    with seeded.begin() as conn:
        (case,) = service.list_cases(conn, LEAD)
        service.set_status(conn, LEAD, "lead@example.com", case["id"], "closed")
    # No mail server listens on this port: every attempt to send fails.
    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url),
                             smtp_port=refused_port)  # fmt: skip
    handlers = distribution.handlers(settings) | service.handlers(settings)
    for _ in range(3):  # plan the invitation, then try to send it
        jobs.run_due(seeded, handlers)
    client = as_role(app_client, seeded, "admin")
    page = _text(client.get(f"/cases/{case['id']}").text)
    followup = re.search(r"Follow-up (.*?) Notifications", page)
    assert followup is not None
    assert "failed" in followup.group(1) and "retrying" in followup.group(1)
    assert "no mail server answered" in followup.group(1)
    assert "Errno" not in followup.group(1) and "ConnectionRefusedError" not in followup.group(1)
    status = _text(client.get("/status").text)
    assert re.search(r"Failed attempts \d+", status) and "Failed attempts 0" not in status
    assert "survey invitation email" in status  # among the last errors
    assert as_role(app_client, seeded, "cx_lead").get("/status").status_code == 404


@pytest.mark.parametrize("explicit", [False, True])
def test_survey_links_use_the_address_the_server_is_reached_at(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, explicit: bool
) -> None:
    from cxm.web.app import create_app

    monkeypatch.delenv("CXM_BASE_URL", raising=False)
    with seeded.begin() as conn:
        surveys.apply_definition(conn, read(TEMPLATES / "relationship_nps.yaml"))
    extra = {"base_url": "https://cx.example.com"} if explicit else {}
    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url), **extra)
    with TestClient(create_app(settings, engine=seeded, run_worker=False),
                    base_url="http://cx.internal:8101") as raw:  # fmt: skip
        client = as_role(raw, seeded, "cx_lead")
        editor = html.unescape(client.get("/surveys/relationship_nps").text)
        listing = html.unescape(client.get("/surveys").text)
    expected = "https://cx.example.com" if explicit else "http://cx.internal:8101"
    assert f"{expected}/s/open/relationship_nps" in editor
    assert f"{expected}/s/open/relationship_nps" in listing
    assert "127.0.0.1:8000" not in editor + listing


def test_the_customer_list_counts_sorts_and_downloads_for_roles_that_read_everyone(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
        for n in range(55):
            add_customer(conn, f"c{n}@example.com", {"name": f"Customer Number {n:02d}"})
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/customers")
    assert "1\u201350 of 55 customers" in _text(page.text)
    assert "Customer Number" in page.text
    assert client.get("/customers?sort=password").status_code == 422
    rows = list(csv.DictReader(io.StringIO(client.get("/customers?format=csv").text)))
    assert len(rows) == 55 and {r["name"] for r in rows} == {f"Customer Number {n:02d}"
                                                              for n in range(55)}  # fmt: skip
    manager = as_role(app_client, seeded, "manager")
    assert "Customer Number" not in manager.get("/customers").text  # managers search instead


def test_the_inbox_names_each_case_s_customer_and_the_history_names_the_rule(
    app_client: TestClient, seeded: Engine
) -> None:
    _detractors(seeded, [4], name="Bo Lind")
    client = as_role(app_client, seeded, "cx_lead")
    inbox = client.get("/cases").text
    headings = [_text(h).strip() for h in re.findall(r"<th scope=\"col\">(.*?)</th>", inbox)]
    assert "Customer" in headings
    (row,) = re.findall(r'<tr id="case-(\w+)">(.*?)</tr>', inbox, re.S)
    assert "Bo Lind" in _text(row[1])
    history = _text(client.get(f"/cases/{row[0]}").text).split("History", 1)[1]
    assert "rule: Detractor" in history and "rule detractor" not in history
    viewer = _text(as_role(app_client, seeded, "viewer").get("/cases").text)
    assert "Bo Lind" not in viewer  # no personal data for viewers


def test_the_case_csv_holds_every_case_past_the_thousand_one_read_takes(
    app_client: TestClient, seeded: Engine
) -> None:
    _detractors(seeded, [n % 7 for n in range(1003)])
    client = as_role(app_client, seeded, "cx_lead")
    assert "of 1003 cases" in _text(client.get("/cases").text)
    rows = list(csv.DictReader(io.StringIO(client.get("/cases?format=csv&sort=title").text)))
    assert len(rows) == 1003 and len({r["id"] for r in rows}) == 1003
    titles = [r["title"] for r in rows]
    assert titles == sorted(titles)  # the list's order across every read


def test_the_journeys_list_names_cases_and_steps_in_words(
    app_client: TestClient, seeded: Engine
) -> None:
    page = _text(as_role(app_client, seeded, "cx_lead").get("/journeys").text)
    assert "Order to delivery" in page and "Order placed (web)" in page
    assert "Order id" in page and "Subscription renewed" in page
    for key in ("order_to_delivery", "order_placed", "order_id", "subscription_renewed"):
        assert key not in page, key


def test_feedback_and_the_scorecard_name_themes(app_client: TestClient, seeded: Engine) -> None:
    from cxm.text import jobs as text_jobs
    from cxm.text import taxonomy
    from tests.web.factories import company

    company(seeded)  # "so friendly" at the support chat
    with seeded.begin() as conn:
        taxonomy.apply(conn, taxonomy.starter_doc())
    text_jobs.annotate_bulk(seeded, semantic=False)
    client = as_role(app_client, seeded, "cx_lead")
    for path in ("/feedback", "/feedback?theme=staff_friendliness", "/departments/service"):
        page = _text(client.get(path).text)
        assert "Staff friendliness" in page, path
        assert "staff_friendliness" not in page, path  # the key stays in URLs and values only
