"""Partner pulse surveys: the people at a partner (contacts) by API and file, a scheduled round
through a real SMTP server, answers kept apart from customers', results on the partner
scorecard under the minimum group size and equal to an independent computation."""

from __future__ import annotations

import datetime as dt
import email
import json
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from scipy import stats as st
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.employees import partner_pulse, pulse
from cxm.employees.schemas import PartnerContactBody
from cxm.employees.tables import partner_contacts, partner_pulse_sends
from cxm.errors import Invalid, NotFound
from cxm.metrics import service as metrics
from cxm.metrics.stats import nps_interval
from cxm.org import auth, schemas
from cxm.org import service as org
from cxm.surveys import service as surveys
from cxm.surveys.facts import response_answers, responses_table
from tests.actions.conftest import smtp_server
from tests.web.factories import company
from tests.web.test_sessions import PASSWORD, sign_in

FIRST = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{20,})")


@pytest.fixture
def couriers(seeded: Engine) -> Engine:
    """SwiftPost runs home delivery; Fitters Ltd runs nothing; the shipped templates."""
    company(seeded)
    with seeded.begin() as conn:
        org.create_partner(
            conn,
            schemas.PartnerCreate(
                key="swiftpost", name="SwiftPost", kind="courier", touchpoints=["delivery"]
            ),
        )
        org.create_partner(conn, schemas.PartnerCreate(
            key="fitters", name="Fitters Ltd", kind="installer"))  # fmt: skip
        surveys.apply_templates(conn)
    return seeded


def _contacts(engine: Engine, partner: str, n: int) -> list[str]:
    """``n`` contacts at ``partner``; their ids in email order."""
    with engine.begin() as conn:
        partner_pulse.apply_contacts(conn, [
            (partner, PartnerContactBody(name=f"P {i}", email=f"p{i:02d}@{partner}.example"))
            for i in range(n)
        ])  # fmt: skip
        return [c.id for c in partner_pulse.list_contacts(conn, partner)]


