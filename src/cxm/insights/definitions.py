"""Experience signal definitions: the YAML format, the condition language, loading.

A signal is a named condition on the interaction log at the touchpoints where it happens, e.g.
``late_delivery: name == "delivery_late"`` at ``delivery``. The shipped defaults live in
``signals/*.yaml`` inside the package; an installation overrides or adds signals with files in
``<data dir>/signals/`` (same format; a signal of the same key replaces the shipped one).

Conditions are a small expression language, parsed with Python's ``ast`` and compiled to an
Ibis predicate that runs on every engine:

* fields: ``name``, ``type``, ``touchpoint``, ``channel``, ``revenue`` and ``properties.KEY``;
* comparisons ``== != < <= > >=``, ``in [...]``, ``not in [...]``, ``is null``, ``is not null``;
* ``and``, ``or``, ``not`` and parentheses; literals are strings, numbers, ``true``/``false``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from cxm.errors import Invalid
from cxm.yamldoc import YamlDoc, read, validate
from cxm.yamldoc import files as yaml_files

SHIPPED = Path(__file__).parent / "signals"
KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Log columns a condition may name (``touchpoint`` is the log's ``touchpoint_key``).
COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("name", "string"),
    "type": ("type", "string"),
    "touchpoint": ("touchpoint_key", "string"),
    "channel": ("channel", "string"),
    "revenue": ("revenue", "number"),
}
FIELDS = ", ".join([*COLUMNS, "properties.KEY"])
# A JSON number as text; guards the cast so a string value never breaks the query.
NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_NULL = re.compile(r"\bis\s+(not\s+)?null\b")
_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}


class SignalModel(BaseModel):
    """One signal as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1)
    description: str = ""
    touchpoints: list[str] = Field(min_length=1)
    when: str = Field(min_length=1)


class SignalsFile(BaseModel):
    """A signals file: ``signals: {key: {label, description, touchpoints, when}}``."""

    model_config = ConfigDict(extra="forbid")

    signals: dict[str, SignalModel]


@dataclass(frozen=True)
class Signal:
    """A validated signal; ``condition`` is the parsed ``when`` (an ``ast`` expression)."""

    key: str
    label: str
    description: str
    touchpoints: tuple[str, ...]
    when: str
    source: str
    condition: ast.expr

    def predicate(self, log: ir.Table) -> ir.BooleanValue:
        """The Ibis predicate on the interaction log: the condition at the signal's touchpoints."""
        return log.touchpoint_key.isin(list(self.touchpoints)) & _compile(self.condition, log)

    @property
    def shipped(self) -> bool:
        """True for a default that ships with cxm (not an installation's own file)."""
        return Path(self.source).parent == SHIPPED

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "description": self.description,
            "touchpoints": list(self.touchpoints),
            "when": self.when,
            "source": self.source,
        }


# --- parsing -------------------------------------------------------------------------------


def parse_condition(text: str, where: str = "condition") -> ast.expr:
    """Parse and check a condition; errors raise ``Invalid`` naming ``where`` and the problem."""
    source = _NULL.sub(lambda m: "is not None" if m.group(1) else "is None", text)
    source = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", source))
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise Invalid(f"{where}: {text!r} is not a condition ({exc.msg})") from exc
    _check(tree, where)
    return tree


def _field(node: ast.expr, where: str) -> tuple[str, str]:
    """``(kind, name)`` of a field: ``("column", "name")`` or ``("property", "repeat_of")``."""
    if isinstance(node, ast.Name):
        if node.id not in COLUMNS:
            raise Invalid(f"{where}: unknown field {node.id!r}; fields: {FIELDS}")
        return "column", node.id
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "properties"
    ):
        return "property", node.attr
    raise Invalid(f"{where}: {ast.unparse(node)!r} is not a field; fields: {FIELDS}")


def _literal(node: ast.expr, where: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal(e, where) for e in node.elts]
        if not values or any(isinstance(v, (list, bool)) for v in values):
            raise Invalid(f"{where}: a list holds one or more strings or numbers")
        return values
    raise Invalid(f"{where}: {ast.unparse(node)!r} is not a value (a string, number or list)")


