"""The customers domain's facts for every reader: profiles, traits, the current-customer map.

A merge re-points every customer-keyed row in its own transaction
(``customers.service.follow_merges``); the accessors here map ids through
``customers.merged_into`` as well, so a fact written later under a merged-away id (a job
queued before the merge, an import of old ids) still counts for the surviving customer.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers.tables import (
    customer_identities,
    customer_merges,
    customer_traits,
    customers,
    privacy_requests,
    trait_types,
)

__all__ = [
    "current_customer",
    "customer_identities",
    "customer_merges",
    "customer_traits",
    "customers",
    "declared_trait_type",
    "every_profile",
    "merged",
    "privacy_requests",
    "profiles",
    "trait_names",
    "trait_type",
    "trait_types",
    "traits",
    "with_trait",
]


def merged(con: BaseBackend) -> ir.Table:
    """``(_from, _into)``: every merged-away customer id and its survivor (one hop deep)."""
    c = con.table("customers")
    return c.filter(c.merged_into.notnull()).select(_from=c.id, _into=c.merged_into)


def current_customer(con: BaseBackend, t: ir.Table, column: str = "customer_id") -> ir.Table:
    """``t`` with ``column`` holding the current (surviving) customer id of each row.

    Shape: the same columns and rows as ``t``. Rows without a customer keep null.
    """
    m = merged(con)
    j = t.left_join(m, t[column] == m._from)
    return j.mutate(**{column: ibis.coalesce(j._into, j[column])}).drop("_from", "_into")


def profiles(con: BaseBackend) -> ir.Table:
    """Current customer profiles: neither merged away nor erased (one row per customer)."""
    c = con.table("customers")
    return c.filter(c.merged_into.isnull(), c.erased_at.isnull())


def every_profile(con: BaseBackend) -> ir.Table:
    """Every profile row, merged-away and erased ones included (their facts are blanked)."""
    return con.table("customers")


def traits(con: BaseBackend) -> ir.Table:
    """Traits in long form ``(customer_id, name, value, set_at)``, on current customers only
    (a merge moves each trait's latest value to the survivor)."""
    return con.table("customer_traits")


def declared_trait_type(con: BaseBackend, name: str) -> str | None:
    """The type stored for trait ``name`` (inferred at its first write, or declared), or None
    when none is stored (traits written before types were kept, or a lake without them)."""
    try:
        # Asking for the table, not listing tables: listing differs between backends.
        tt = con.table("trait_types")
    except Exception:
        return None
    found = tt.filter(tt.name == name).type.to_pyarrow().to_pylist()
    return str(found[0]) if found else None


def trait_type(con: BaseBackend, name: str) -> str:
    """The type of trait ``name``: number, date, boolean or string (see ``customers.traits``).

    The stored type when there is one; otherwise inferred now from (up to 1,000 of) the
    stored values, as the first write would have.
    """
    from cxm.customers.traits import infer

    stored = declared_trait_type(con, name)
    if stored is not None:
        return stored
    t = traits(con)
    sample = t.filter(t.name == name, t.value.notnull()).select("value").limit(1000)
    return infer(sample.value.to_pyarrow().to_pylist())


def trait_names(con: BaseBackend) -> list[str]:
    """Every trait name some customer has, sorted."""
    t = traits(con)
    return sorted(t.select("name").distinct().name.to_pyarrow().to_pylist())


def with_trait(con: BaseBackend, name: str, value: str) -> ir.Column:
    """The ids of the customers whose trait ``name`` is ``value`` (for ``isin`` filters)."""
    t = traits(con)
    return t.filter(t.name == name, t.value == value).customer_id
