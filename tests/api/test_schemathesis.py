"""Every operation of the OpenAPI schema, fuzzed with every role's key: no 5xx, and every
answer (status, content type, body) is one the schema documents.

Each operation and role gets ``EXAMPLES`` cases, valid and schema-breaking alike, in a fixed
(derandomized) sequence: about 600 tests (operations x roles) in under 2 minutes of one core.
``CXM_FUZZ_EXAMPLES=200`` fuzzes deeper by hand.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cxm.config import load_settings
from cxm.store import create_engine
from tests.api.conftest import ROLES, Company

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("CXM_FUZZ_EXAMPLES", "8"))  # per operation and role


def _literal_paths(schema: schemathesis.BaseSchema) -> set[str]:
    """Paths without parameters: ``/cases/metrics`` is a route of its own, so a case id
    ``metrics`` (which the schema excludes, and negative fuzzing therefore sends) reaches that
    route and is checked in that route's own test."""
    return {path for path in schema.raw_schema["paths"] if "{" not in path}


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, read from the app's schema (no store needed)."""
    from cxm.web.app import create_app

    settings_ = load_settings(
        data_dir=Path(tempfile.gettempdir()), database_url="duckdb:///:memory:"
    )
    app = create_app(settings_, engine=create_engine("duckdb:///:memory:"), run_worker=False)
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    ]


@pytest.fixture(scope="module")
def api_schema(api_company: Company) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/api/openapi.json", api_company.app)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_answers_as_documented(
    api_schema: schemathesis.BaseSchema, api_company: Company, role: str, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = api_company.headers(role)
    other_routes = _literal_paths(api_schema) - {path}

    # Valid input and input that breaks the schema (nulls, wrong types, out of range) alike.
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        assume(case.formatted_path not in other_routes)
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
