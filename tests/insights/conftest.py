"""The default demo company, generated and loaded once for the prediction and driver tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine


@pytest.fixture(scope="session")
def demo_company(
    tmp_path_factory: pytest.TempPathFactory, default_demo: Callable[[Path], Any]
) -> Iterator[tuple[Engine, Path]]:
    """``(engine, data dir)`` of the default demo company (2,000 customers, 6 months, seed 7);
    its generated files (ground truth included) lie in ``<data dir>/files``."""
    root = tmp_path_factory.mktemp("insights-demo-company")
    engine, _ = default_demo(root)
    yield engine, root
    engine.dispose()
