from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.text import jobs as text_jobs
from cxm.text import taxonomy
from tests.text import corpus


def _load(engine: Engine) -> None:
    with engine.begin() as conn:
        corpus.insert(conn, corpus.responses(300))
        taxonomy.apply(conn, taxonomy.starter_doc())
    text_jobs.annotate_bulk(engine, semantic=False)


def test_annotations_filter_by_sentiment_and_department(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    _load(seeded)
    res = app_client.get(
        "/api/v1/text/annotations",
        params={"source": "survey_response", "label": "negative", "department": "billing"},
        headers=read_headers,
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body and all(a["label"] == "negative" for a in body)
    assert all("starter/billing" in a["themes"] for a in body)
    assert body[0]["model"].startswith("lexicon:vader-")


def test_unknown_source_is_a_clear_422(
    app_client: TestClient, read_headers: dict[str, str]
) -> None:
    res = app_client.get("/api/v1/text/annotations?source=tweets", headers=read_headers)
    assert res.status_code == 422
    assert "source 'tweets' is unknown" in res.json()["detail"]


def test_themes_endpoint_reports_impact_for_a_department(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    _load(seeded)
    res = app_client.get(
        "/api/v1/text/themes",
        params={"taxonomy": "starter", "department": "supply_chain", "period": "2026-01"},
        headers=read_headers,
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert [t["theme"] for t in body["themes"]] == ["delivery"]
    assert body["themes"][0]["nps_impact"] > 0
    bad = app_client.get("/api/v1/text/themes?period=January", headers=read_headers)
    assert bad.status_code == 422 and "YYYY-MM" in bad.json()["detail"]


def test_put_taxonomy_needs_admin_and_validates_departments(
    app_client: TestClient, admin_headers: dict[str, str], read_headers: dict[str, str]
) -> None:
    body = {"taxonomy": "ops", "themes": [{"key": "late", "name": "Late", "department": "nope",
                                           "keywords": ["late"]}]}  # fmt: skip
    assert (
        app_client.put("/api/v1/text/taxonomies", json=body, headers=read_headers).status_code
        == 403
    )
    res = app_client.put("/api/v1/text/taxonomies", json=body, headers=admin_headers)
    assert res.status_code == 422 and "department 'nope' does not exist" in res.json()["detail"]
    body["themes"][0]["department"] = "supply_chain"  # type: ignore[index]
    res = app_client.put("/api/v1/text/taxonomies", json=body, headers=admin_headers)
    assert res.status_code == 200 and res.json()["created"] == ["late"]
