"""Reading CSV (RFC 4180) and JSON Lines files for import, refusing damaged files whole.

A file that cannot be read as its format says (invalid UTF-8, an unterminated quote, a record
with the wrong number of fields, a duplicated column name, a value over the size limit, JSON
nested past the depth limit) is refused with the line (and column where known) and a reason,
before anything is stored: a damaged file imports nothing rather than something misread.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from cxm.errors import Invalid
from cxm.interactions import limits

DEFAULT_MAX_FIELD = 1 << 20  # characters in one CSV value
ROWS_PER_BLOCK = 50_000
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def max_field() -> int:
    """Longest CSV value accepted, in characters (``CXM_IMPORT_MAX_FIELD``, default 1 MiB)."""
    return max(1, int(os.environ.get("CXM_IMPORT_MAX_FIELD", str(DEFAULT_MAX_FIELD))))


def delimiter_of(text: str) -> str:
    """A ``--delimiter`` value as one character: ``,`` ``;`` ``|``, ``tab`` or ``\\t``."""
    value = DELIMITER_NAMES.get(text.strip().lower(), text)
    if len(value) != 1 or value in '"\r\n':
        raise Invalid(
            f"--delimiter '{text}' must be one character other than a quote or a line break "
            "(e.g. ';' or 'tab')"
        )
    return value


@dataclass(frozen=True)
class Read:
    """A file's rows as an Arrow table, and the line each row starts on (1-based)."""

    table: pa.Table
    lines: np.ndarray


