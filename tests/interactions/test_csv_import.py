"""File import: CSV as RFC 4180 defines it, damaged files refused whole, identifiers by mapping."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.customers import service as customers
from cxm.errors import Invalid
from cxm.interactions import importer, textfile
from cxm.interactions.service import Rejected, number_of
from cxm.interactions.tables import interactions


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()


def _rows(engine: Engine) -> dict[str, sa.RowMapping]:
    with engine.connect() as conn:
        return {r["event_id"]: r for r in conn.execute(sa.select(interactions)).mappings()}


def _cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    from cxm.cli.main import app

    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["import", "interactions", *args])
    return result.exit_code, " ".join(result.output.split())


def _tickets(n: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["event_id", "name", "email", "timestamp", "touchpoint", "comment"])
    for i in range(n):
        writer.writerow(
            [
                f"tk-{i:05d}",
                "ticket_opened",
                f"cust{i % 300:03d}@example.org",
                "2026-10-01T10:00:00Z",
                "chat_support",
                f'Chat {i}:\nCustomer: "where", my parcel; has not arrived\r\nAgent: I will check',
            ]
        )
    return out.getvalue()


@pytest.mark.parametrize("n", [3, 1500])
def test_quoted_line_breaks_separators_and_quotes_import_at_any_size(
    seeded: Engine, tmp_path: Path, n: int
) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(_tickets(n), newline="")
    summary = importer.import_file(seeded, path)
    assert (summary.stored, summary.rejected) == (n, 0)
    comment = _rows(seeded)[f"tk-{n - 1:05d}"]["properties"]["comment"]
    assert comment == (
        f'Chat {n - 1}:\nCustomer: "where", my parcel; has not arrived\r\nAgent: I will check'
    )


def test_an_excel_semicolon_export_imports_with_delimiter(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "event_id;name;email;revenue;note\r\n"
        'x-1;order;a@example.com;12.5;"one; two ""quoted""\r\nthree"\r\n'
        'x-2;order;b@example.com;" 1.5 ";\r\n'
    )
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    code, output = _cli(seeded, monkeypatch, str(path), "--delimiter", ";")
    assert code == 0, output
    rows = _rows(seeded)
    assert rows["x-2"]["revenue"] == 1.5 and rows["x-1"]["revenue"] == 12.5
    assert rows["x-1"]["properties"] == {"note": 'one; two "quoted"\r\nthree'}
    assert rows["x-1"]["email"] == "a@example.com"


def test_a_sep_hint_line_sets_the_separator(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "hint.csv"
    path.write_text("sep=;\nevent_id;name;revenue\ns-1;order;7.25\n")
    summary = importer.import_file(seeded, path)
    assert summary.stored == 1 and _rows(seeded)["s-1"]["revenue"] == 7.25


def test_a_cp1252_file_imports_with_encoding(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "win.csv"
    path.write_bytes("event_id,name,note\nw-1,visit,Müller café\n".encode("cp1252"))
    summary = importer.import_file(seeded, path, encoding="cp1252")
    assert summary.stored == 1
    assert _rows(seeded)["w-1"]["properties"] == {"note": "Müller café"}


@pytest.mark.parametrize(
    ("value", "stored"), [("1.5", 1.5), (" 12 ", 12.0), ("-3e2", -300.0), (".5", 0.5)]
)
def test_revenue_written_as_text_is_a_number(
    seeded: Engine, tmp_path: Path, value: str, stored: float
) -> None:
    path = tmp_path / "money.csv"
    path.write_text(f'event_id,name,revenue\nr-1,order,"{value}"\n')
    assert importer.import_file(seeded, path).stored == 1
    assert _rows(seeded)["r-1"]["revenue"] == stored


def test_revenue_that_is_not_a_plain_number_is_rejected_with_its_line(
    seeded: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "money.csv"
    path.write_text(
        'event_id,name,revenue,note\nr-1,order,"1,5","two\nlines"\nr-2,order,NaN,x\nr-3,order,2,x\n'
    )
    summary = importer.import_file(seeded, path)
    assert (summary.stored, summary.rejected) == (1, 2)
    assert summary.rejects_file is not None
    with summary.rejects_file.open() as f:
        rejects = {r["event_id"]: (r["line"], r["reason"]) for r in csv.DictReader(f)}
    assert rejects["r-1"][0] == "2" and "'1,5' is not a number" in rejects["r-1"][1]
    assert rejects["r-2"][0] == "4" and rejects["r-2"][1].startswith("revenue:")


BAD_FILES = {
    "duplicate-column": (
        b"event_id,name,email,email\ne1,x,a@example.com,b@example.com\n",
        "line 1: column 'email' appears twice (columns 3 and 4)",
    ),
    "open-quote-at-end": (
        b'event_id,name,note\ne1,x,fine\ne2,x,"never closed\ne3,x,y\n',
        "line 3: a quoted value that starts in this record is never closed",
    ),
    "open-quote-swallows-next-row": (
        b'event_id,name,note\ne1,x,"open\ne2,y,ok\ne3,z,"fine"\n',
        "line 2: a quoted value is not closed properly",
    ),
    "invalid-utf8": (
        b"event_id,name,note\ne1,x,ok\ne2,x,caf\xe9\n",
        "line 3, column 9: byte 0xe9 is not valid utf-8",
    ),
    "too-many-fields": (
        b"event_id,name,note\ne1,x,ok\ne2,x,a,b\n",
        "line 3: 4 fields where the header has 3",
    ),
    "nameless-column": (b"event_id,,note\ne1,x,ok\n", "line 1, column 2: the column has no name"),
    "oversized-value": (
        b"event_id,name,note\ne1,x," + b"y" * 300 + b"\n",
        "line 2: a value is longer than 200 characters",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_damaged_csv_is_refused_whole_with_its_line(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    data, message = BAD_FILES[case]
    monkeypatch.setenv("CXM_IMPORT_MAX_FIELD", "200")
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    code, output = _cli(seeded, monkeypatch, str(path))
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert _count(seeded) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"event_id": "j1", "name": "x"}\n{"event_id": "j2", "name": "x", "properties": '
            + b'{"a": ' * 100_000
            + b"1"
            + b"}" * 100_001
            + b"\n",
            "line 2, column 425: JSON nested deeper than 64 levels",
        ),
        (b'{"event_id": "j1", "name": "caf\xc3"}\n', "line 1, column 32: byte 0xc3 is not valid"),
    ],
    ids=["nested-100000-deep", "invalid-utf8"],
)
def test_a_damaged_jsonl_is_refused_whole_with_its_line(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(data)
    code, output = _cli(seeded, monkeypatch, str(path))
    assert code == 2, output
    assert message in output
    assert _count(seeded) == 0


def test_json_in_a_csv_cell_too_deep_or_with_nan_rejects_that_row(
    seeded: Engine, tmp_path: Path
) -> None:
    deep = "[" * 5000 + "]" * 5000
    path = tmp_path / "cells.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["event_id", "name", "properties"])
        writer.writerow(["c1", "x", json.dumps({"a": 1})])
        writer.writerow(["c2", "x", '{"a": ' + deep + "}"])
        writer.writerow(["c3", "x", '{"score": NaN}'])
    summary = importer.import_file(seeded, path)
    assert (summary.stored, summary.rejected) == (1, 2)
    assert summary.rejects_file is not None
    reasons = {r["event_id"]: r["reason"] for r in csv.DictReader(summary.rejects_file.open())}
    assert "nested deeper" in reasons["c2"]
    assert reasons["c3"].startswith("properties.score:")


def test_an_unknown_delimiter_is_refused(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("event_id,name\ne,x\n")
    code, output = _cli(seeded, monkeypatch, str(path), "--delimiter", ";;")
    assert code == 2 and "--delimiter" in output


# ---- identifiers only from the columns a mapping names ----


def test_a_mapping_names_the_only_identifier_columns(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(
        "id,mail,email,agent_id,customer_number\n"
        "t1,ana@example.com,boss@example.com,ag-7,C-1\n"
        "t2,bob@example.com,boss@example.com,ag-7,C-2\n"
    )
    mapping = importer.Mapping(
        columns={"event_id": "id", "email": "mail", "crm_id": "customer_number"},
        defaults={"name": "ticket_opened"},
    )
    summary = importer.import_file(seeded, path, mapping)
    assert summary.stored == 2
    with seeded.connect() as conn:
        ana, bob = customers.find(conn, "ana@example.com"), customers.find(conn, "bob@example.com")
        assert ana and bob and ana != bob
        assert customers.find(conn, "boss@example.com") is None
        assert customers.find(conn, "crm_id:C-1") == ana
        assert customers.find(conn, "agent_id:ag-7") is None
    row = _rows(seeded)["t1"]
    assert row["properties"] == {"email": "boss@example.com", "agent_id": "ag-7"}


def test_a_mapping_default_cannot_fix_an_identifier(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("columns:\n  event_id: id\ndefaults:\n  crm_id: C-1\n")
    with pytest.raises(Exception, match="same customer"):
        importer.load_mapping(path)


# ---- the parser against Python's csv module ----

_cell = st.text(alphabet=st.sampled_from(list("ab ,;\t\"\r\n'é€😀")), max_size=12)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=12),
    st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from(["\r\n", "\n"]),
)
def test_csv_reader_returns_what_a_writer_wrote(
    tmp_path: Path, records: list[list[str]], delimiter: str, terminator: str
) -> None:
    def field(value: str) -> str:  # RFC 4180 §2.6-2.7: quote what needs it, double quotes
        if any(c in value for c in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = "c1" + delimiter + "c2" + delimiter + "c3" + terminator
    starts = []
    for record in records:
        starts.append(len(re.findall(r"\r\n|\r|\n", text)) + 1)
        text += delimiter.join(field(v) for v in record) + terminator
    path = tmp_path / "h.csv"
    path.write_text(text, encoding="utf-8", newline="")
    read = textfile.read_csv(path, delimiter)
    expected = [[v if v != "" else None for v in r] for r in records]
    assert [list(r.values()) for r in read.table.to_pylist()] == expected
    assert read.lines.tolist() == starts


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_of_reads_every_written_float(value: float) -> None:
    assert number_of(repr(value), "revenue") == value


@given(st.text(max_size=20))
def test_number_of_refuses_with_the_field_or_returns_a_finite_number(text: str) -> None:
    try:
        value = number_of(text, "revenue")
    except Rejected as exc:
        assert str(exc).startswith("revenue:")
    else:
        assert value is None or abs(value) < float("inf")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.sampled_from(
            [
                b"event_id,name,revenue,properties\n",
                b"e1,x,1.5,{}\n",
                b'"',
                b",",
                b";",
                b"\r\n",
                b"\n",
                b"\xff",
                b"\xc3\xa9",
                b'"a""b"',
                b'{"a": [[[',
                b"NaN",
                b"e2",
                b" ",
                b"event_id",
                b"email",
                b"@x.io",
            ]
        ),
        max_size=25,
    ),
    st.sampled_from([".csv", ".jsonl"]),
)
def test_any_file_imports_or_is_refused_with_a_message(
    duckdb_engine: Engine, tmp_path: Path, parts: list[bytes], suffix: str
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(b"".join(parts))
    try:
        importer.import_file(duckdb_engine, path)
    except Invalid as exc:
        assert str(exc).startswith(str(path))


_raw = st.one_of(
    st.text(alphabet=list("ab é"), max_size=6),
    st.text(alphabet=list('ab ,;"\r\n\t|é\x00'), max_size=6),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.lists(st.tuples(st.booleans(), _raw), min_size=2, max_size=2),
            st.lists(st.tuples(st.booleans(), _raw), max_size=3),
        ),
        max_size=8,
    ),
    st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_the_engine_reader_reads_what_the_record_reader_reads(
    tmp_path: Path, records: list[list[tuple[bool, str]]], delimiter: str, terminator: str
) -> None:
    """Records of two fields mostly, some of other widths, values quoted or not (a raw value
    may hold a quote, a separator or a line break: a damaged or multi-line file)."""

    def field(quoted: bool, value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if quoted else value

    lines = [delimiter.join(field(q, v) for q, v in record) for record in records]
    path = tmp_path / "p.csv"
    body = terminator.join(["h1" + delimiter + "h2", *lines])
    path.write_bytes(body.encode("utf-8"))
    fast = textfile.read_plain_csv(path, delimiter)
    if fast is None:
        return  # the file goes record by record, as before
    exact = textfile.read_csv_records(path, delimiter)
    assert fast.table.schema == exact.table.schema
    assert fast.table.to_pylist() == exact.table.to_pylist()
    assert fast.lines.tolist() == exact.lines.tolist()


def test_a_one_line_per_record_export_is_read_by_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    out = io.StringIO()
    writer = csv.writer(out)  # quotes what holds a separator or a quote; lines end in CRLF
    writer.writerow(["event_id", "name", "comment"])
    for i in range(50):
        writer.writerow([f"tk-{i}", "ticket_opened", f'Chat {i}: "where", my parcel; late'])
    path.write_text(out.getvalue(), newline="")
    fast = textfile.read_plain_csv(path)
    assert fast is not None
    exact = textfile.read_csv_records(path)
    assert fast.table.to_pylist() == exact.table.to_pylist()
    assert fast.lines.tolist() == exact.lines.tolist() == list(range(2, 52))
    assert fast.table.column("comment")[0].as_py() == ('Chat 0: "where", my parcel; late')
