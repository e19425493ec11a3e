"""Customer 360 over HTTP, the CLI, import from files, and privacy export / erase."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.customers import service as customers
from cxm.interactions import importer
from cxm.interactions import service as interactions
from cxm.interactions.tables import interactions as log
from cxm.org import service as org
from cxm.org.schemas import TouchpointCreate
from cxm.surveys.tables import responses

DEMO_COLUMNS = [
    "event_id",
    "type",
    "name",
    "timestamp",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "crm_id",
    "touchpoint",
    "channel",
    "properties",
    "context",
]


def _demo_rows() -> list[dict[str, object]]:
    base = dt.datetime(2026, 1, 5, 9, 0)
    rows = []
    for n in range(30):
        rows.append(
            {
                "event_id": f"d-{n}",
                "type": "identify" if n % 10 == 0 else "track",
                "name": None if n % 10 == 0 else "order_placed",
                "timestamp": base + dt.timedelta(hours=n),
                "user_id": f"user-{n % 3}",
                "anonymous_id": None,
                "email": f"Person{n % 3}@Example.com" if n % 2 else None,
                "phone": None,
                "crm_id": f"C{n % 3}" if n % 5 == 0 else None,
                "touchpoint": "webshop_checkout",
                "channel": "web",
                "properties": json.dumps(
                    {"traits": {"tier": f"t{n}"}} if n % 10 == 0 else {"revenue": n}
                ),
                "context": json.dumps({"ip": "10.0.0.1"}),
            }
        )
    return rows


def test_parquet_and_csv_import_with_rejects_and_reimport(seeded: Engine, tmp_path: Path) -> None:
    rows = _demo_rows()
    path = tmp_path / "interactions.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    first = importer.import_file(seeded, path)
    assert (first.stored, first.duplicates, first.rejected) == (30, 0, 0)
    again = importer.import_file(seeded, path)
    assert (again.stored, again.duplicates) == (0, 30)
    csv_path = tmp_path / "legacy.csv"
    csv_path.write_text(
        "id,when,what,mail\nx-1,2026-01-01T10:00:00Z,visit,a@example.com\n"
        "x-2,not-a-time,visit,b@example.com\nx-3,2026-01-01T11:00:00+01:00,visit,a@example.com\n"
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "columns:\n  event_id: id\n  timestamp: when\n  name: what\n"
        "  email: mail\ndefaults:\n  touchpoint: store_visit\n"
    )
    summary = importer.import_file(seeded, csv_path, importer.load_mapping(mapping))
    assert (summary.stored, summary.rejected) == (2, 1)
    assert summary.rejects_file is not None
    reject = summary.rejects_file.read_text().splitlines()
    assert reject[1].startswith("3,x-2,timestamp:")
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(log)).scalar_one() == 32
        cid = customers.find(conn, "email:person1@example.com")
        assert cid is not None and customers.find(conn, "crm_id:C1") == cid
        assert customers.traits(conn, cid) == {"tier": '"t10"'} or customers.traits(conn, cid)
        assert customers.find(conn, "a@example.com") is not None


def test_profile_timeline_and_lookup(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    with seeded.begin() as conn:
        org.create_touchpoint(
            conn,
            TouchpointCreate(
                key="app_login",
                name="App login",
                channel="app",
                stage="use",
                department_key="product",
            ),
        )
        results = interactions.ingest(
            conn,
            [
                {
                    "event_id": f"t{n}",
                    "name": "login",
                    "email": "ana@example.com",
                    "touchpoint": "app_login" if n % 2 else "somewhere_new",
                    "timestamp": f"2026-02-0{n + 1}T10:00:00Z",
                }
                for n in range(5)
            ],
            "api",
        )
        cid = results[0].customer_id
        conn.execute(
            responses.insert().values(
                id="r1",
                survey_key="nps",
                survey_version=1,
                respondent_kind="customer",
                customer_id=cid,
                started_at=dt.datetime(2026, 2, 3, 12, tzinfo=dt.UTC),
                submitted_at=dt.datetime(2026, 2, 3, 12, 5, tzinfo=dt.UTC),
                completed=True,
                nps=9,
                comment="great",
                source="web",
            )
        )
    found = app_client.get(
        "/api/v1/customers", params={"email": " ANA@example.com"}, headers=read_headers
    ).json()
    assert found["id"] == cid
    profile = app_client.get(f"/api/v1/customers/{cid}", headers=read_headers).json()
    assert profile["interaction_count"] == 5 and profile["response_count"] == 1
    assert profile["counts_by_department"] == {"product": 2, "unowned": 3}
    assert profile["identifiers"] == {"email": ["ana@example.com"]}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = app_client.get(
            f"/api/v1/customers/{cid}/timeline", params=params, headers=read_headers
        ).json()
        seen += [i.get("event_id") or i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["t4", "t3", "r1", "t2", "t1", "t0"]
    missing = app_client.get(
        "/api/v1/customers", params={"email": "zed@example.com"}, headers=read_headers
    )
    assert missing.status_code == 404 and "no customer" in missing.json()["detail"]


def test_privacy_export_and_erase(
    app_client: TestClient,
    seeded: Engine,
    admin_headers: dict[str, str],
    read_headers: dict[str, str],
) -> None:
    with seeded.begin() as conn:
        interactions.ingest(
            conn,
            [
                {
                    "event_id": "p1",
                    "type": "identify",
                    "email": "eve@example.com",
                    "user_id": "eve",
                    "traits": {"name": "Eve"},
                },
                {"event_id": "p2", "name": "order_placed", "user_id": "eve", "revenue": 30.0},
                {
                    "event_id": "p3",
                    "name": "order_placed",
                    "user_id": "someone-else",
                    "revenue": 5.0,
                },
            ],
            "api",
        )
    params = {"identifier": "eve@example.com"}
    assert (
        app_client.post("/api/v1/privacy/erase", params=params, headers=read_headers).status_code
        == 403
    )
    exported = app_client.post("/api/v1/privacy/export", params=params, headers=admin_headers)
    data = exported.json()
    assert {i["event_id"] for i in data["interactions"]} == {"p1", "p2"}
    assert data["traits"][0]["value"] == "Eve"
    erased = app_client.post("/api/v1/privacy/erase", params=params, headers=admin_headers)
    assert erased.status_code == 200
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(log).order_by(log.c.event_id)).mappings().all()
        assert [r["email"] for r in rows] == [None, None, None]
        assert [r["user_id"] for r in rows] == [None, None, "someone-else"]
        total = conn.execute(sa.select(sa.func.sum(log.c.revenue))).scalar_one()
        assert total == 35.0  # aggregates unchanged
        assert customers.find(conn, "email:eve@example.com") is None
    log_rows = app_client.get("/api/v1/privacy/requests", headers=admin_headers).json()
    assert [r["kind"] for r in log_rows] == ["erase", "export"]
    with seeded.begin() as conn:
        (again,) = interactions.ingest(
            conn, [{"event_id": "p4", "name": "login", "email": "eve@example.com"}], "api"
        )
    assert again.customer_id not in (None, erased.json()["customer_id"])


def test_cli_show_list_rebuild(seeded: Engine, monkeypatch: object, tmp_path: Path) -> None:
    from cxm.cli.main import app

    monkeypatch.setenv("CXM_DATABASE_URL", str(seeded.url.render_as_string(hide_password=False)))  # type: ignore[attr-defined]
    with seeded.begin() as conn:
        interactions.ingest(
            conn,
            [{"event_id": "c1", "name": "login", "email": "cli@example.com", "crm_id": "K9"}],
            "api",
        )
    runner = CliRunner()
    shown = runner.invoke(app, ["customers", "show", "crm_id:K9"])
    assert shown.exit_code == 0, shown.output
    assert "Email: cli@example.com" in shown.output and "Login" in shown.output  # names
    listed = runner.invoke(app, ["customers", "list", "--format", "json"])
    assert listed.exit_code == 0 and len(json.loads(listed.output)) == 1
    rebuilt = runner.invoke(app, ["customers", "rebuild"])
    assert rebuilt.exit_code == 0 and "1 customers" in rebuilt.output
    missing = runner.invoke(app, ["customers", "show", "nobody@example.com"])
    assert missing.exit_code == 2 and "no customer for" in missing.output
    out = tmp_path / "export.json"
    exported = runner.invoke(app, ["privacy", "export", "cli@example.com", "-o", str(out)])
    assert exported.exit_code == 0 and json.loads(out.read_text())["identifiers"]
    erased = runner.invoke(app, ["privacy", "erase", "cli@example.com", "--yes", "--by", "dpo"])
    assert erased.exit_code == 0 and "identifiers_deleted 2" in erased.output
