"""Ibis expressions over customer profiles, for read models above this domain."""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend


def with_trait(con: BaseBackend, name: str, value: str) -> ir.Column:
    """The ids of the customers whose trait ``name`` is ``value`` (for ``isin`` filters)."""
    traits = con.table("customer_traits")
    return traits.filter(traits.name == name, traits.value == value).customer_id
