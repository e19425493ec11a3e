"""Typed slice dimensions: customer traits and properties of the event behind a survey.

* ``trait:NAME`` slices by a customer trait, read as its type (``cxm.customers.traits``):
  numbers and dates sort by value, booleans read ``true``/``false``, strings as written.
* ``trigger:PROP`` slices the rows of a fact that records the interaction that triggered it
  (responses and invitations: ``trigger_event_id``) by the property ``PROP`` of that
  interaction, e.g. ``trigger:late_days`` of the ``order_delivered`` behind a delivery CSAT.
  The property's type is inferred from its values the way a trait's is.
* Bins: a number or date dimension may be cut at edges (``--bins 0,6,12,24``): ``< 0``,
  ``[0, 6)``, ``[6, 12)``, ``[12, 24)``, ``>= 24``; each bin holds its lower edge. Slices keep
  the bins' order.

A value missing, or not readable as the dimension's type, slices as ``(none)``. Everything is
an Ibis expression, so the same slice runs on DuckDB, PostgreSQL and Spark; a dimension's type
is read (one small query) when the expression is built.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers import facts as customer_facts
from cxm.customers.traits import DATE, NUMBER, infer
from cxm.errors import Invalid
from cxm.interactions import facts as interaction_facts

TRAIT = "trait:"
TRIGGER = "trigger:"
TRAIT_SHORTHANDS = {"segment", "region"}  # trait dimensions that need no ``trait:``
NONE_LABEL = "(none)"
# How a binned dimension is spelled inside the metrics layer: ``trait:tenure@0_6_12``. The
# spelling is also the aggregated column's name, so it holds only characters every engine
# accepts in one.
_BINNED = "@"
_SAFE = re.compile(r"[^A-Za-z0-9_:]")


def base(dim: str) -> str:
    """The dimension without its bins (``trait:tenure@...`` is ``trait:tenure``)."""
    return dim.split(_BINNED, 1)[0]


def trait_name(dim: str) -> str | None:
    b = base(dim)
    if b in TRAIT_SHORTHANDS:
        return b
    if b.startswith(TRAIT) and len(b) > len(TRAIT):
        return b[len(TRAIT) :]
    return None


def trigger_property(dim: str) -> str | None:
    b = base(dim)
    if b.startswith(TRIGGER) and len(b) > len(TRIGGER):
        return b[len(TRIGGER) :]
    return None


def is_typed(dim: str) -> bool:
    """Whether ``dim`` is a trait or trigger dimension (the ones with a type and bins)."""
    return trait_name(dim) is not None or trigger_property(dim) is not None


def column_name(dim: str) -> str | None:
    """The output column of a typed dimension (``trait:plan`` is ``plan``), else None."""
    return trait_name(dim) or trigger_property(dim)


def key(dim: str) -> str:
    """The aggregated column holding ``dim``'s slice labels."""
    return "dim__" + _SAFE.sub("_", dim)


def order_key(dim: str) -> str:
    """The aggregated column that orders ``dim``'s slices (numbers, dates, bins)."""
    return "ord__" + _SAFE.sub("_", dim)


# --- bins ----------------------------------------------------------------------------------


def _spec(dim: str) -> dict[str, object]:
    if _BINNED not in dim:
        return {}
    spec: dict[str, object] = json.loads(dim.split(_BINNED, 1)[1])
    return spec


def _spell(dim: str, spec: dict[str, object]) -> str:
    # The type and the edges travel inside the dimension's name, so the name says everything
    # the expression depends on (compiled queries are kept by it). JSON keeps each edge exact.
    if not spec:
        return base(dim)
    return base(dim) + _BINNED + json.dumps(spec, separators=(",", ":"), sort_keys=True)


def binned(dim: str, edges: Sequence[str]) -> str:
    """``dim`` cut at ``edges`` (their text as given; checked against the type when read)."""
    if not is_typed(dim):
        raise Invalid(
            f"bins: {dim!r} has no values to cut; bins apply to trait:NAME and trigger:PROP "
            "dimensions of type number or date"
        )
    clean = [str(e).strip() for e in edges if str(e).strip()]
    if not clean:
        raise Invalid(f"bins for {dim}: give at least one edge, e.g. 0,6,12,24")
    return _spell(dim, {**_spec(dim), "bins": clean})


def typed_as(dim: str, kind: str) -> str:
    """``dim`` with its values' type spelled in (what ``kind_of`` reads back)."""
    return _spell(dim, {**_spec(dim), "type": kind})


def edges_of(dim: str) -> list[str] | None:
    edges = _spec(dim).get("bins")
    return [str(e) for e in edges] if isinstance(edges, list) else None


def kind_of(dim: str) -> str | None:
    kind = _spec(dim).get("type")
    return str(kind) if kind else None