def _decoded(path: Path, encoding: str) -> str:
    """The file's text; refuses bytes that are not ``encoding`` with their line and column."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise Invalid(f"--encoding '{encoding}' is not a known text encoding") from None
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig" if name == "utf-8" else name)
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"{path}: {limits.position(data, exc.start)}: byte 0x{data[exc.start]:02x} is not "
            f"valid {encoding}; save the file as UTF-8 (in Excel: 'CSV UTF-8') or name its "
            "encoding with --encoding"
        ) from None


def read_csv(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> Read:
    """A CSV file per RFC 4180, every value as text (empty as null).

    Quoted values may hold line breaks, separators and doubled quotes, at any file size. A
    first line ``sep=;`` (as Excel writes) sets the separator. Raises ``Invalid`` naming the
    line for a duplicated or empty column name, a record with more or fewer fields than the
    header, a quote left open, a value longer than ``max_field()`` characters or bytes that
    are not ``encoding``.
    """
    fast = read_plain_csv(path, delimiter, encoding)
    if fast is not None:
        return fast
    return read_csv_records(path, delimiter, encoding)


def read_csv_records(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> Read:
    """``read_csv`` record by record (Python's ``csv``): any file, exact errors."""
    lines = io.StringIO(_decoded(path, encoding), newline="")
    first = lines.readline()
    skipped = 0
    if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
        delimiter, skipped = first.strip()[4], 1
    else:
        lines.seek(0)
    limit = max_field()
    previous = csv.field_size_limit(limit)
    try:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        return _records(path, reader, skipped, limit)
    finally:
        csv.field_size_limit(previous)


# Separators the engine's reader takes on the plain path (others go record by record).
_PLAIN_SEPARATORS = {",": ",", ";": ";", "\t": "\\t", "|": "\\|"}


def _plain_line(delimiter: str) -> str:
    """RE2 for a line that is one whole RFC 4180 record: each value unquoted (no quote,
    separator or line break) or quoted (doubled quotes inside, no line break); no NUL."""
    sep = _PLAIN_SEPARATORS[delimiter]
    cell = f'(?:[^"{sep}\\r\\n\\x00]*|"(?:[^"\\r\\n\\x00]|"")*")'
    return f"^{cell}(?:{sep}{cell})*\\r?$"


def read_plain_csv(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> Read | None:
    """``read_csv`` by the engine's reader (Arrow), for files where it reads what Python's
    ``csv`` reads; ``None`` for any other file, which then goes record by record.

    Taken when the file is valid UTF-8, has no ``sep=`` line, and every line is one whole
    record by RFC 4180's grammar (checked for all lines at once with RE2): then records are
    lines, the line of each row is its line's number, and no value is longer than its line.
    A record with the wrong number of fields, a value over ``max_field()``, a quoted value
    holding a line break, or a stray quote send the file to the exact reader, which names
    the problem as before.
    """
    try:
        if codecs.lookup(encoding).name != "utf-8" or delimiter not in _PLAIN_SEPARATORS:
            return None
    except LookupError:
        return None
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(raw == ord("\n"))
    ends = np.append(breaks, len(data)) if not data.endswith(b"\n") else breaks
    begins = np.concatenate([[0], breaks + 1])[: len(ends)]
    if not len(ends):
        return None
    offsets = np.concatenate([begins, ends[-1:]]).astype(np.int64)
    # Line i is data[begins[i]:ends[i]]: offsets are begins, then the last end; a line's end
    # is the next line's begin less its "\n", so each line is read with that "\n" cut below.
    lines = pa.LargeStringArray.from_buffers(
        len(ends), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)
    )
    lines = pc.utf8_rtrim(lines, "\n")
    sizes = ends - begins
    if not pc.all(pc.match_substring_regex(lines, _plain_line(delimiter))).as_py():
        return None
    header = lines[0].as_py()
    if not header.strip("\r") or (
        header.strip().lower().startswith("sep=") and len(header.strip()) == 5
    ):
        return None
    if int(sizes.max()) > max_field():
        return None
    names = [h.strip() for h in next(csv.reader([header.rstrip("\r")], delimiter=delimiter))]
    _check_header(path, 1, names)
    blank = (sizes == 0) | ((sizes == 1) & (raw[np.minimum(begins, len(raw) - 1)] == ord("\r")))
    rows = np.flatnonzero(~blank[1:]) + 2  # 1-based line numbers of the records
    columns = [f"c{i}" for i in range(len(names))]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data[int(ends[0]) + 1 :] if len(ends) > 1 else b""),
            read_options=pacsv.ReadOptions(
                column_names=columns, block_size=max(1 << 20, int(sizes.max()) + 2)
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=False, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        return None  # a record with too many or too few fields: the exact reader names it
    if table.num_rows != len(rows):
        return None
    out = {}
    for name, column in zip(names, table.columns, strict=True):
        arr = column.combine_chunks()
        out[name] = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return Read(pa.table(out, schema=pa.schema([(n, pa.string()) for n in names])), rows)


def _records(path: Path, reader: Any, skipped: int, limit: int) -> Read:
    """Read records; ``reader.line_num`` counts the physical lines taken so far."""
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid(
            f"{path}: the file is empty; it needs a header line naming the columns"
        ) from None
    except csv.Error as exc:
        raise _csv_error(path, exc, skipped + 1, skipped + reader.line_num, limit) from None
    names = [h.strip() for h in header]
    _check_header(path, skipped + 1, names)
    width = len(names)
    records: list[list[str]] = []
    blocks: list[pa.Table] = []
    starts: list[int] = []
    while True:
        begin = skipped + reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(path, exc, begin, skipped + reader.line_num, limit) from None
        if len(record) != width:
            if not record or (record == [""] and width > 1):
                continue  # a blank line
            raise Invalid(
                f"{path}: line {begin}: {len(record)} fields where the header has {width}; "
                'a value holding the separator or a line break must be quoted ("..."), '
                "and a file separated by ';' needs --delimiter ';'"
            )
        records.append(record)
        starts.append(begin)
        if len(records) == ROWS_PER_BLOCK:
            blocks.append(_block(names, records))
            records = []
    blocks.append(_block(names, records))
    return Read(pa.concat_tables(blocks), np.asarray(starts, dtype=np.int64))


def _block(names: list[str], records: list[list[str]]) -> pa.Table:
    """Records as string columns, an empty value as null."""
    columns = list(zip(*records, strict=True)) if records else [() for _ in names]
    out = {}
    for name, values in zip(names, columns, strict=True):
        arr = pa.array(values, pa.string())
        out[name] = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return pa.table(out)


def _check_header(path: Path, line: int, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for n, name in enumerate(names, start=1):
        if not name:
            raise Invalid(f"{path}: line {line}, column {n}: the column has no name")
        if name in seen:
            raise Invalid(
                f"{path}: line {line}: column '{name}' appears twice (columns {seen[name]} and "
                f"{n}); rename one so each value has one meaning"
            )
        seen[name] = n


def _csv_error(path: Path, exc: csv.Error, begin: int, line: int, limit: int) -> Invalid:
    text = str(exc)
    if "field larger than field limit" in text:
        return Invalid(
            f"{path}: line {line}: a value is longer than {limit} characters "
            "(CXM_IMPORT_MAX_FIELD), or a quote left open runs on to the end of the file"
        )
    if "unexpected end of data" in text:
        return Invalid(
            f"{path}: line {begin}: a quoted value that starts in this record is never closed"
        )
    if "expected after" in text:
        return Invalid(
            f"{path}: line {begin}: a quoted value is not closed properly ({text} on line "
            f'{line}); a quote inside a quoted value is written twice ("")'
        )
    return Invalid(f"{path}: line {line}: cannot read the CSV: {text}")


def read_jsonl(path: Path) -> Read:
    """A JSON Lines file (one object per line); refuses invalid UTF-8 and nesting past the
    depth limit with the line and column, before the parser sees them."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"{path}: {limits.position(data, exc.start)}: byte 0x{data[exc.start]:02x} is not "
            "valid UTF-8; JSON Lines files must be UTF-8"
        ) from None
    depth = limits.max_depth()
    deep = limits.too_deep(data, depth, per_line=True)
    if deep is not None:
        raise Invalid(
            f"{path}: {limits.position(data, deep)}: JSON nested deeper than {depth} levels "
            "(CXM_INGEST_MAX_DEPTH)"
        )
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    ends = np.append(breaks, len(data))
    begins = np.concatenate([[0], breaks + 1])
    blank = np.array(
        [not data[b:e].strip() for b, e in zip(begins.tolist(), ends.tolist(), strict=True)],
        dtype=bool,
    )
    lines = np.flatnonzero(~blank) + 1
    longest = int((ends - begins).max()) if len(ends) else 0
    options = pajson.ReadOptions(block_size=max(1 << 20, longest + 2))
    try:
        table = pajson.read_json(pa.BufferReader(data), read_options=options)
    except pa.ArrowInvalid as exc:
        raise Invalid(f"{path}: cannot read the JSON Lines: {exc}") from None
    return Read(table, lines[: table.num_rows].astype(np.int64))