def _answer_row(
    engine: Engine, contact: str, partner: str, when: dt.datetime, pnps: int,
    ease: int | None = None, communication: int | None = None, comment: str | None = None,
) -> None:  # fmt: skip
    """A completed partner pulse answer as an import stores it (hidden contact and partner)."""
    rid = secrets.token_hex(8)
    when = when.replace(tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(responses_table.insert().values(
            id=rid, survey_key="partner_pulse", survey_version=1, respondent_kind="partner",
            customer_id=None, employee_id=None, touchpoint_key="delivery", channel="email",
            started_at=when, submitted_at=when, completed=True, nps=pnps,
            nps_category=surveys.nps_category(pnps), comment=comment, source="import",
        ))  # fmt: skip
        rows: list[dict[str, Any]] = [
            {"question_id": "contact_id", "question_type": "hidden", "value_text": contact},
            {"question_id": "partner", "question_type": "hidden", "value_text": partner},
        ]
        for qid, value in (("ease", ease), ("communication", communication)):
            if value is not None:
                rows.append({"question_id": qid, "question_type": "rating",
                             "value_number": float(value)})  # fmt: skip
        conn.execute(response_answers.insert(), [
            {"response_id": rid, "value_number": None, "value_text": None, "value_list": None,
             "answered_at": when} | r for r in rows
        ])  # fmt: skip


# ---- contacts: API and file ----


def _headers(engine: Engine, email_: str, role: str, **where: str) -> dict[str, str]:
    with engine.begin() as conn:
        user_id = auth.create_user(conn, email_, role, **where)
        token = auth.create_api_key(conn, "read", user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def test_admin_adds_contacts_over_rest_and_bad_input_writes_nothing(
    app_client: TestClient, couriers: Engine, admin_headers: dict[str, str]
) -> None:
    url = "/api/v1/partners/swiftpost/contacts"
    one = app_client.post(
        url, headers=admin_headers, json={"name": "Ana Dispatch", "email": "Ana@SwiftPost.example"}
    )
    assert one.status_code == 201, one.text
    assert one.json() == {"created": 1, "updated": 0, "unchanged": 0}
    many = app_client.post(url, headers=admin_headers, json=[
        {"name": "Ana Dispatch", "email": "ana@swiftpost.example", "role": "dispatch lead"},
        {"name": "Ben Driver", "email": "ben@swiftpost.example"},
    ])  # fmt: skip
    assert many.json() == {"created": 1, "updated": 1, "unchanged": 0}
    listed = app_client.get(url, headers=admin_headers).json()
    assert [(c["name"], c["email"], c["role"], c["partner"]) for c in listed] == [
        ("Ana Dispatch", "ana@swiftpost.example", "dispatch lead", "swiftpost"),
        ("Ben Driver", "ben@swiftpost.example", None, "swiftpost"),
    ]
    bad = [
        ([{"name": "Cy", "email": "not-an-address"}, {"name": "Di", "email": "di@x.example"},
          {"name": "Ed", "email": "DI@x.example"}], 422,
         ["contact 1: email 'not-an-address' is not an email address",
          "contact 3: email 'di@x.example' is given twice (also contact 2)"]),
        ({"name": "", "email": "cy@x.example"}, 422, ["name"]),
        ({"name": "Cy", "email": "cy@x.example", "phone": "1"}, 422, ["phone"]),
    ]  # fmt: skip
    for body, status, says in bad:
        r = app_client.post(url, headers=admin_headers, json=body)
        assert r.status_code == status, r.text
        for text in says:
            assert text in r.text
    unknown = app_client.post("/api/v1/partners/nobody/contacts", headers=admin_headers,
                              json={"name": "Cy", "email": "cy@x.example"})  # fmt: skip
    assert unknown.status_code == 404 and "swiftpost" in unknown.text
    assert (
        app_client.get("/api/v1/partners/nobody/contacts", headers=admin_headers).status_code == 404
    )
    assert len(app_client.get(url, headers=admin_headers).json()) == 2  # nothing was written
    # Personal data of the partner's people: admins and the CX lead only.
    lead = _headers(couriers, "lead@x.example", "cx_lead")
    assert app_client.get(url, headers=lead).status_code == 200
    manager = _headers(couriers, "m@x.example", "manager", department_key="supply_chain")
    assert app_client.get(url, headers=manager).status_code == 403
    assert (
        app_client.post(url, headers=lead, json={"name": "X", "email": "x@x.example"}).status_code
        == 403
    )
    courier = _headers(couriers, "d@swiftpost.example", "partner", partner_key="swiftpost")
    assert app_client.get(url, headers=courier).status_code == 404


def test_contacts_from_a_file_all_or_nothing(couriers: Engine, tmp_path: Path) -> None:
    good = tmp_path / "contacts.csv"
    good.write_text("partner,name,email,role\nswiftpost,Ana,ana@swiftpost.example,lead\n"
                    "fitters,Fay,fay@fitters.example,\n", encoding="utf-8")  # fmt: skip
    with couriers.begin() as conn:
        assert (
            partner_pulse.import_contacts(conn, good).line() == "2 created, 0 updated, 0 unchanged"
        )
        assert partner_pulse.import_contacts(conn, good).unchanged == 2
    cases = [
        ("partner,name,email\nswiftpost,Ana,ana@x.example\nnobody,Bo,bo@x.example\n", None,
         NotFound, "partner 'nobody' does not exist"),
        ("partner,name,email\nswiftpost,Ana,ana@x.example\nswiftpost,,bo@x.example\n", None,
         Invalid, "row 3: name is empty"),
        ("partner,name,email\nswiftpost,Ana,bad\n", None, Invalid, "row 2: email 'bad'"),
        ("name,email\nAna,ana@x.example\n", None, Invalid, "no partner column"),
        ("partner,email\nswiftpost,ana@x.example\n", None, Invalid, "no name column"),
        ("partner,name,email\nfitters,Ana,ana@x.example\n", "swiftpost", Invalid,
         "row 2: partner 'fitters' is not 'swiftpost'"),
    ]  # fmt: skip
    for text, partner, error, says in cases:
        path = tmp_path / "bad.csv"
        path.write_text(text, encoding="utf-8")
        with couriers.begin() as conn, pytest.raises(error, match=re.escape(says)):
            partner_pulse.import_contacts(conn, path, partner)
    with couriers.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(partner_contacts)).scalar() == 2
    named = tmp_path / "named.csv"
    named.write_text("name,email\nBo,bo@swiftpost.example\n", encoding="utf-8")
    with couriers.begin() as conn:
        partner_pulse.import_contacts(conn, named, "swiftpost")
        assert [c.email for c in partner_pulse.list_contacts(conn, "swiftpost")] == [
            "ana@swiftpost.example", "bo@swiftpost.example"]  # fmt: skip


# ---- a scheduled round ----


def _token(message: str) -> str:
    text = email.message_from_string(message)
    body = next(p for p in text.walk() if p.get_content_type() == "text/plain")
    found = TOKEN.search(body.get_payload(decode=True).decode())  # type: ignore[union-attr]
    assert found, "the invitation carries no link"
    return found.group(1)


def test_a_partner_round_invites_each_contact_and_lands_in_their_partner(couriers: Engine) -> None:
    _contacts(couriers, "swiftpost", 7)
    _contacts(couriers, "fitters", 2)
    with smtp_server() as (port, inbox):
        settings = load_settings(smtp_port=port, smtp_host="127.0.0.1")
        with couriers.begin() as conn:
            pulse.set_schedule(conn, "partner_pulse", "quarterly", FIRST, reminder_days=5)
            first = pulse.run_due(conn, settings, FIRST)
        assert (first.rounds, first.sent, first.failed) == (1, 9, 0)
        tokens = {m["to"]: _token(m["data"]) for m in inbox.messages}
        swift = sorted(a for a in tokens if a.endswith("@swiftpost.example"))
        scores = [10, 9, 9, 8, 3, 10]
        when = FIRST + dt.timedelta(days=1)
        for address, score in zip(swift, scores, strict=False):
            with couriers.begin() as conn:
                s = surveys.session_for_token(conn, tokens[address], now=when)
                s = surveys.save_answer(conn, s, "pnps", [str(score)], now=when)
                s = surveys.save_answer(conn, s, "ease", ["4"], now=when)
                s = surveys.save_answer(conn, s, "communication", ["2"], now=when)
                surveys.save_answer(conn, s, "comment", ["Tell us earlier."], now=when)
        with couriers.begin() as conn:
            later = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=6))
            again = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=7))
            sends = conn.execute(sa.select(sa.func.count()).select_from(partner_pulse_sends))
            assert sends.scalar_one() == 9
        # The one swiftpost contact who did not answer and both at fitters: one reminder each.
        assert (later.rounds, later.reminded, again.reminded) == (0, 3, 0)
        assert {m["to"] for m in inbox.messages[9:]} == {
            swift[6],
            *(a for a in tokens if "fitters" in a),
        }
    with couriers.connect() as conn:
        kinds = conn.execute(sa.select(responses_table.c.respondent_kind).distinct()).scalars()
        assert set(kinds) >= {"partner"}
    card = partner_pulse.results(couriers, "swiftpost", minimum=5)
    iv = nps_interval(4, 1, 1)
    assert card["respondents"] == 6 and card["answers"] == 6
    assert card["pnps"] == pytest.approx(round(100 * iv.value, 1))
    assert card["comments"] == ["Tell us earlier."] * 6
    assert [(i["item"], i["mean"]) for i in card["items"]] == [
        ("ease", 4.0),
        ("communication", 2.0),
    ]
    # The partner answers never reach a customer metric at the partner's touchpoint.
    before = metrics.compute(couriers, "nps", ["touchpoint"])
    assert int(before.set_index("touchpoint").loc["delivery", "n"]) == 42 + 48
    assert partner_pulse.results(couriers, "fitters", minimum=5)["note"].startswith("no partner")


