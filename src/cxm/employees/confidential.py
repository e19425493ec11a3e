"""Which group results may be shown: the minimum group size, including by subtraction.

A group's figure is shown only when at least ``minimum`` people answered in it. Showing a
group and some of its subgroups can reveal the rest by subtraction (a department of 11 and one
of its teams of 6 give away the other 5, or the other 4): so wherever a shown group minus its
shown subgroups (at any one level below it) leaves between 1 and ``minimum - 1`` people, the
smallest shown subgroup is hidden too, until no such remainder is left. This is the classic
secondary cell suppression of statistical disclosure control (Hundepool et al., *Statistical
Disclosure Control*, Wiley 2012, ch. 4), applied to a tree of nested groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MINIMUM = 5


@dataclass(frozen=True)
class Node:
    """A group in the tree: its parent (None for the whole company), level and respondents."""

    parent: str | None
    level: int
    n: int


def _ancestors(nodes: Mapping[str, Node], key: str) -> list[str]:
    out = []
    parent = nodes[key].parent
    while parent is not None:
        out.append(parent)
        parent = nodes[parent].parent
    return out


def disclosed(nodes: Mapping[str, Node], minimum: int = DEFAULT_MINIMUM) -> set[str]:
    """The keys of the groups whose figures may be shown.

    ``nodes``: every group with its parent and respondent count (distinct people). A group is
    shown when ``n >= minimum`` and no shown ancestor minus its shown descendants at the
    group's level leaves a remainder of 1 to ``minimum - 1`` people. Deterministic: among
    candidates the smallest group (then the first key) is hidden first.
    """
    if minimum < 1:
        raise ValueError("the minimum group size is at least 1")
    shown = {k for k, node in nodes.items() if node.n >= minimum}
    below: dict[tuple[str, int], list[str]] = {}
    for k, node in nodes.items():
        for a in _ancestors(nodes, k):
            below.setdefault((a, node.level), []).append(k)
    changed = True
    while changed:
        changed = False
        for (ancestor, _level), members in sorted(below.items()):
            if ancestor not in shown:
                continue
            visible = [m for m in members if m in shown]
            if not visible:
                continue
            remainder = nodes[ancestor].n - sum(nodes[m].n for m in visible)
            if 0 < remainder < minimum:
                smallest = min(visible, key=lambda m: (nodes[m].n, m))
                shown.discard(smallest)
                changed = True
    return shown
