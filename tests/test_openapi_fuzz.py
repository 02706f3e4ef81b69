"""Schemathesis against the running service: requests generated from its own /openapi.json.

Every documented route gets bodies, query strings and headers built from the schema (valid and
not), sent to `emodetect serve` over real HTTP. The properties: no 5xx, every status the route
answers is one it documents, and every JSON answer matches the documented schema.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance, status_code_conformance)

from conftest import live_server  # noqa: E402


@pytest.fixture(scope="module")
def api_schema():
    with live_server() as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_every_route_answers_what_it_documents(api_schema):
    # Operation by operation with hypothesis directly: schemathesis' pytest plugin does not run
    # under pytest 9 (it reads a private attribute pytest removed).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/detect", "/v1/text", "/v1/voice", "/v1/models"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_as_documented(case):
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                           response_schema_conformance])

        answers_as_documented()
