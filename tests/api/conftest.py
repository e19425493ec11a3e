"""A small company behind the real app, with one API key per role, for the API-wide tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from cxm.actions import service as actions
from cxm.config import load_settings
from cxm.customers import service as customers_service
from cxm.interactions import service as interactions
from cxm.org import auth
from cxm.org import service as org
from cxm.text import taxonomy
from cxm.yamldoc import parse
from tests.actions.conftest import DETRACTOR_RULES, add_response
from tests.conftest import migrated_duckdb
from tests.surveys.conftest import apply as apply_survey
from tests.web.factories import company

ROLES = ("admin", "cx_lead", "manager", "agent", "viewer", "ingest")


@dataclass
class Company:
    app: FastAPI
    engine: Engine
    keys: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def build_company(engine: Engine, data_dir: Path) -> Company:
    """Departments, touchpoints, answers with comments, a survey, and a key for every role.

    Keys of ``manager``, ``agent`` and ``viewer`` belong to users of that role, so the
    server scopes them as it scopes those users; ``admin``, ``cx_lead`` and ``ingest`` are
    the plain admin, read and ingest keys.
    """
    from cxm.web.app import create_app

    with engine.begin() as conn:
        org.seed_defaults(conn)
    company(engine)
    keys: dict[str, str] = {}
    with engine.begin() as conn:
        apply_survey(conn)
        taxonomy.apply(conn, taxonomy.starter_doc())
        actions.apply_rules(conn, parse(DETRACTOR_RULES, "rules.yaml"))
        interactions.ingest(conn, [
            {"name": "order_delivered", "touchpoint": "delivery", "email": "ada@example.com",
             "event_id": f"e{i}", "traits": {"name": "Ada"}} for i in range(3)
        ], "api")  # fmt: skip
        customer = customers_service.list_customers(conn, 1, 0)[0]["id"]
        add_response(conn, customer, "delivery", nps=2)
        actions.run_rules(conn)
        manager = auth.create_user(conn, "manager@example.com", "manager",
                                   department_key="supply_chain")  # fmt: skip
        team = org.list_teams(conn, "service")[0].key
        agent = auth.create_user(conn, "agent@example.com", "agent", team_key=team)
        viewer = auth.create_user(conn, "viewer@example.com", "viewer")
        keys["admin"] = auth.create_api_key(conn, "admin")
        keys["cx_lead"] = auth.create_api_key(conn, "read")
        keys["ingest"] = auth.create_api_key(conn, "ingest")
        keys["manager"] = auth.create_api_key(conn, "read", user_id=manager)
        keys["agent"] = auth.create_api_key(conn, "read", user_id=agent)
        keys["viewer"] = auth.create_api_key(conn, "read", user_id=viewer)
    settings = load_settings(data_dir=data_dir, database_url=str(engine.url))
    return Company(create_app(settings, engine=engine, run_worker=False), engine, keys)


@pytest.fixture(scope="module")
def api_company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    """One company on a DuckDB file for a whole test module (the fuzzer writes into it)."""
    data_dir = tmp_path_factory.mktemp("api")
    engine = migrated_duckdb(data_dir / "cxm.duckdb")
    yield build_company(engine, data_dir)
    engine.dispose()
