"""The staff survey pages: list with funnel, editor preview, publishing a new version."""

from __future__ import annotations

import re

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.surveys import service as surveys
from tests.web.test_pages import as_role


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _templates(engine: Engine) -> None:
    with engine.begin() as conn:
        surveys.apply_templates(conn)


def test_list_shows_every_survey_and_agents_cannot_see_it(
    app_client: TestClient, seeded: Engine
) -> None:
    _templates(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/surveys")
    assert page.status_code == 200
    with seeded.connect() as conn:
        keys = [s.key for s in surveys.list_surveys(conn)]
    assert keys and all(f'href="/surveys/{k}"' in page.text for k in keys)
    agent = as_role(TestClient(app_client.app), seeded, "agent")
    assert agent.get("/surveys").status_code == 404


def test_preview_shows_the_edit_and_publish_makes_a_version(
    app_client: TestClient, seeded: Engine
) -> None:
    _templates(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    with seeded.connect() as conn:
        key = surveys.list_surveys(conn)[0].key
        before = surveys.current_version(conn, key)
        doc = surveys.export_definition(conn, key)
    editor = client.get(f"/surveys/{key}")
    token = _csrf(editor.text)
    doc["questions"][0]["text"] = {lang: "A brand new wording?" for lang in doc["languages"]}
    text = yaml.safe_dump(doc, sort_keys=False)
    shown = client.post(f"/surveys/{key}", data={"definition": text, "csrf_token": token})
    assert shown.status_code == 200 and "A brand new wording?" in shown.text
    with seeded.connect() as conn:
        assert surveys.current_version(conn, key) == before  # a preview publishes nothing
    broken = client.post(
        f"/surveys/{key}",
        data={"definition": text.replace("type:", "typo:", 1), "csrf_token": token},
    )
    assert broken.status_code == 422 and "line" in broken.text
    published = client.post(
        f"/surveys/{key}", data={"definition": text, "csrf_token": token, "action": "publish"}
    )
    assert "published version" in published.text
    with seeded.connect() as conn:
        assert surveys.current_version(conn, key) == before + 1


def test_managers_preview_but_cannot_publish(app_client: TestClient, seeded: Engine) -> None:
    _templates(seeded)
    client = as_role(app_client, seeded, "manager")
    with seeded.connect() as conn:
        key = surveys.list_surveys(conn)[0].key
        text = yaml.safe_dump(surveys.export_definition(conn, key), sort_keys=False)
    editor = client.get(f"/surveys/{key}")
    assert "Publish new version" not in editor.text
    refused = client.post(
        f"/surveys/{key}",
        data={"definition": text, "csrf_token": _csrf(editor.text), "action": "publish"},
    )
    assert refused.status_code == 404


def test_the_preview_names_a_scale_s_ends_as_the_respondent_s_page_does(
    app_client: TestClient, seeded: Engine
) -> None:
    import html
    import re

    _templates(seeded)
    client = as_role(app_client, seeded, "cx_lead")

    def ends(page: str) -> list[str]:
        return re.findall(r'<p class="scale-ends[^"]*">(.*?)</p>', page)

    # delivery_csat's 1-5 scale: the words a respondent reads at each end.
    shown = ends(client.get("/surveys/delivery_csat").text)
    respondent = client.get("/s/open/delivery_csat").text
    assert shown and "1: Very dissatisfied" in shown[0] and "5: Very satisfied" in shown[0]
    assert "Very dissatisfied" in respondent and "Very satisfied" in respondent
    # In the preview's language, as a German respondent reads them.
    editor = client.get("/surveys/delivery_csat").text
    text = html.unescape(
        re.search(r'<textarea id="definition"[^>]*>(.*?)</textarea>', editor, re.S)[1]
    )
    german = client.post("/surveys/delivery_csat", data={
        "definition": text, "language": "de", "csrf_token": _csrf(editor)})  # fmt: skip
    assert german.status_code == 200
    assert "1: Sehr unzufrieden" in ends(german.text)[0]
    assert "Sehr unzufrieden" in client.get("/s/open/delivery_csat?lang=de").text
