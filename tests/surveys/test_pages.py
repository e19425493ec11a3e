"""The public response pages through the real app: flow, logic, validation, tokens, abuse."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import service as org
from cxm.surveys import service
from cxm.surveys.tables import invitations, response_answers, responses
from tests.surveys.conftest import add_customer, apply


def _invite(engine: Engine, **kwargs: object) -> str:
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "ada@example.com")
        inv = service.create_invitation(
            conn, "delivery_csat", customer_id=cid, touchpoint="delivery",
            trigger_event_id="evt-1", **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
    assert inv.token is not None and len(inv.token) >= 43  # 256 bits, url-safe
    return inv.token


def test_invitation_flow_through_logic_branch_saves_as_it_goes(
    app_client: TestClient, seeded: Engine
) -> None:
    token = _invite(seeded)
    first = app_client.get(f"/s/{token}")
    assert first.status_code == 200 and "How satisfied are you?" in first.text
    assert len(first.content) < 50_000 and "<script" not in first.text
    step = app_client.post(f"/s/{token}", data={"q": "csat", "a": "2", "lang": "en"})
    assert step.status_code == 200 and "What went wrong?" in step.text  # followed the redirect
    with seeded.connect() as conn:
        partial = conn.execute(sa.select(responses)).mappings().one()
    assert partial["completed"] is False and partial["csat"] == 2
    assert partial["touchpoint_key"] == "delivery" and partial["trigger_event_id"] == "evt-1"
    app_client.post(f"/s/{token}", data={"q": "what_wrong", "a": "<b>late</b> & cold"})
    done = app_client.post(f"/s/{token}", data={"q": "reason", "a": "speed"})
    assert done.status_code == 200 and "Thanks a lot!" in done.text
    with seeded.connect() as conn:
        row = conn.execute(sa.select(responses)).mappings().one()
        answers = dict(
            conn.execute(sa.select(response_answers.c.question_id, response_answers.c.value_text))
            .all()
        )  # fmt: skip
    assert row["completed"] is True and row["submitted_at"] is not None
    assert row["comment"] == "<b>late</b> & cold"  # stored as text
    assert answers["touchpoint"] == "delivery" and answers["reason"] == "speed"
    again = app_client.get(f"/s/{token}")
    assert again.status_code == 409 and "already been answered" in again.text


def test_branch_not_taken_for_a_happy_customer_and_derived_scores(
    app_client: TestClient, seeded: Engine
) -> None:
    token = _invite(seeded)
    step = app_client.post(f"/s/{token}", data={"q": "csat", "a": "5"})
    assert "Main reason?" in step.text and "What went wrong?" not in step.text


def test_required_and_out_of_range_answers_are_refused_on_the_server(
    app_client: TestClient, seeded: Engine
) -> None:
    token = _invite(seeded)
    empty = app_client.post(f"/s/{token}", data={"q": "csat"})
    assert empty.status_code == 422 and "required" in empty.text
    wrong = app_client.post(f"/s/{token}", data={"q": "csat", "a": "9"})
    assert wrong.status_code == 422 and "from 1 to 5" in wrong.text
    skip = app_client.post(f"/s/{token}", data={"q": "reason", "a": "speed"})
    assert skip.status_code == 422  # not the question on this page yet
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(responses)).scalar() == 0


def test_second_language_from_the_link(app_client: TestClient, seeded: Engine) -> None:
    token = _invite(seeded, language="de")
    page = app_client.get(f"/s/{token}")
    assert 'lang="de"' in page.text and "Wie zufrieden sind Sie?" in page.text
    assert "Weiter" in page.text


def test_expired_and_unknown_tokens_get_a_friendly_page(
    app_client: TestClient, seeded: Engine
) -> None:
    token = _invite(seeded, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    expired = app_client.get(f"/s/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    unknown = app_client.get("/s/not-a-real-token")
    assert unknown.status_code == 404 and "not known" in unknown.text


def test_open_link_honeypot_escaping_and_rate_limit(app_client: TestClient, seeded: Engine) -> None:
    with seeded.begin() as conn:
        apply(conn)
        org.ensure_touchpoints(conn, {"store_42"})
    page = app_client.get("/s/open/delivery_csat?channel=qr&touchpoint=store_42")
    assert page.status_code == 200
    bot = app_client.post(
        "/s/open/delivery_csat?channel=qr", data={"q": "csat", "a": "1", "website": "spam"}
    )
    assert bot.status_code == 200
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(responses)).scalar() == 0
    step = app_client.post(
        "/s/open/delivery_csat?channel=qr&touchpoint=store_42", data={"q": "csat", "a": "1"}
    )
    assert step.status_code == 200 and "What went wrong?" in step.text
    url = str(step.url).split("?")[0]
    bad = app_client.post(url, data={"q": "what_wrong", "a": "x" * 2001})
    assert bad.status_code == 422 and "2000 characters" in bad.text
    html = app_client.post(url, data={"q": "what_wrong", "a": "<script>alert(1)</script>"})
    assert "<script>alert" not in html.text
    with seeded.connect() as conn:
        row = conn.execute(sa.select(responses)).mappings().one()
    assert (row["channel"], row["touchpoint_key"], row["invitation_id"]) == ("qr", "store_42", None)
    codes = [
        app_client.post("/s/open/delivery_csat", data={"q": "csat", "a": "5"}).status_code
        for _ in range(25)
    ]
    assert 429 in codes


def test_unsubscribe_link_confirms_then_records(app_client: TestClient, seeded: Engine) -> None:
    token = _invite(seeded)
    confirm = app_client.get(f"/s/{token}/unsubscribe")
    assert confirm.status_code == 200 and "<form" in confirm.text
    done = app_client.post(f"/s/{token}/unsubscribe")
    assert done.status_code == 200
    with seeded.connect() as conn:
        cid = conn.execute(sa.select(invitations.c.customer_id)).scalar_one()
        assert service.is_unsubscribed(conn, cid)


REASONS = """\
key: purchase_reasons
title: {en: "Why did you buy from us?"}
questions:
  - id: reasons
    type: multiple_choice
    text: {en: "What made you choose us?"}
    options:
      - {value: "Price, value", text: {en: "Price, value for money"}}
      - {value: "Speed", text: {en: "Fast delivery"}}
  - {id: why_price, type: open_text, show_if: "reasons == 'Price, value'",
     text: {en: "What about our prices?"}}
  - {id: nps, type: nps, required: true, text: {en: "Would you recommend us?"}}