def parse_bins(items: Sequence[str], by: Sequence[str]) -> dict[str, list[str]]:
    """``--bins`` values as {dimension: edges}.

    Each item is ``EDGES`` (comma-separated; for the one trait or trigger dimension in ``by``)
    or ``DIMENSION=EDGES``. Invalid when an item names no such dimension or is ambiguous.
    """
    out: dict[str, list[str]] = {}
    typed = [d for d in by if d.startswith((TRAIT, TRIGGER))]
    for item in items:
        dim, sep, spec = item.rpartition("=")
        if not sep:
            if len(typed) != 1:
                raise Invalid(
                    f"bins {item!r}: say which dimension to cut, as DIMENSION=EDGES "
                    f"(e.g. trait:tenure_months=0,6,12,24); slices: {', '.join(by) or 'none'}"
                )
            dim = typed[0]
        if dim not in by:
            raise Invalid(f"bins for {dim!r}: the metric is not sliced by it (by: "
                          f"{', '.join(by) or 'nothing'})")  # fmt: skip
        out[dim] = [e.strip() for e in spec.split(",") if e.strip()]
    return out


def _edge_values(dim: str, edges: Sequence[str], kind: str) -> list[float] | list[dt.date]:
    if kind == "number":
        try:
            numbers = [float(e) for e in edges]
        except ValueError as exc:
            raise Invalid(f"bins for {base(dim)} (numbers): {', '.join(edges)} are not all "
                          "numbers") from exc  # fmt: skip
        values: list[float] | list[dt.date] = numbers
    elif kind == "date":
        try:
            values = [dt.date.fromisoformat(e) for e in edges]
        except ValueError as exc:
            raise Invalid(f"bins for {base(dim)} (dates): {', '.join(edges)} are not all "
                          "dates like 2026-01-31") from exc  # fmt: skip
    else:
        raise Invalid(f"bins for {base(dim)}: its values are {kind}s; bins apply to numbers "
                      "and dates")  # fmt: skip
    if any(b <= a for a, b in itertools.pairwise(values)):  # type: ignore[operator]
        raise Invalid(f"bins for {base(dim)}: edges must increase ({', '.join(edges)})")
    return values


# --- typed values --------------------------------------------------------------------------


def _typed(text: ir.StringValue, kind: str, dim: str) -> tuple[ir.StringValue, ir.Value | None]:
    """(label, order) of a value held as text, read as ``kind`` and cut at ``dim``'s bins."""
    v = text.strip()
    edges = edges_of(dim)
    cuts = _edge_values(dim, edges, kind) if edges is not None else None
    none = ibis.literal(NONE_LABEL)
    if kind == "number":
        ok = v.re_search(NUMBER).fill_null(False)
        value: ir.Value = ibis.ifelse(ok, v.cast("float64"), ibis.null().cast("float64"))
    elif kind == "date":
        ok = v.re_search(DATE).fill_null(False)
        value = ibis.ifelse(ok, v.substr(0, 10).cast("date"), ibis.null().cast("date"))
    elif kind == "boolean":
        low = v.lower()
        label = ibis.ifelse(low.isin(["true", "false"]).fill_null(False), low, none)
        return label, None
    else:
        return v.fill_null(NONE_LABEL), None
    if edges is None or cuts is None:
        label = ibis.ifelse(ok, v.substr(0, 10) if kind == "date" else v, none)
        # Dates in ISO form sort as text; numbers need their value.
        return label, (value if kind == "number" else None)
    labels = [f"< {edges[0]}"]
    labels += [f"[{a}, {b})" for a, b in itertools.pairwise(edges)]
    labels.append(f">= {edges[-1]}")
    label_expr: ir.Value = ibis.literal(labels[-1])
    order: ir.Value = ibis.literal(len(labels) - 1)
    # From the top edge down: the first edge a value is below decides its bin.
    for i in range(len(cuts) - 1, -1, -1):
        below = value < ibis.literal(cuts[i])
        label_expr = ibis.ifelse(below, ibis.literal(labels[i]), label_expr)
        order = ibis.ifelse(below, ibis.literal(i), order)
    missing = value.isnull()
    return (
        ibis.ifelse(missing, none, label_expr).cast("string"),
        ibis.ifelse(missing, ibis.null().cast("int64"), order.cast("int64")),
    )


def trait(
    backend: BaseBackend, t: ir.Table, customer: str, dim: str, i: int
) -> tuple[ir.Table, str, str | None]:
    """``t`` with the label (and order) of trait dimension ``dim``; their column names."""
    name = trait_name(dim)
    assert name is not None
    kind = kind_of(dim) or customer_facts.trait_type(backend, name)
    tr = customer_facts.traits(backend)
    tr = tr.filter(tr.name == name)
    tr = tr.select(**{f"_cid{i}": tr.customer_id, f"_trait{i}": tr.value})
    t = t.left_join(tr, t[customer] == tr[f"_cid{i}"])
    label, order = _typed(t[f"_trait{i}"], kind, dim)
    return _put(t, i, label, order)


