"""The default demo company, generated and loaded once for the prediction and driver tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.store import create_engine, upgrade


@pytest.fixture(scope="session")
def demo_company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Path]]:
    """``(engine, data dir)`` of the default demo company (2,000 customers, 6 months, seed 7);
    its generated files (ground truth included) lie in ``<data dir>/files``."""
    root = tmp_path_factory.mktemp("insights-demo-company")
    generate(root / "files", customers=2000, months=6, seed=7)
    engine = create_engine(f"duckdb:///{root / 'cxm.duckdb'}")
    upgrade(engine)
    load(engine, root / "files")
    yield engine, root
    engine.dispose()
