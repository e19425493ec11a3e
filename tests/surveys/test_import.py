"""Importing responses collected elsewhere, with a rejects file and no duplicates."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.surveys import importer, service
from cxm.surveys.tables import response_answers, responses
from cxm.yamldoc import parse

CSV = """\
response_id,survey,submitted_at,email,crm_id,touchpoint,trigger_event_id,language,nps,csat,ces,comment
r1,relationship_nps,2026-01-05T09:00:00Z,Ada@Example.com,C1,,,en,9,,,Great service
r2,delivery_csat,2026-01-06T10:00:00Z,bo@example.com,,delivery,evt-9,de,,2,,Zu spät
r3,delivery_csat,yesterday,cy@example.com,,delivery,,en,,4,,
r4,delivery_csat,2026-01-07T10:00:00Z,di@example.com,,delivery,,en,,7,,
r5,nope,2026-01-07T10:00:00Z,di@example.com,,,,en,,3,,
"""


def test_default_mapping_imports_good_rows_and_rejects_bad_ones(
    engine: Engine, tmp_path: Path
) -> None:
    src = tmp_path / "responses.csv"
    src.write_text(CSV, encoding="utf-8")
    with engine.begin() as conn:
        service.apply_templates(conn)
        summary = importer.import_responses(conn, src)
    assert (summary.imported, summary.rejected) == (2, 3)
    rejects = (tmp_path / "responses.rejects.csv").read_text()
    assert "line 4: 'submitted_at' must be an ISO time" in rejects
    assert "line 5: column 'csat' (csat): Please pick one number from 1 to 5" in rejects
    assert "line 6: survey 'nope' does not exist" in rejects
    with engine.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(sa.select(responses)).mappings()}
        answers = conn.execute(sa.select(sa.func.count()).select_from(response_answers)).scalar()
    assert rows["r1"]["nps"] == 9 and rows["r1"]["nps_category"] == "promoter"
    assert rows["r1"]["customer_id"] and rows["r1"]["comment"] == "Great service"
    assert rows["r2"]["csat"] == 2 and rows["r2"]["touchpoint_key"] == "delivery"
    assert rows["r2"]["language"] == "de" and rows["r2"]["trigger_event_id"] == "evt-9"
    assert answers == 5  # nps+comment, csat+comment+touchpoint
    with engine.begin() as conn:
        again = importer.import_responses(conn, src)
    assert (again.imported, again.already_present) == (0, 2)


def test_mapping_file_and_employee_pulse(engine: Engine, tmp_path: Path) -> None:
    src = tmp_path / "pulse.csv"
    src.write_text("emp,when,score,note\nE1,2026-02-01T08:00:00Z,3,More tools\n", encoding="utf-8")
    mapping = importer.load_mapping(parse(
        "columns: {employee_id: emp, submitted_at: when}\nanswers: {enps: score, comment: note}\n"
    ))  # fmt: skip
    with engine.begin() as conn:
        service.apply_templates(conn)
        summary = importer.import_responses(conn, src, survey="employee_pulse", mapping=mapping)
    assert summary.imported == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(responses)).mappings().one()
    assert (row["respondent_kind"], row["employee_id"], row["nps"]) == ("employee", "E1", 3)
    assert row["nps_category"] == "detractor" and row["customer_id"] is None
