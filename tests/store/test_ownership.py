"""Each fact has one owner: no domain reads another domain's table by name.

import-linter's contracts (``make lint``) forbid importing another domain's ``tables`` module;
this test covers what they cannot see, an Ibis ``con.table("name")`` with a literal name.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import sqlalchemy as sa

import cxm

SRC = Path(cxm.__file__).parent


def _owners() -> dict[str, str]:
    """Table name -> the domain whose ``tables`` module defines it."""
    out: dict[str, str] = {}
    for mod in pkgutil.iter_modules(cxm.__path__):
        try:
            tables = importlib.import_module(f"cxm.{mod.name}.tables")
        except ModuleNotFoundError:
            continue
        for value in vars(tables).values():
            if isinstance(value, sa.Table):
                out[value.name] = mod.name
    return out


def _named_reads(path: Path) -> list[tuple[int, str]]:
    """``x.table("literal")`` calls in one module: (line, table name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "table"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_no_domain_reads_another_domains_table_by_name() -> None:
    owners = _owners()
    assert {"responses", "interactions", "cases", "customers"} <= set(owners)
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "store" or len(rel.parts) < 2:
            continue
        for line, name in _named_reads(path):
            owner = owners.get(name)
            if owner is not None and owner != rel.parts[0]:
                wrong.append(f"{rel}:{line} reads {name!r}, owned by cxm.{owner} (use its facts)")
    assert wrong == []


def test_the_scan_finds_a_read_by_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('def f(con):\n    return con.table("responses").count()\n')
    assert _named_reads(sample) == [(2, "responses")]
