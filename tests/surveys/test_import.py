"""Importing responses collected elsewhere, with a rejects file and no duplicates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.surveys import importer, service
from cxm.surveys.schemas import parse_score, split_choices
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


# --- scores, choices and notations as other tools write them --------------------------------

SCORES = """\
key: scores
title: {en: "Scores"}
kind: transactional
questions:
  - {id: nps, type: nps, text: {en: "Recommend?"}}
  - {id: csat, type: csat, text: {en: "Satisfied?"}}
  - {id: ces, type: ces, text: {en: "Easy?"}}
  - {id: stars, type: rating, scale: {min: 1, max: 10}, text: {en: "Stars?"}}
  - id: reasons
    type: multiple_choice
    text: {en: "Why?"}
    options:
      - {value: "Price, value", text: {en: "Price, value for money"}}
      - {value: "Speed", text: {en: "Fast delivery"}}
      - {value: "Advice", text: {en: "Good advice"}}
      - {value: "Fast, friendly, kind", text: {en: "Staff"}}
"""


def _import(engine: Engine, path: Path, text: str, mapping: str | None = None,
            survey: str = "scores") -> importer.ImportSummary:  # fmt: skip
    path.write_text(text, encoding="utf-8")
    with engine.begin() as conn:
        service.apply_definition(conn, parse(SCORES))
        mapped = importer.load_mapping(parse(mapping)) if mapping else None
        return importer.import_responses(conn, path, survey=survey, mapping=mapped)


def _answers(engine: Engine, question: str) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(response_answers).where(response_answers.c.question_id == question)
        ).mappings()
        return {r["response_id"]: dict(r) for r in rows}


def test_field_case_whole_float_scores_import_and_a_fraction_is_rejected(
    engine: Engine, tmp_path: Path
) -> None:
    csv_text = (
        "response_id,submitted_at,email,nps\n"
        "exp-101,2026-10-03T12:00:00Z,liv@example.com,9.0\n"
        "exp-102,2026-10-03T13:00:00Z,per@example.com,10.0\n"
        "exp-103,2026-10-03T14:00:00Z,eva@example.com,6.0\n"
        "exp-104,2026-10-03T15:00:00Z,odd@example.com,7.5\n"
    )
    summary = _import(engine, tmp_path / "responses.csv", csv_text)
    assert (summary.imported, summary.rejected) == (3, 1)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(responses.c.id, responses.c.nps)).all())
    assert stored == {"exp-101": 9, "exp-102": 10, "exp-103": 6}
    rejects = (tmp_path / "responses.rejects.csv").read_text()
    assert "exp-104" in rejects and "line 5: column 'nps' (nps)" in rejects
    assert "7.5 is not a whole number" in rejects


@pytest.mark.parametrize(
    ("column", "cell", "stored"),
    [("nps", " 9 ", 9), ("nps", "+10", 10), ("csat", "4.0", 4), ("csat", "5.00", 5),
     ("ces", "7.0", 7), ("stars", "10.0", 10), ("stars", "1", 1)],
)  # fmt: skip
def test_every_score_type_reads_whole_numbers_however_written(
    engine: Engine, tmp_path: Path, column: str, cell: str, stored: int
) -> None:
    text = f'response_id,submitted_at,{column}\nr1,2026-10-03T12:00:00Z,"{cell}"\n'
    summary = _import(engine, tmp_path / "in.csv", text)
    assert (summary.imported, summary.rejected) == (1, 0)
    assert _answers(engine, column)["r1"]["value_number"] == stored


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [("nps", "7.5", "7.5 is not a whole number"), ("csat", "4.5", "4.5 is not a whole number"),
     ("ces", "0", "0 is outside the scale"), ("stars", "9.99", "9.99 is not a whole number"),
     ("nps", "11.0", "11 is outside the scale"), ("nps", "nine", "'nine' is not a number"),
     ("nps", "9e0", "9e0 is not a whole number")],
)  # fmt: skip
def test_scores_that_are_not_whole_or_off_the_scale_are_rejected_not_rounded(
    engine: Engine, tmp_path: Path, column: str, cell: str, reason: str
) -> None:
    text = f"response_id,submitted_at,{column}\nr1,2026-10-03T12:00:00Z,{cell}\n"
    with pytest.raises(Invalid, match="every row"):
        _import(engine, tmp_path / "in.csv", text)
    rejects = (tmp_path / "in.rejects.csv").read_text()
    assert f"line 2: column '{column}' ({column}): Please pick one number" in rejects
    assert reason in rejects


@given(st.integers(0, 10), st.sampled_from(["{}", " {} ", "{}.0", "{}.00", "+{}", "\t{}.0 "]))
def test_whole_scores_parse_to_themselves(k: int, pattern: str) -> None:
    assert parse_score(pattern.format(k), 0, 10) == k


@given(st.decimals(min_value=0, max_value=10, places=2).filter(lambda d: d != d.to_integral()))
def test_fractional_scores_are_never_accepted(d: object) -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        parse_score(str(d), 0, 10)


def test_field_case_option_with_a_comma_imports_as_one_option(
    engine: Engine, tmp_path: Path
) -> None:
    text = (
        "response_id,submitted_at,csat,reasons\n"
        'mc-1,2026-10-07T09:00:00Z,5,"Price, value"\n'
        "mc-2,2026-10-07T10:00:00Z,4,Speed\n"
        'mc-3,2026-10-07T11:00:00Z,4,"Speed,Advice"\n'
        'mc-4,2026-10-07T11:00:00Z,4,"Price, value,Fast, friendly, kind, Speed"\n'
        'mc-5,2026-10-07T11:00:00Z,4,"Price"\n'
    )
    summary = _import(engine, tmp_path / "in.csv", text)
    assert (summary.imported, summary.rejected) == (4, 1)
    got = _answers(engine, "reasons")
    assert got["mc-1"]["value_list"] == ["Price, value"]
    assert got["mc-1"]["value_text"] == "Price, value"
    assert got["mc-2"]["value_list"] == ["Speed"]
    assert got["mc-3"]["value_list"] == ["Speed", "Advice"]
    assert got["mc-4"]["value_list"] == ["Price, value", "Speed", "Fast, friendly, kind"]
    assert "'Price' is not one of them" in (tmp_path / "in.rejects.csv").read_text()


OPTIONS = ["Price, value", "Speed", "Advice", "Fast, friendly, kind", "A|B"]


@given(st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=5, unique=True),
       st.sampled_from([",", ", ", " , "]))  # fmt: skip
def test_any_choice_of_options_joined_by_commas_splits_back_to_them(
    chosen: list[str], joiner: str
) -> None:
    assert split_choices(joiner.join(chosen), OPTIONS) == chosen


def test_choice_cells_written_as_wording_or_json_lists_match_the_options(
    engine: Engine, tmp_path: Path
) -> None:
    text = (
        "response_id,submitted_at,reasons\n"
        'w1,2026-10-07T09:00:00Z,"Price, value for money,Fast delivery"\n'
        'j1,2026-10-07T09:00:00Z,"[""Price, value"", ""Advice""]"\n'
    )
    summary = _import(engine, tmp_path / "in.csv", text)
    assert (summary.imported, summary.rejected) == (2, 0)
    got = _answers(engine, "reasons")
    assert got["w1"]["value_list"] == ["Price, value", "Speed"]
    assert got["j1"]["value_list"] == ["Price, value", "Advice"]


def test_a_mapping_names_another_choice_separator(engine: Engine, tmp_path: Path) -> None:
    text = 'response_id,submitted_at,reasons\nr1,2026-10-07T09:00:00Z,"Price, value;Advice"\n'
    _import(engine, tmp_path / "in.csv", text, "choice_separator: ';'\n")
    assert _answers(engine, "reasons")["r1"]["value_list"] == ["Price, value", "Advice"]


# --- real exports: dates, zones, number notation, rejected shares ----------------------------

EXPORT = """\
response_id;submitted_at;nps;stars
e1;11/04/2018 20:09;9,0;10
e2;01/12/2018 08:30;7;1
e3;31/12/2018 23:15:59;10;2
"""


def _submitted(engine: Engine) -> dict[str, dt.datetime]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(responses.c.id, responses.c.submitted_at)).all()
    return {r.id: r.submitted_at.astimezone(dt.UTC) for r in rows}


def test_day_first_dates_in_a_named_zone_with_decimal_commas(
    engine: Engine, tmp_path: Path
) -> None:
    mapping = ("delimiter: ';'\ndates: {order: day_first, timezone: Europe/Oslo}\n"
               "numbers: {decimal: ',', thousands: '.'}\n")  # fmt: skip
    summary = _import(engine, tmp_path / "export.csv", EXPORT, mapping)
    assert (summary.imported, summary.rejected) == (3, 0)
    got = _submitted(engine)
    assert got["e1"] == dt.datetime(2018, 4, 11, 18, 9, tzinfo=dt.UTC)  # CEST, UTC+2
    assert got["e2"] == dt.datetime(2018, 12, 1, 7, 30, tzinfo=dt.UTC)  # CET, UTC+1
    assert got["e3"] == dt.datetime(2018, 12, 31, 22, 15, 59, tzinfo=dt.UTC)
    with engine.connect() as conn:
        assert conn.execute(sa.select(responses.c.nps).where(responses.c.id == "e1")).scalar() == 9


def test_month_first_and_explicit_formats(engine: Engine, tmp_path: Path) -> None:
    text = "response_id,submitted_at,nps\nm1,11/04/2018 20:09,9\n"
    _import(engine, tmp_path / "us.csv", text, "dates: {order: month_first}\n")
    assert _submitted(engine)["m1"] == dt.datetime(2018, 11, 4, 20, 9, tzinfo=dt.UTC)
    text = "response_id,submitted_at,nps\nf1,2018.04.11 at 20h09,9\n"
    _import(engine, tmp_path / "f.csv", text,
            "dates: {format: '%Y.%m.%d at %Hh%M', timezone: America/New_York}\n")  # fmt: skip
    assert _submitted(engine)["f1"] == dt.datetime(2018, 4, 12, 0, 9, tzinfo=dt.UTC)


def test_a_file_whose_every_row_is_rejected_stores_nothing_and_says_why(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(Invalid, match=r"every row \(3\) was rejected; nothing was imported"):
        _import(engine, tmp_path / "export.csv", EXPORT.replace(";", ","))
    rejects = (tmp_path / "export.rejects.csv").read_text()
    assert "line 2: 'submitted_at' must be an ISO time" in rejects
    assert "dates.order: day_first" in rejects
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(responses)).scalar() == 0


def test_more_rejects_than_the_allowed_share_store_nothing(engine: Engine, tmp_path: Path) -> None:
    text = ("response_id,submitted_at,nps\n" + "".join(
        f"r{i},2026-10-03T12:00:00Z,{'7.5' if i < 2 else 9}\n" for i in range(8)))  # fmt: skip
    with pytest.raises(Invalid, match=r"2 of 8 rows \(25%\) were rejected, more than the allowed"):
        _import(engine, tmp_path / "in.csv", text, "max_rejected_share: 0.2\n")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(responses)).scalar() == 0
    summary = _import(engine, tmp_path / "in.csv", text, "max_rejected_share: 0.25\n")
    assert (summary.imported, summary.rejected) == (6, 2)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [("dates: {timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
     ("dates: {order: year_first}\n", "order"),
     ("numbers: {decimal: ',', thousands: ','}\n", "must differ"),
     ("max_rejected_share: 2\n", "max_rejected_share")],
)  # fmt: skip
def test_bad_mappings_are_refused_with_the_reason(mapping: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        importer.load_mapping(parse(mapping, "map.yaml"))


def test_command_exits_2_when_every_row_is_rejected(
    duckdb_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cxm.cli.main import app

    with duckdb_engine.begin() as conn:
        service.apply_definition(conn, parse(SCORES))
    duckdb_engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(duckdb_engine.url))
    src = tmp_path / "export.csv"
    src.write_text("response_id,submitted_at,nps\ne1,11/04/2018 20:09,9\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(app, ["import", "responses", str(src), "--survey", "scores"])
    assert out.exit_code == 2, out.output
    assert "every row (1) was rejected" in out.output
    assert (tmp_path / "export.rejects.csv").exists()
    day_first = _write(tmp_path / "m.yaml", "dates: {order: day_first}\n")
    ok = runner.invoke(app, ["import", "responses", str(src), "--survey", "scores",
                             "--map", str(day_first)])  # fmt: skip
    assert ok.exit_code == 0 and "imported 1 responses" in ok.output, ok.output


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_migration_turns_comma_joined_answers_into_lists(engine: Engine) -> None:
    from alembic import command

    from cxm.store.migrate import _config

    old_answers = sa.table(
        "response_answers", *(sa.column(c) for c in
        ("response_id", "question_id", "question_type", "value_text", "answered_at")),
    )  # fmt: skip
    command.downgrade(_config(engine), "0007")
    try:
        with engine.begin() as conn:
            service.apply_definition(conn, parse(SCORES))
            when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            for rid, text in [
                ("o1", "Price, value"),
                ("o2", "Speed,Advice"),
                ("o3", "Price, value,Fast, friendly, kind"),
                ("o4", "Gone,Speed"),
            ]:
                conn.execute(
                    responses.insert().values(
                        id=rid,
                        survey_key="scores",
                        survey_version=1,
                        respondent_kind="customer",
                        started_at=when,
                        submitted_at=when,
                        completed=True,
                        source="web",
                    )
                )
                conn.execute(old_answers.insert().values(
                    response_id=rid, question_id="reasons", question_type="multiple_choice",
                    value_text=text, answered_at=when.replace(tzinfo=None)))  # fmt: skip
    finally:
        command.upgrade(_config(engine), "head")
    got = {k: v["value_list"] for k, v in _answers(engine, "reasons").items()}
    assert got == {
        "o1": ["Price, value"],
        "o2": ["Speed", "Advice"],
        "o3": ["Price, value", "Fast, friendly, kind"],
        "o4": ["Gone", "Speed"],  # an option since removed is kept as it was written
    }
