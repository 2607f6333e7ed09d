"""Schemathesis against the OpenAPI document of the live service (optional: needs schemathesis).

For every documented operation, generated requests — with an investigator key, a custodian
key, and no key at all — must never produce a server error, and without a key never succeed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reid.test_api import Service, service  # noqa: F401 - the live-service fixture

schemathesis = pytest.importorskip("schemathesis")


def test_generated_requests_never_break_the_service(service: Service) -> None:  # noqa: F811
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    callers = {"investigator": service.keys["ivan/investigator"],
               "custodian": service.keys["alice/custodian"], "anonymous": None}
    calls = [0]

    def fuzz(op: Any, headers: dict[str, str], anonymous: bool) -> None:
        @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=service.url, headers=headers)
            calls[0] += 1
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
            if anonymous and case.path != "/healthz":
                assert response.status_code == 401, (case.method, case.path)

        check()

    for op in operations:
        for key in callers.values():
            fuzz(op, {"Authorization": f"Bearer {key}"} if key else {}, key is None)
    assert calls[0] >= len(operations) * len(callers)
    with service.client("alice/custodian") as c:
        assert c.get("/v1/log/verify").json()["ok"] is True
