"""Hostile and careless input to the API answers a clear 4xx in the documented error body."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.apitypes import MAX_OFFSET
from cxm.errors import Invalid
from cxm.org import auth
from cxm.org import service as org
from cxm.yamldoc import MAX_DEPTH, parse
from tests.web.test_pages import _csrf, as_role

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
DEEP_BLOCK = "- " * 5000 + "x\n"  # 5,000 nested sequences
DEEP_FLOW = "[" * 5000 + "]" * 5000
INVOICE = """\
touchpoints:
  - {key: invoice, name: Invoice, channel: billing, stage: pay, owner: {department: billing}}
"""


def _is_error_body(body: object) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"detail", "errors"}
        and isinstance(body["detail"], str)
        and isinstance(body["errors"], list)
    )


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/customers", "/api/v1/text/annotations"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("offset", "-1"), ("limit", "-5"), ("limit", "0"), ("offset", "9" * 20), ("limit", "9" * 20),
     ("offset", str(MAX_OFFSET + 1))],
)  # fmt: skip
def test_negative_or_huge_paging_answers_422_with_the_allowed_range(
    app_client: TestClient, admin_headers: dict[str, str], path: str, name: str, value: str
) -> None:
    response = app_client.get(path, params={name: value}, headers=admin_headers)
    assert response.status_code == 422
    body = response.json()
    assert _is_error_body(body)
    assert body["errors"][0]["field"] == f"query.{name}"


def test_paging_inside_the_bounds_is_served(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    for path in ("/api/v1/cases", "/api/v1/customers", "/api/v1/text/annotations"):
        response = app_client.get(path, params={"offset": MAX_OFFSET, "limit": 1},
                                  headers=admin_headers)  # fmt: skip
        assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    ("path", "field"),
    [("/api/v1/departments/billing", "name"), ("/api/v1/teams/billing_team", "name"),
     ("/api/v1/teams/billing_team", "is_default"), ("/api/v1/touchpoints/invoice", "name"),
     ("/api/v1/touchpoints/invoice", "channel"), ("/api/v1/touchpoints/invoice", "stage"),
     ("/api/v1/touchpoints/invoice", "department_key"),
     ("/api/v1/touchpoints/invoice", "contributors")],
)  # fmt: skip
def test_patch_with_null_for_a_required_field_answers_422_and_changes_nothing(
    app_client: TestClient, admin_headers: dict[str, str], seeded: Engine, path: str, field: str
) -> None:
    with seeded.begin() as conn:
        org.apply_org(conn, parse(INVOICE))
    before = app_client.get(path, headers=admin_headers).json()
    response = app_client.patch(path, json={field: None}, headers=admin_headers)
    assert response.status_code == 422
    body = response.json()
    assert _is_error_body(body)
    assert body["errors"] == [
        {
            "field": field,
            "message": "may not be null; leave the field out to keep its current value",
        }
    ]
    assert app_client.get(path, headers=admin_headers).json() == before


def test_patch_may_still_clear_an_optional_field(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = app_client.patch(
        "/api/v1/departments/billing", json={"description": None}, headers=admin_headers
    )
    assert response.status_code == 200 and response.json()["description"] is None


@pytest.mark.timeout(30)  # a parser that expanded the aliases would not finish at all
@pytest.mark.parametrize("text", [BILLION_LAUGHS, DEEP_BLOCK, DEEP_FLOW, "a: 2026-13-45"])
def test_hostile_yaml_is_refused_before_it_is_expanded(text: str) -> None:
    # Correctness only (speed is for benchmarks): the document is refused, naming its source.
    with pytest.raises(Invalid) as refused:
        parse(text, "upload")
    assert str(refused.value).startswith("upload")


def test_yaml_nested_to_the_limit_is_still_read() -> None:
    doc = parse("- " * MAX_DEPTH + "x\n")
    depth, value = 0, doc.data
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert (depth, value) == (MAX_DEPTH, "x")


def test_a_few_aliases_are_still_expanded() -> None:
    doc = parse("base: &b {sla: 4h}\nrules: [*b, *b]\n")
    assert doc.data["rules"] == [{"sla": "4h"}, {"sla": "4h"}]


@pytest.mark.timeout(60)  # an expanded bomb would never answer
@pytest.mark.parametrize("text", [BILLION_LAUGHS, DEEP_FLOW])
def test_a_yaml_bomb_on_the_rules_api_answers_422(
    app_client: TestClient, admin_headers: dict[str, str], text: str
) -> None:
    response = app_client.put(
        "/api/v1/rules", content=text, headers={**admin_headers, "content-type": "application/yaml"}
    )
    assert response.status_code == 422 and _is_error_body(response.json())


def test_a_rules_body_over_the_size_limit_answers_413(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = app_client.put(
        "/api/v1/rules", content="#" * (3 * 1024 * 1024), headers=admin_headers
    )
    assert response.status_code == 413 and _is_error_body(response.json())


@pytest.mark.timeout(60)
def test_org_upload_nested_5000_levels_answers_422(app_client: TestClient, seeded: Engine) -> None:
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/settings").text)
    response = client.post(
        "/settings/org", data={"csrf_token": token}, files={"file": ("org.yaml", DEEP_BLOCK)}
    )
    assert response.status_code == 422 and "nested more than" in response.text


def test_every_kind_of_4xx_has_the_documented_error_body(
    app_client: TestClient, read_headers: dict[str, str]
) -> None:
    answers = [
        app_client.get("/api/v1/departments"),  # 401
        app_client.post("/api/v1/departments", json={}, headers=read_headers),  # 403
        app_client.get("/api/v1/departments/nowhere", headers=read_headers),  # 404
        app_client.get("/api/v1/cases", params={"limit": "many"}, headers=read_headers),  # 422
        app_client.post("/api/v1/interactions", content=b"{", headers=read_headers),  # 403
    ]
    assert [a.status_code for a in answers] == [401, 403, 404, 422, 403]
    assert all(_is_error_body(a.json()) for a in answers)
    assert answers[3].json()["errors"][0]["field"] == "query.limit"


def test_the_schema_documents_the_error_body_that_4xx_answers_carry(
    app_client: TestClient,
) -> None:
    schema = app_client.get("/api/openapi.json").json()
    error = schema["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["detail"]["type"] == "string"
    assert error["properties"]["errors"]["type"] == "array"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status in ("401", "403", "422"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_every_api_route_declares_its_response_model(app_client: TestClient) -> None:
    schema = app_client.get("/api/openapi.json").json()
    untyped = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                content = answer.get("content", {})
                body = content.get("application/json", {}).get("schema", {})
                # A file (a PDF, an image) is typed by its media type and a binary schema.
                binary = any(
                    kind != "application/json" and v.get("schema", {}).get("format") == "binary"
                    for kind, v in content.items()
                )
                if not body and not binary:
                    untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []


def _fail(engine: Engine, at: dt.datetime, password: str = "wrong") -> None:
    with engine.begin() as conn, pytest.raises(auth.SignInRefused):
        auth.sign_in(conn, "lead@example.com", password, now=at)


def test_lockout_counts_failures_since_the_last_success_and_ends_after_its_time(
    seeded: Engine,
) -> None:
    t0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with seeded.begin() as conn:
        user = auth.create_user(conn, "lead@example.com", "cx_lead", password="right password")
    for i in range(auth.MAX_FAILED_LOGINS - 1):
        _fail(seeded, t0 + dt.timedelta(minutes=i))
    with seeded.begin() as conn:  # a success resets the count
        assert auth.sign_in(
            conn, "lead@example.com", "right password", now=t0 + dt.timedelta(minutes=5)
        )
    for i in range(auth.MAX_FAILED_LOGINS):
        _fail(seeded, t0 + dt.timedelta(minutes=6 + i))
    locked_at = t0 + dt.timedelta(minutes=6 + auth.MAX_FAILED_LOGINS - 1)
    _fail(seeded, locked_at + dt.timedelta(minutes=1), "right password")  # locked
    with seeded.connect() as conn:
        assert auth.lockout_until(conn, user, locked_at) == locked_at + auth.LOCKOUT
        assert auth.lockout_until(conn, user, locked_at + auth.LOCKOUT) is None
    with seeded.begin() as conn:
        assert auth.sign_in(conn, "lead@example.com", "right password",
                            now=locked_at + auth.LOCKOUT) == user  # fmt: skip


@pytest.mark.parametrize("offset", ["-1", "9" * 20, "lots"])
def test_the_feedback_page_refuses_a_negative_or_huge_offset_with_422(
    app_client: TestClient, seeded: Engine, offset: str
) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    response = client.get("/feedback", params={"offset": offset})
    assert response.status_code == 422 and "offset" in response.text
