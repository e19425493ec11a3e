"""Fixtures for text analytics: a store holding a synthetic company's comments."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cxm.text import taxonomy
from tests.text import corpus


@pytest.fixture
def comments(seeded: Engine) -> tuple[Engine, list[dict[str, Any]]]:
    """The seeded store with 600 commented responses and the starter taxonomy applied."""
    rows = corpus.responses(600)
    with seeded.begin() as conn:
        corpus.insert(conn, rows)
        taxonomy.apply(conn, taxonomy.starter_doc())
    return seeded, rows