def _check(node: ast.expr, where: str) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, where)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, where)
        return
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        raise Invalid(
            f"{where}: {ast.unparse(node)!r} is not a comparison such as "
            'name == "delivery_late" or properties.wait_minutes > 20'
        )
    kind, name = _field(node.left, where)
    op, right = node.ops[0], node.comparators[0]
    if isinstance(op, (ast.Is, ast.IsNot)):
        if not (isinstance(right, ast.Constant) and right.value is None):
            raise Invalid(f"{where}: write 'is null' or 'is not null'")
        return
    value = _literal(right, where)
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(value, list):
            raise Invalid(f'{where}: \'in\' needs a list, e.g. {name} in ["a", "b"]')
        return
    if type(op) not in _COMPARE or isinstance(value, list):
        raise Invalid(f"{where}: {ast.unparse(node)!r}: unsupported comparison")
    ordered = not isinstance(op, (ast.Eq, ast.NotEq))
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ordered and not number:
        raise Invalid(f"{where}: {_COMPARE[type(op)]} compares with a number")
    if kind == "column":
        column_type = COLUMNS[name][1]
        if (column_type == "number") != number:
            raise Invalid(f"{where}: {name} is a {column_type}; compare it with a {column_type}")


# --- compiling to Ibis ---------------------------------------------------------------------


def _json_text(value: Any, quoted: bool) -> str:
    """How the engine spells a property holding ``value``: its JSON text, or (``quoted``
    False) a string unquoted."""
    if isinstance(value, str) and not quoted:
        return value
    return json.dumps(value, ensure_ascii=False)


def _compile(node: ast.expr, log: ir.Table) -> ir.BooleanValue:
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, log) for v in node.values]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.UnaryOp):
        return ~_compile(node.operand, log)
    assert isinstance(node, ast.Compare)
    kind, name = _field(node.left, "condition")
    op, right = node.ops[0], node.comparators[0]
    if kind == "column":
        column: ir.Value = log[COLUMNS[name][0]]
        if isinstance(op, (ast.Is, ast.IsNot)):
            return column.isnull() if isinstance(op, ast.Is) else column.notnull()
        return _apply(op, column, _literal(right, "condition"))
    # A property, read as text. A JSON column (DuckDB, PostgreSQL) gives the value's JSON text
    # ('"T-1"', '40.0', 'true'); a Parquet lake keeps the document as a string, whose parsed
    # value Spark gives unquoted ('T-1').
    quoted = not log.properties.type().is_string()
    raw = log.properties[name] if quoted else log.properties.cast("json")[name]
    text = raw.cast("string")
    if isinstance(op, (ast.Is, ast.IsNot)):
        missing = raw.isnull() | (text == "null")
        return missing if isinstance(op, ast.Is) else ~missing
    value = _literal(right, "condition")
    if isinstance(value, list):
        return _apply(op, text, [_json_text(v, quoted) for v in value])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = ibis.ifelse(text.re_search(NUMBER), text.cast("float64"), ibis.null())
        return _apply(op, number, value)
    return _apply(op, text, _json_text(value, quoted))


def _apply(op: ast.cmpop, left: Any, value: Any) -> ir.BooleanValue:
    if isinstance(op, ast.In):
        return left.isin(value)
    if isinstance(op, ast.NotIn):
        return ~left.isin(value)
    compare = {
        ast.Eq: left.__eq__,
        ast.NotEq: left.__ne__,
        ast.Lt: left.__lt__,
        ast.LtE: left.__le__,
        ast.Gt: left.__gt__,
        ast.GtE: left.__ge__,
    }[type(op)]
    return compare(value)


# --- loading -------------------------------------------------------------------------------


def _signals_from(doc: YamlDoc) -> dict[str, Signal]:
    parsed = validate(doc, SignalsFile)
    out: dict[str, Signal] = {}
    for key, model in parsed.signals.items():
        where = f"{doc.where(('signals', key))}: signal {key!r}"
        if not KEY.match(str(key)):
            raise Invalid(f"{where}: a signal key is lower-case letters, digits and underscores")
        condition = parse_condition(model.when, f"{doc.where(('signals', key, 'when'))}")
        out[key] = Signal(
            key=key,
            label=model.label,
            description=model.description,
            touchpoints=tuple(model.touchpoints),
            when=model.when,
            source=doc.source,
            condition=condition,
        )
    return out


def load(*extra: Path) -> dict[str, Signal]:
    """Shipped signals, then each extra file or folder of ``*.yaml`` (later wins by key).

    Errors raise ``Invalid`` naming the file, the line, the signal and the reason.
    """
    files = yaml_files(SHIPPED, *extra)
    signals: dict[str, Signal] = {}
    for path in files:
        signals.update(_signals_from(read(path)))
    return signals


def installation_dir(data_dir: Path) -> Path:
    """Where an installation keeps its own signal files."""
    return data_dir / "signals"
