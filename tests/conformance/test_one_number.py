"""One number everywhere: every figure on every dashboard page of the demo company equals the
same metric asked through the API and through the CLI, for the same filters, on DuckDB and on
PostgreSQL.

Each score on a page carries the query that gives it alone (``data-query``: the metric, the
page's filters plus the row's slice, the period); the test reads every one of them, asks the
API and the CLI, and compares the value as the page rounds it and the number of answers.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.org import service as org
from tests.conftest import make_key
from tests.web.test_sessions import sign_in

SCORE = re.compile(
    r'<span class="score"[^>]*?data-query="([^"]+)"[^>]*title="n=(\d+)[^"]*">([^<]+)</span>'
)


@pytest.fixture(params=["duck", pytest.param("pg", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Engine, Path]:
    """The default demo company on DuckDB and on PostgreSQL (the conformance stores)."""
    engine: Engine = request.getfixturevalue(request.param)
    return engine, tmp_path


@pytest.fixture
def lead(demo: tuple[Engine, Path]) -> Iterator[TestClient]:
    from cxm.web.app import create_app

    engine, root = demo
    settings = load_settings(data_dir=root, database_url=engine.url.render_as_string(False))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "cx.lead@northwind.example", "demo-cxlead") == 303
        yield client


def _pages(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        keys = [d.key for d in org.list_departments(conn)]
    views = ["", "?segment=consumer", "?start=2026-01-01&end=2026-12-31"]
    return (
        ["/" + v for v in views]
        + ["/departments"]
        + [f"/departments/{k}{v}" for k in keys for v in views[:2]]
    )


def _figures(client: TestClient, pages: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    found: dict[str, list[tuple[str, int, str]]] = {}
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        for query, n, shown in SCORE.findall(page.text):
            found.setdefault(html.unescape(query), []).append((path, int(n), shown.strip()))
    return found


def _api(client: TestClient, headers: dict[str, str], q: dict[str, Any]) -> dict[str, Any]:
    params: list[tuple[str, str]] = [("filter", f"{k}={v}") for k, v in q["filters"].items()]
    params += [(k, q[k]) for k in ("start", "end") if q[k]]
    answer = client.get(f"/api/v1/metrics/{q['metric']}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["rows"]
    return dict(row)


def _cli(engine: Engine, root: Path, q: dict[str, Any]) -> dict[str, Any]:
    args = ["metrics", "show", q["metric"], "--format", "json"]
    for k, v in q["filters"].items():
        args += ["--filter", f"{k}={v}"]
    args += [a for k in ("start", "end") if q[k] for a in (f"--{k}", q[k])]
    env = {"CXM_DATABASE_URL": engine.url.render_as_string(False), "CXM_DATA_DIR": str(root)}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    return dict(row)


def test_every_dashboard_figure_equals_the_api_and_the_cli(
    demo: tuple[Engine, Path], lead: TestClient
) -> None:
    engine, root = demo
    figures = _figures(lead, _pages(engine))
    assert len(figures) >= 30, sorted(figures)  # an empty scan would prove nothing
    headers = make_key(engine, "read")
    for raw, seen in figures.items():
        q = json.loads(raw)
        api, cli_row = _api(lead, headers, q), _cli(engine, root, q)
        for path, n, shown in seen:
            where = f"{q['metric']} {q['filters']} {q['start']}..{q['end']} on {path}"
            assert api["n"] == n == cli_row["n"], where
            assert f"{api['value']:.1f}" == shown, where
            assert cli_row["value"] == pytest.approx(api["value"], abs=1e-9), where