def test_only_partner_and_employee_surveys_can_be_scheduled(couriers: Engine) -> None:
    with couriers.begin() as conn, pytest.raises(Invalid, match="employee or partner"):
        pulse.set_schedule(conn, "relationship_nps", "monthly", FIRST)


# ---- results: confidentiality and an independent computation ----


def _range(engine: Engine, first: int, after: int) -> dict[str, Any]:
    """SwiftPost's pulse from the first of month ``first`` to the first of ``after``."""
    start, end = dt.datetime(2026, first, 1), dt.datetime(2026, after, 1)
    return partner_pulse.results(engine, "swiftpost", minimum=5, start=start, end=end)


def test_a_partner_below_the_minimum_shows_nothing(couriers: Engine) -> None:
    ids = _contacts(couriers, "swiftpost", 8)
    jan, feb = dt.datetime(2026, 1, 10), dt.datetime(2026, 2, 10)
    for c in ids[:4]:
        _answer_row(couriers, c, "swiftpost", jan, 0, 1, 1, comment="secret")
    card = partner_pulse.results(couriers, "swiftpost", minimum=5)
    assert card["hidden"] and card["respondents"] is None and card["pnps"] is None
    assert card["comments"] == [] and card["items"] == []
    for c in ids[:6]:
        _answer_row(couriers, c, "swiftpost", feb, 10, 5, 5, comment="fine")
    # January (4 people) never counts, alone or in a longer range: January to February minus
    # February would otherwise give away the four.
    both = _range(couriers, 1, 3)
    only_feb = _range(couriers, 2, 3)
    assert both["pnps"] == only_feb["pnps"] == 100.0
    assert both["respondents"] == only_feb["respondents"] == 6
    assert both["months_withheld"] == 1 and "secret" not in both["comments"]
    jan_only = _range(couriers, 1, 2)
    assert jan_only["hidden"] and jan_only["pnps"] is None
    # A range that does not start on the first of a month gives no figure at all.
    odd = partner_pulse.results(couriers, "swiftpost", minimum=5, start=dt.datetime(2026, 1, 2))
    assert odd["pnps"] is None and "whole calendar months" in odd["note"]
    assert partner_pulse.results(couriers, "swiftpost", minimum=4)["respondents"] == 6


