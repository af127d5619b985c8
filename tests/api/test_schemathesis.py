"""Property-based run over the whole OpenAPI, in process: no input may produce a
server error, and every response must match the documented schema, status
codes and content types. Runs on SQLite and PostgreSQL like every API test."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.python import asgi

from qinqing.entrypoints.app import create_app
from qinqing.runtime import Runtime
from support.accounts import add_client, person_with_account
from support.profiles import examples

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]
EXAMPLES = 60


def test_whole_api_conforms(rt: Runtime, client: TestClient) -> None:
    add_client(rt, "institution")
    _, _, person_headers = person_with_account(rt, client)
    app = create_app(rt)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    # One in-process session for every case (schemathesis makes a new one per case
    # otherwise), which does not look through the environment for proxies at each
    # request: an in-process app has none.
    with asgi.get_client(app) as session:
        session.trust_env = False
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=examples(EXAMPLES),
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def run(case: schemathesis.Case) -> None:
                sent = {k.lower() for k in (case.headers or {})}
                # Cases without their own Authorization act as a logged-in person,
                # so the authenticated paths are explored past the 401.
                headers = None if "authorization" in sent else person_headers
                case.call_and_validate(session=session, headers=headers, checks=CHECKS)

            run()
