"""Metric definitions: the fact catalogue, the YAML format, loading and validation.

One definition per metric for the whole company. The shipped defaults live in
``definitions/*.yaml`` inside the package; an installation overrides or adds metrics with
YAML files in ``<data dir>/metrics/`` (same format; a metric of the same name replaces the
shipped one). Every definition error names the file, the line, the metric and the reason.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cxm.errors import Invalid
from cxm.yamldoc import YamlDoc, read, validate
from cxm.yamldoc import files as yaml_files

SHIPPED = Path(__file__).parent / "definitions"

ColumnType = Literal["string", "int", "float", "bool", "timestamp"]
NUMERIC = {"int", "float"}


@dataclass(frozen=True)
class Fact:
    """A fact table metrics may read: its columns and how it links to the org and customers."""

    table: str
    time: str
    columns: dict[str, ColumnType]
    # Columns computed per row from the same customer's next row (interactions only).
    derived: dict[str, ColumnType] = field(default_factory=dict)
    touchpoint: str | None = "touchpoint_key"
    channel: str | None = "channel"
    customer: str | None = "customer_id"
    survey: str | None = None
    key: str = "id"
    # The column holding the id of the interaction that triggered the row (``trigger:PROP``).
    trigger: str | None = None

    def all_columns(self) -> dict[str, ColumnType]:
        return {**self.columns, **self.derived}


FACTS: dict[str, Fact] = {
    "responses": Fact(
        table="responses",
        time="submitted_at",
        survey="survey_key",
        trigger="trigger_event_id",
        columns={
            "id": "string",
            "survey_key": "string",
            "survey_version": "int",
            "respondent_kind": "string",
            "customer_id": "string",
            "employee_id": "string",
            "touchpoint_key": "string",
            "channel": "string",
            "language": "string",
            "started_at": "timestamp",
            "submitted_at": "timestamp",
            "completed": "bool",
            "nps": "int",
            "nps_category": "string",
            "csat": "int",
            "ces": "int",
            "source": "string",
        },
    ),
    "invitations": Fact(
        table="survey_invitations",
        time="sent_at",
        survey="survey_key",
        trigger="trigger_event_id",
        columns={
            "id": "string",
            "survey_key": "string",
            "customer_id": "string",
            "channel": "string",
            "touchpoint_key": "string",
            "status": "string",
            "response_id": "string",
            "created_at": "timestamp",
            "sent_at": "timestamp",
            "opened_at": "timestamp",
        },
    ),
    "interactions": Fact(
        table="interactions",
        time="event_time",
        key="event_id",
        columns={
            "event_id": "string",
            "type": "string",
            "name": "string",
            "event_time": "timestamp",
            "customer_id": "string",
            "touchpoint_key": "string",
            "channel": "string",
            "revenue": "float",
            "source": "string",
        },
        derived={"next_name": "string", "hours_to_next": "float"},
    ),
    # One row per customer and period (the grain asked for) from the customer's acquisition on:
    # the customer lifecycle of ``Lifecycle``, built by ``analytics.customer_periods``.
    "customer_periods": Fact(
        table="interactions",
        time="period",
        touchpoint=None,
        channel=None,
        key="customer_id",
        columns={
            "customer_id": "string",
            "period": "timestamp",
            "cohort": "string",
            "acquired_at": "timestamp",
            "churned_at": "timestamp",
            "active_at_start": "bool",
            "new": "bool",
            "churned": "bool",
            "retained": "bool",
            "active_at_end": "bool",
            "revenue_start": "float",
            "revenue_end": "float",
            "revenue_retained": "float",
        },
    ),
    "customers": Fact(
        table="customers",
        time="first_seen",
        touchpoint=None,
        channel=None,
        customer="id",
        columns={
            "id": "string",
            "first_seen": "timestamp",
            "last_seen": "timestamp",
            "interaction_count": "int",
            "merged_into": "string",
            "erased_at": "timestamp",
        },
    ),
}

GROWTH_FACT = "customer_periods"


@dataclass(frozen=True)
class Lifecycle:
    """The company-wide customer lifecycle the growth metrics read from the interaction log.

    A customer is acquired at their first ``acquisition`` event and churns at their last
    ``churn`` event, unless an ``acquisition`` event follows it (then they are still active).
    Recurring revenue in a period is the sum of ``revenue`` over the ``revenue`` events.
    """

    acquisition: tuple[str, ...]
    churn: tuple[str, ...]
    revenue: tuple[str, ...]


class LifecycleModel(BaseModel):
    """The ``lifecycle`` block of a metrics file: event names of the interaction log."""

    model_config = ConfigDict(extra="forbid")

    acquisition: list[str] = Field(min_length=1)
    churn: list[str] = Field(min_length=1)
    revenue: list[str] = Field(min_length=1)


OPS = {"eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "is_null"}


class ScaleModel(BaseModel):
    """The range a mean's answers can take (CSAT 1..5); either end may stay open."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None