def test_the_scorecard_pulse_equals_an_independent_computation(
    app_client: TestClient, couriers: Engine, admin_headers: dict[str, str]
) -> None:
    rng = np.random.default_rng(17)
    ids = _contacts(couriers, "swiftpost", 12)
    other = _contacts(couriers, "fitters", 6)
    rows = []
    for month in (4, 5, 6):
        for c in ids if month < 6 else ids[:3]:  # June: only 3 people, so it is left out
            if month == 6 or rng.random() < 0.8:
                when = dt.datetime(2026, month, int(rng.integers(1, 28)), 10)
                ease = None if rng.random() < 0.2 else int(rng.integers(1, 6))
                row = (c, when, int(rng.integers(0, 11)), ease, int(rng.integers(1, 6)))
                rows.append(row)
                _answer_row(couriers, c, "swiftpost", when, *row[2:])
    for c in other:
        _answer_row(couriers, c, "fitters", dt.datetime(2026, 5, 3), 0, 1, 1)
    df = pd.DataFrame(rows, columns=["contact", "when", "pnps", "ease", "communication"])
    shown = df.groupby(df["when"].dt.month)["contact"].nunique()
    assert sorted(shown[shown >= 5].index) == [4, 5]
    df = df[df["when"].dt.month.isin(shown[shown >= 5].index)]
    promoters = int((df["pnps"] >= 9).sum())
    detractors = int((df["pnps"] <= 6).sum())
    expected = nps_interval(promoters, len(df) - promoters - detractors, detractors)
    card = app_client.get(
        "/api/v1/partners/swiftpost/scorecard", headers=admin_headers,
        params={"start": "2026-04-01T00:00:00Z", "end": "2026-07-01T00:00:00Z"},
    ).json()["pulse"]  # fmt: skip
    assert card["respondents"] == df["contact"].nunique()
    assert card["answers"] == len(df)
    assert card["pnps"] == pytest.approx(100 * expected.value, abs=0.051)
    assert card["pnps_low"] == pytest.approx(100 * expected.low, abs=0.051)
    for item in card["items"]:
        values = df[item["item"]].dropna().astype(float)
        half = st.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        assert item["n"] == len(values)
        assert item["mean"] == pytest.approx(values.mean(), abs=0.006)
        assert item["low"] == pytest.approx(values.mean() - half, abs=0.006)
    with couriers.begin() as conn:
        auth.create_user(conn, "lead@x.example", "cx_lead", password=PASSWORD)
    assert sign_in(app_client, "lead@x.example") == 303
    page = app_client.get("/partners/swiftpost")
    assert page.status_code == 200 and "Partner NPS" in page.text
    assert f"{card['pnps']:.1f}" in page.text
    fitters = app_client.get("/api/v1/partners/fitters/scorecard", headers=admin_headers).json()
    assert fitters["pulse"]["respondents"] == 6 and fitters["pulse"]["pnps"] == -100.0