def _put(
    t: ir.Table, i: int, label: ir.Value, order: ir.Value | None
) -> tuple[ir.Table, str, str | None]:
    cols: dict[str, ir.Value] = {f"_lab{i}": label}
    if order is not None:
        cols[f"_ord{i}"] = order
    return t.mutate(**cols), f"_lab{i}", (f"_ord{i}" if order is not None else None)


def property_text(log: ir.Table, prop: str) -> ir.StringValue:
    """A property of the log's ``properties`` as plain text: a JSON column (DuckDB,
    PostgreSQL) gives the value's JSON text ('"T-1"', '3'); a Parquet lake keeps the document
    as a string, whose value Spark gives unquoted. Quotes are dropped and JSON null is null."""
    quoted = not log.properties.type().is_string()
    raw = log.properties[prop] if quoted else log.properties.cast("json")[prop]
    text = raw.cast("string")
    unquoted = ibis.ifelse(
        text.startswith('"') & text.endswith('"') & (text.length() >= 2),
        text.substr(1, text.length() - 2),
        text,
    )
    return ibis.ifelse(text == "null", ibis.null().cast("string"), unquoted)


def trigger_values(backend: BaseBackend, trigger_ids: ir.Column, prop: str) -> ir.Column:
    """The text of property ``prop`` of the interactions whose ids are ``trigger_ids``."""
    log = interaction_facts.log(backend)
    log = log.filter(log.event_id.isin(trigger_ids))
    return log.select(v=property_text(log, prop)).v


def trigger(
    backend: BaseBackend, t: ir.Table, column: str, dim: str, i: int
) -> tuple[ir.Table, str, str | None]:
    """``t`` with the label (and order) of trigger dimension ``dim``; their column names."""
    prop = trigger_property(dim)
    assert prop is not None
    kind = kind_of(dim) or trigger_kind(backend, t[column], dim)
    log = interaction_facts.log(backend)
    log = log.select(**{f"_tev{i}": log.event_id, f"_tprop{i}": property_text(log, prop)})
    t = t.left_join(log, t[column] == log[f"_tev{i}"])
    label, order = _typed(t[f"_tprop{i}"], kind, dim)
    return _put(t, i, label, order)


# --- checks --------------------------------------------------------------------------------


def trait_kind(backend: BaseBackend, dim: str) -> str:
    """The type of trait dimension ``dim``'s values. Invalid, naming the known traits, for a
    ``trait:NAME`` no customer has and no one declared."""
    name = trait_name(dim)
    assert name is not None
    stored = customer_facts.declared_trait_type(backend, name)
    if stored is not None:
        return stored
    if base(dim).startswith(TRAIT):
        known = customer_facts.trait_names(backend)
        if name not in known:
            raise Invalid(f"no customer has the trait {name!r}; known traits: "
                          f"{', '.join(known) or 'none yet'}")  # fmt: skip
    return customer_facts.trait_type(backend, name)


def trigger_kind(backend: BaseBackend, trigger_ids: ir.Column | None, dim: str) -> str:
    """The type of trigger dimension ``dim``'s property, inferred from (up to 1,000 of) its
    values among the events behind ``trigger_ids`` (None: the rows record no trigger).
    Invalid, naming the known properties, when no such event carries it."""
    prop = trigger_property(dim)
    assert prop is not None
    if trigger_ids is None:
        raise Invalid(f"{TRIGGER + prop}: this metric's rows record no triggering event (only "
                      "survey responses and invitations do)")  # fmt: skip
    values = trigger_values(backend, trigger_ids, prop).name("v").as_table()
    sample = values.filter(values.v.notnull()).limit(1000).v.to_pyarrow().to_pylist()
    if not sample:
        found = _trigger_keys(backend, trigger_ids)
        raise Invalid(
            f"no event that triggered a survey has the property {prop!r}; known: "
            f"{', '.join(TRIGGER + k for k in sorted(found)) or 'none (no response was triggered by an event)'}"  # noqa: E501
        )
    return infer(sample)


def _trigger_keys(backend: BaseBackend, ids: ir.Column, limit: int = 2000) -> set[str]:
    """Property names of (up to ``limit`` of) the events behind ``ids``."""
    log = interaction_facts.log(backend)
    log = log.filter(log.event_id.isin(ids), log.properties.notnull())
    docs = log.select(p=log.properties.cast("string")).limit(limit).p.to_pyarrow().to_pylist()
    keys: set[str] = set()
    for doc in docs:
        try:
            parsed = json.loads(doc) if isinstance(doc, str) else doc
        except ValueError:
            continue
        if isinstance(parsed, Mapping):
            keys.update(str(k) for k in parsed)
    return keys