class MetricModel(BaseModel):
    """One metric as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    description: str
    kind: Literal["nps", "proportion", "mean", "count", "ratio", "derived"]
    fact: str | None = None
    time: str | None = None
    column: str | None = None
    base: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    rows: dict[str, Any] | None = None
    success: dict[str, Any] | None = None
    numerator: dict[str, Any] | None = None
    denominator: dict[str, Any] | None = None
    invert: bool = False
    per: str | None = None
    per_agg: Literal["sum", "count", "mean"] = "sum"
    formula: str | None = None
    unit: str = ""
    direction: Literal["higher", "lower"] = "higher"
    owner: str | None = None
    target: float | None = None
    min_sample: int = Field(30, ge=1)
    scale: ScaleModel | None = None


class MetricsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lifecycle: LifecycleModel | None = None
    metrics: dict[str, MetricModel] = Field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """A validated metric definition (what the computation reads)."""

    name: str
    description: str
    kind: str
    fact: str | None
    time: str | None
    column: str | None
    base: str | None
    filters: dict[str, Any]
    rows: dict[str, Any] | None
    success: dict[str, Any] | None
    numerator: dict[str, Any] | None
    denominator: dict[str, Any] | None
    invert: bool
    per: str | None
    per_agg: str
    formula: str | None
    unit: str
    direction: str
    owner: str | None
    target: float | None
    min_sample: int
    source: str
    # The lifecycle a growth metric reads (fact customer_periods); set when the files load.
    lifecycle: Lifecycle | None = None
    scale: dict[str, float | None] | None = None

    @property
    def references(self) -> list[str]:
        """The metrics a derived formula reads, in order of first use."""
        if not self.formula:
            return []
        names: list[str] = []
        for node in ast.walk(ast.parse(self.formula, mode="eval")):
            if isinstance(node, ast.Name) and node.id not in names:
                names.append(node.id)
        return names

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "fact": self.fact,
            "formula": self.formula,
            "unit": self.unit,
            "direction": self.direction,
            "owner": self.owner,
            "target": self.target,
            "min_sample": self.min_sample,
        }


def _check_condition(cond: Any, columns: dict[str, ColumnType], where: str) -> None:
    """A condition: {column: value | [values] | {op: value}}, plus ``not`` and ``any``."""
    if not isinstance(cond, dict):
        raise Invalid(f"{where}: a condition is a mapping of column to value")
    for col, spec in cond.items():
        if col == "not":
            _check_condition(spec, columns, f"{where}.not")
            continue
        if col == "any":
            if not isinstance(spec, list) or not spec:
                raise Invalid(f"{where}.any: give a list of conditions")
            for i, sub in enumerate(spec):
                _check_condition(sub, columns, f"{where}.any[{i}]")
            continue
        if col not in columns:
            raise Invalid(f"{where}: unknown column {col!r}; known: {', '.join(sorted(columns))}")
        ops = spec if isinstance(spec, dict) else {"in" if isinstance(spec, list) else "eq": spec}
        for op, value in ops.items():
            if op not in OPS:
                raise Invalid(f"{where}.{col}: unknown operator {op!r}; use {sorted(OPS)}")
            if op == "is_null":
                if not isinstance(value, bool):
                    raise Invalid(f"{where}.{col}.is_null: give true or false")
                continue
            values = value if op in {"in", "not_in"} else [value]
            if not isinstance(values, list):
                raise Invalid(f"{where}.{col}.{op}: give a list")
            for v in values:
                _check_type(v, columns[col], f"{where}.{col}")


def _check_type(value: Any, kind: ColumnType, where: str) -> None:
    ok = {
        "string": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "timestamp": isinstance(value, str),
    }[kind]
    if not ok:
        raise Invalid(f"{where}: {value!r} does not match the column's type ({kind})")


def _check_formula(formula: str, where: str) -> None:
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise Invalid(f"{where}: formula is not an arithmetic expression: {exc.msg}") from exc
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load,
               ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed) or (
            isinstance(node, ast.Constant) and not isinstance(node.value, int | float)
        ):
            raise Invalid(
                f"{where}: formula may use metric names, numbers and + - * / only "
                f"(found {type(node).__name__})"
            )


def _check_metric(m: Metric, where: str) -> None:
    if m.kind == "derived":
        if not m.formula:
            raise Invalid(f"{where}: a derived metric needs a formula over other metrics")
        _check_formula(m.formula, where)
        return
    if m.fact is None:
        raise Invalid(f"{where}: say which fact it reads (fact: {' | '.join(FACTS)})")
    fact = FACTS.get(m.fact)
    if fact is None:
        raise Invalid(f"{where}: unknown fact {m.fact!r}; known: {', '.join(FACTS)}")
    cols = fact.all_columns()
    if m.time is not None and fact.columns.get(m.time) != "timestamp":
        raise Invalid(f"{where}.time: {m.time!r} is not a timestamp column of {m.fact}")
    # Filters pick the rows the next-event columns are computed over, so they cannot use them.
    _check_condition(m.filters, fact.columns, f"{where}.filters")
    if m.rows is not None:
        _check_condition(m.rows, cols, f"{where}.rows")
    if m.kind == "ratio":
        for part, col in (("column", m.column), ("base", m.base)):
            if not col or cols.get(col) not in NUMERIC:
                raise Invalid(
                    f"{where}.{part}: a ratio needs a numeric column of {m.fact} "
                    f"(sum of column / sum of base); known: {', '.join(sorted(cols))}"
                )
    if m.kind in {"nps", "mean"}:
        if not m.column:
            raise Invalid(f"{where}: a {m.kind} metric needs a column")
        if m.column not in cols:
            raise Invalid(
                f"{where}.column: unknown column {m.column!r} in {m.fact}; "
                f"known: {', '.join(sorted(cols))}"
            )
        numeric = cols[m.column] in NUMERIC
        if not numeric and not (m.kind == "mean" and m.per and m.per_agg == "count"):
            raise Invalid(
                f"{where}.column: {m.column!r} is {cols[m.column]}, a {m.kind} needs a number"
            )
    if m.scale is not None:
        if m.kind not in ("mean", "ratio"):
            raise Invalid(
                f"{where}.scale: only a mean or a ratio has a scale (NPS and % have their own)"
            )
        lo, hi = m.scale.get("min"), m.scale.get("max")
        if lo is not None and hi is not None and lo >= hi:
            raise Invalid(f"{where}.scale: min ({lo}) must be below max ({hi})")
    if m.per is not None and m.per not in cols:
        raise Invalid(f"{where}.per: unknown column {m.per!r} in {m.fact}")
    if m.kind == "proportion":
        if m.success is not None:
            _check_condition(m.success, cols, f"{where}.success")
        elif m.numerator is not None and m.denominator is not None:
            _check_condition(m.numerator, cols, f"{where}.numerator")
            _check_condition(m.denominator, cols, f"{where}.denominator")
        else:
            raise Invalid(f"{where}: a proportion needs success, or numerator and denominator")


def _metrics_from(doc: YamlDoc) -> tuple[dict[str, Metric], Lifecycle | None]:
    parsed = validate(doc, MetricsFile)
    lifecycle = None
    if parsed.lifecycle is not None:
        lc = parsed.lifecycle
        lifecycle = Lifecycle(tuple(lc.acquisition), tuple(lc.churn), tuple(lc.revenue))
    out: dict[str, Metric] = {}
    for name, model in parsed.metrics.items():
        where = f"{doc.where(('metrics', name))}: metric {name!r}"
        if not name.isidentifier():
            raise Invalid(f"{where}: a metric name is letters, digits and underscores")
        metric = Metric(name=name, source=doc.source, **model.model_dump())
        _check_metric(metric, where)
        out[name] = metric
    return out, lifecycle


def _check_references(metrics: dict[str, Metric]) -> None:
    for m in metrics.values():
        for ref in m.references:
            if ref not in metrics:
                raise Invalid(
                    f"{m.source}: metric {m.name!r}: formula names unknown metric {ref!r}"
                )
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name) :], name])
            m = metrics[name]
            raise Invalid(f"{m.source}: metric {name!r}: circular reference {cycle}")
        state[name] = 1
        for ref in metrics[name].references:
            visit(ref, [*path, name])
        state[name] = 2

    for name in metrics:
        visit(name, [])


# Parsed definitions by the files they came from: each file's path and a digest of its bytes.
# Reading and hashing a few kB costs microseconds; parsing and validating costs milliseconds.
# A file edited, added or removed gives a new key, so the next ``load`` parses again (a digest
# rather than a modification time: two edits within the clock's resolution still differ).
_LOADED: dict[tuple[tuple[str, str], ...], dict[str, Metric]] = {}
_LOADED_MAX = 16


def _stamp(files: list[Path]) -> tuple[tuple[str, str], ...] | None:
    try:
        return tuple((str(p), hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest())
                     for p in files)  # fmt: skip
    except OSError:
        return None  # unreadable: parse (and report it) the slow way


def load(*extra: Path) -> dict[str, Metric]:
    """Shipped definitions, then each extra file or folder of ``*.yaml`` (later wins).

    Parsed once per content of the files: later calls return the same definitions (a new
    dict each time) until a file's bytes change, or files come or go.
    Raises Invalid naming the file and line of a definition error (never cached).
    """
    files = yaml_files(SHIPPED, *extra)
    stamp = _stamp(files)
    cached = _LOADED.get(stamp) if stamp is not None else None
    if cached is not None:
        return dict(cached)
    metrics = _parse(files)
    if stamp is not None:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[stamp] = metrics
    return dict(metrics)


def _parse(files: list[Path]) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    lifecycle: Lifecycle | None = None
    for path in files:
        found, lc = _metrics_from(read(path))
        metrics.update(found)
        lifecycle = lc or lifecycle
    _check_references(metrics)
    for name, m in metrics.items():
        if m.fact == GROWTH_FACT:
            if lifecycle is None:
                raise Invalid(
                    f"{m.source}: metric {name!r} reads {GROWTH_FACT}, but no metrics "
                    "file defines the lifecycle (acquisition, churn, revenue events)"
                )
            metrics[name] = replace(m, lifecycle=lifecycle)
    return metrics


def installation_dir(data_dir: Path) -> Path:
    """Where an installation keeps its own metric files."""
    return data_dir / "metrics"