def test_the_cli_imports_and_lists_contacts(
    couriers: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cxm.cli.main import app as cli

    monkeypatch.setenv("CXM_DATABASE_URL", couriers.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    good = tmp_path / "contacts.csv"
    good.write_text("name,email,role\nAna,ana@swiftpost.example,lead\n", encoding="utf-8")
    made = CliRunner().invoke(cli, ["import", "partner-contacts", str(good), "--partner",
                                    "swiftpost"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "1 created, 0 updated, 0 unchanged" in made.output
    bad = CliRunner().invoke(cli, ["import", "partner-contacts", str(good)])
    assert bad.exit_code == 2 and "--partner" in bad.output
    listed = CliRunner().invoke(cli, ["employees", "partner-contacts", "swiftpost",
                                      "--format", "json"])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert [c["email"] for c in json.loads(listed.output)] == ["ana@swiftpost.example"]
    unknown = CliRunner().invoke(cli, ["employees", "partner-contacts", "nobody"])
    assert unknown.exit_code == 2 and "swiftpost" in unknown.output


def test_the_cli_shows_the_partner_pulse_under_the_rule(
    couriers: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cxm.cli.main import app as cli

    monkeypatch.setenv("CXM_DATABASE_URL", couriers.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    ids = _contacts(couriers, "swiftpost", 6)
    for i, c in enumerate(ids):
        _answer_row(couriers, c, "swiftpost", dt.datetime(2026, 2, 10), 10 if i else 2, 4, 3)
    shown = CliRunner().invoke(cli, ["employees", "partner-pulse", "swiftpost", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert (data["respondents"], data["pnps"]) == (6, round(100 * (5 - 1) / 6, 1))
    monkeypatch.setenv("CXM_EMPLOYEE_MIN_GROUP", "7")
    hidden = CliRunner().invoke(cli, ["employees", "partner-pulse", "swiftpost"])
    assert hidden.exit_code == 0 and "fewer than 7" in hidden.output
    assert "83.3" not in hidden.output and "66.7" not in hidden.output
    odd = CliRunner().invoke(cli, ["employees", "partner-pulse", "nobody"])
    assert odd.exit_code == 2 and "swiftpost" in odd.output