"""


def test_an_option_with_a_comma_round_trips_through_the_page(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        apply(conn, REASONS)
    step = app_client.post(
        "/s/open/purchase_reasons", data={"q": "reasons", "a": ["Price, value", "Speed"]}
    )
    # The next page is built from the stored answer read back: the logic still sees the option.
    assert step.status_code == 200 and "What about our prices?" in step.text
    rid = str(step.url).split("?")[0].rsplit("/", 1)[1]
    with seeded.connect() as conn:
        stored = conn.execute(
            sa.select(response_answers.c.value_list, response_answers.c.value_text).where(
                response_answers.c.question_id == "reasons"
            )
        ).one()
        session = service.session_for_open(conn, "purchase_reasons", rid)
    assert stored.value_list == ["Price, value", "Speed"]
    assert session.answers["reasons"] == ["Price, value", "Speed"]


def test_page_scores_accept_whole_numbers_as_written_and_refuse_fractions(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        apply(conn, REASONS)
    url = str(app_client.post("/s/open/purchase_reasons", data={"q": "reasons", "a": "Speed"})
              .url).split("?")[0]  # fmt: skip
    half = app_client.post(url, data={"q": "nps", "a": "7.5"})
    assert half.status_code == 422 and "7.5 is not a whole number" in half.text
    done = app_client.post(url, data={"q": "nps", "a": " 9.0 "})
    assert done.status_code == 200
    with seeded.connect() as conn:
        assert conn.execute(sa.select(responses.c.nps)).scalar() == 9


def _stored(engine: Engine) -> tuple[dict[str, object], dict[str, object]]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(responses)).mappings().one()
        answers = dict(
            conn.execute(
                sa.select(response_answers.c.question_id, response_answers.c.value_text)
            ).all()
        )
    return dict(row), answers


def test_a_changed_answer_drops_the_answers_it_now_hides(
    app_client: TestClient, seeded: Engine
) -> None:
    token = _invite(seeded)
    app_client.post(f"/s/{token}", data={"q": "csat", "a": "2"})
    app_client.post(f"/s/{token}", data={"q": "what_wrong", "a": "late"})
    assert _stored(seeded)[0]["comment"] == "late"
    back = app_client.post(f"/s/{token}", data={"q": "csat", "a": "5"})  # changed: no complaint
    assert back.status_code == 200 and "Main reason?" in back.text
    row, answers = _stored(seeded)
    assert (row["csat"], row["comment"], row["completed"]) == (5, None, False)
    assert set(answers) == {"csat", "touchpoint"}
    with seeded.begin() as conn:  # the same through the service, writing at once
        session = service.session_for_token(conn, token)
        service.save_answer(conn, session, "csat", ["1"])
        service.save_answer(conn, session, "what_wrong", ["cold"])
        service.save_answer(conn, session, "csat", ["4"])
    row, answers = _stored(seeded)
    assert (row["csat"], row["comment"]) == (4, None)
    assert set(answers) == {"csat", "touchpoint"}
