"""Process-mining event logs as interactions: XES (IEEE 1849-2016, ``.xes`` and ``.xes.gz``)
and CSV in the ``case:concept:name`` / ``concept:name`` / ``time:timestamp`` layout.

Each event becomes one interaction: ``concept:name`` is its name, ``time:timestamp`` its time,
and its case (the trace's ``concept:name``) the property ``case_id``. The standard extensions'
attributes keep their meaning under plain names: ``org:resource`` is ``resource``,
``org:role`` ``role``, ``org:group`` ``group``, ``lifecycle:transition`` ``lifecycle``,
``concept:instance`` ``instance``; other event attributes keep their key (``:`` and other
characters outside letters, digits and ``_`` become ``_``) and the trace's other attributes
are prefixed ``case_``. Typed XES values keep their type (int, float, boolean; dates as
ISO-8601 text). Event ids are derived from the file name, the case and the event's position in
it, so importing the same file again adds nothing.

A journey over an imported log names ``case: case_id``, ``activities: [{event: "*"}]`` and
``start: ["*"]`` (docs/journeys.md).

The XES reader streams the file (``lxml.etree.iterparse``), keeping one trace in memory; a
file that is not well-formed XML, has no ``<log>`` root, or holds a trace without a
``concept:name`` or an event without ``concept:name`` or ``time:timestamp`` is refused whole
with the line of each problem (up to five), before anything is stored.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from cxm.errors import Invalid
from cxm.interactions import textfile

CASE, ACTIVITY, TIMESTAMP = "case:concept:name", "concept:name", "time:timestamp"
# Standard extension attributes and the property each becomes.
RENAMED = {
    "org:resource": "resource",
    "org:role": "role",
    "org:group": "group",
    "lifecycle:transition": "lifecycle",
    "concept:instance": "instance",
}
_TYPES = {"string", "date", "int", "float", "boolean", "id"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
MAX_PROBLEMS = 5


def is_event_log(path: Path) -> bool:
    """Whether ``path`` names an XES file (``.xes`` or ``.xes.gz``)."""
    name = path.name.lower()
    return name.endswith(".xes") or name.endswith(".xes.gz")


def is_csv_event_log(columns: list[str]) -> bool:
    """Whether a CSV's header is the event-log layout (``case:concept:name`` and
    ``concept:name``)."""
    return CASE in columns and ACTIVITY in columns


@functools.lru_cache(maxsize=4096)
def property_name(key: str, trace: bool = False) -> str:
    """The property an XES attribute key becomes (see the module's docstring)."""
    if key in RENAMED:
        return RENAMED[key]
    name = _UNSAFE.sub("_", key)
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "a_" + name
    return f"case_{name}" if trace else name


def _typed(kind: str, value: str) -> Any:
    """An XES attribute value in its declared type (text when it does not parse)."""
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            number = float(value)
            return number if np.isfinite(number) else value
        if kind == "boolean":
            return value.strip().lower() == "true"
    except ValueError:
        return value
    return value


_KINDS: dict[str, str | None] = {}  # element tag (with namespace) -> XES type, or None


def _kind(tag: Any) -> str | None:
    kind = _KINDS.get(tag)
    if kind is None and tag not in _KINDS:
        local = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        kind = _KINDS[tag] = local if local in _TYPES else ("event" if local == "event" else None)
    return kind


def _split(element: Any) -> tuple[dict[str, tuple[str, Any]], list[Any]]:
    """An element's direct typed attributes (key -> (type, value); nested ones are left) and
    its ``<event>`` children."""
    out: dict[str, tuple[str, Any]] = {}
    events = []
    kinds = _KINDS
    for child in element:
        tag = child.tag
        kind = kinds[tag] if tag in kinds else _kind(tag)
        if kind is None:
            continue
        if kind == "event":
            events.append(child)
            continue
        key = child.get("key")
        value = child.get("value")
        if key is not None and value is not None:
            out[key] = (kind, value)
    return out, events


class _Rows:
    """The columns being built, one entry per event."""

    def __init__(self, stem: str) -> None:
        self.prefix = "log-" + hashlib.blake2b(stem.encode(), digest_size=4).hexdigest()
        self.event_id: list[str] = []
        self.name: list[str | None] = []
        self.timestamp: list[str | None] = []
        self.properties: list[str] = []
        self.lines: list[int] = []
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.problems[-1] = f"{text} (and more)"

    def add(self, case: str, position: int, name: Any, when: Any, props: dict[str, Any],
            line: int) -> None:  # fmt: skip
        digest = hashlib.blake2b(case.encode(), digest_size=8).hexdigest()
        self.event_id.append(f"{self.prefix}-{digest}-{position:06d}")
        self.name.append(None if name is None else str(name))
        self.timestamp.append(None if when is None else str(when))
        self.properties.append(json.dumps(props, ensure_ascii=False, default=str))
        self.lines.append(line)

    def read(self) -> textfile.Read:
        table = pa.table({
            "event_id": pa.array(self.event_id, pa.string()),
            "name": pa.array(self.name, pa.string()),
            "timestamp": pa.array(self.timestamp, pa.string()),
            "properties": pa.array(self.properties, pa.string()),
        })  # fmt: skip
        return textfile.Read(table, np.asarray(self.lines, dtype=np.int64))


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _traces(stream: IO[bytes], source: str) -> Iterator[Any]:
    """Each ``<trace>`` element, streamed; memory holds one trace."""
    context = etree.iterparse(stream, events=("end",), tag="{*}trace", huge_tree=True,
                              resolve_entities=False, no_network=True)  # fmt: skip
    checked = False
    for _action, trace in context:
        if not checked:
            root = trace.getroottree().getroot()
            tag = root.tag.rpartition("}")[2]
            if tag != "log":
                raise Invalid(f"{source}: not an XES log: the root element is <{tag}>, "
                              "expected <log>")  # fmt: skip
            checked = True
        yield trace
        trace.clear()
        parent = trace.getparent()
        while parent is not None and trace.getprevious() is not None:
            del parent[0]
    if not checked:
        root = getattr(context, "root", None)
        tag = root.tag.rpartition("}")[2] if root is not None else None
        if tag != "log":
            raise Invalid(
                f"{source}: not an XES log: "
                + (f"the root element is <{tag}>, expected <log>" if tag else "no <log> element")
            )


def read_xes(path: Path) -> textfile.Read:
    """An XES file (``.xes`` or gzip-compressed ``.xes.gz``) as import rows: ``event_id, name,
    timestamp, properties`` (JSON text) and the line each event starts on.

    Raises Invalid naming the line of each problem (see the module's docstring).
    """
    rows = _Rows(path.name.split(".")[0])
    source = str(path)
    try:
        with _open(path) as stream:
            for trace in _traces(stream, source):
                own, events = _split(trace)
                case = own.get(ACTIVITY, (None, None))[1]
                if case is None:
                    rows.problem(f"line {trace.sourceline}: a trace without a concept:name")
                    continue
                case_props = {
                    property_name(k, trace=True): _typed(kind, v)
                    for k, (kind, v) in own.items() if k != ACTIVITY
                }  # fmt: skip
                for position, event in enumerate(events):
                    attrs, _ = _split(event)
                    name = attrs.pop(ACTIVITY, (None, None))[1]
                    when = attrs.pop(TIMESTAMP, (None, None))[1]
                    if name is None or when is None:
                        missing = ACTIVITY if name is None else TIMESTAMP
                        rows.problem(f"line {event.sourceline}: an event without {missing} "
                                     f"(trace '{case}')")  # fmt: skip
                        continue
                    props: dict[str, Any] = {"case_id": case, **case_props}
                    for k, (kind, v) in attrs.items():
                        props[property_name(k)] = _typed(kind, v)
                    rows.add(case, position, name, when, props, event.sourceline or 0)
    except etree.XMLSyntaxError as exc:
        raise Invalid(f"{source}: not well-formed XML: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:  # a damaged gzip stream
        raise Invalid(f"{source}: cannot read the file: {exc}") from exc
    if rows.problems:
        raise Invalid(f"{source}: not imported: " + "; ".join(rows.problems))
    return rows.read()


def from_csv(read: textfile.Read, source: str, stem: str) -> textfile.Read:
    """A CSV event log (every column text) as import rows, like ``read_xes``.

    ``case:`` columns other than the case id become ``case_*`` properties; the position of
    an event in its case is its row order among the case's rows. Raises Invalid naming the
    lines of rows without a case, an activity or a timestamp.
    """
    table = read.table
    if TIMESTAMP not in table.column_names:
        raise Invalid(f"{source}: an event log needs a '{TIMESTAMP}' column; the file has: "
                      f"{', '.join(table.column_names)}")  # fmt: skip
    required = [CASE, ACTIVITY, TIMESTAMP]
    problems = []
    for column in required:
        col = table[column]
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True)
        bad = np.flatnonzero(np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool))
        if len(bad):
            where = ", ".join(str(int(read.lines[i])) for i in bad[:MAX_PROBLEMS])
            problems.append(f"{len(bad)} rows without {column} (lines {where})")
    if problems:
        raise Invalid(f"{source}: not imported: " + "; ".join(problems))
    cases = table[CASE].to_pylist()
    names = table[ACTIVITY].to_pylist()
    times = table[TIMESTAMP].to_pylist()
    others = [c for c in table.column_names if c not in required]
    values = {c: table[c].to_pylist() for c in others}
    keys = {c: property_name(c[5:], trace=True) if c.startswith("case:") else property_name(c)
            for c in others}  # fmt: skip
    rows = _Rows(stem)
    seen: dict[str, int] = {}
    for i, case in enumerate(cases):
        position = seen.get(case, 0)
        seen[case] = position + 1
        props: dict[str, Any] = {"case_id": case}
        for c in others:
            v = values[c][i]
            if v is not None and v != "":
                props[keys[c]] = v
        rows.add(case, position, names[i], times[i], props, int(read.lines[i]))
    return rows.read()
