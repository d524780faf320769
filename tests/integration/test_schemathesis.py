"""A bounded schemathesis run against the real app (uvicorn on a free port), inside the suite.

Every operation of the OpenAPI document gets `MAX_EXAMPLES` generated requests (positive and
negative), sent as a provisioned tenant's owner on `/api` routes (with its `Host`) and as the
operator on `/platform` routes. Path ids are now random, now the real ones (the tenant's file,
category, audience, the tenant itself), so both the 404 paths and the real ones are exercised.

Destructive operations never get the main tenant's ids: offboarding and suspending
(`DELETE /platform/v1/tenants/{id}`, `POST .../suspend`) and deletes of its file and terms are
aimed at a throwaway tenant or at random ids, so the rest of the run keeps a tenant to act on.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tenantry.config import Settings
from tests.integration.live import LiveTenant, operator_token, provision, serve

MAX_EXAMPLES = 60
# A tus PATCH body is raw bytes, as application/octet-stream's are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _ids(tenant: LiveTenant, spare: LiveTenant, path: str, method: str) -> dict[str, str]:
    """The real ids to put in a path (destructive operations get the spare tenant's)."""
    destructive = method == "DELETE" or path.endswith("/suspend")
    target = spare if destructive else tenant
    term = target.audience_id if "/audiences" in path else target.category_id
    return {"file_id": target.file_id, "term_id": term, "tenant_id": target.id}


def _headers(path: str, tenant: LiveTenant, operator: str) -> dict[str, str]:
    if path.startswith("/platform/"):
        return {"Authorization": f"Bearer {operator}"}
    if path.startswith("/api/"):
        return {"Host": tenant.host, "Authorization": f"Bearer {tenant.owner_token}"}
    return {}


def _fuzz(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    real_ids: dict[str, str],
    counts: Counter[int | str],
) -> None:
    """`MAX_EXAMPLES` generated requests to one operation; raises what schemathesis found."""

    @given(case=operation.as_strategy(), use_real_ids=st.booleans())
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimise
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, use_real_ids: bool) -> None:
        if use_real_ids and case.path_parameters:
            for name in case.path_parameters:
                if name in real_ids:
                    case.path_parameters[name] = real_ids[name]
        try:
            response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        except Exception:
            counts["failed"] += 1
            raise
        counts[response.status_code] += 1

    run()


def test_generated_requests_meet_the_document(app: Litestar, settings: Settings) -> None:
    failures: list[str] = []
    statuses: dict[str, Counter[int | str]] = defaultdict(Counter)
    started = time.monotonic()
    with serve(app) as base_url:
        operator = operator_token(settings, base_url)
        tenant = provision(base_url, operator, "fuzzed")
        spare = provision(base_url, operator, "spare")
        schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            path, method = operation.path, operation.method.upper()
            # Deletes on /api act on the spare tenant's file and terms, as the spare's owner.
            actor = spare if method == "DELETE" and path.startswith("/api/") else tenant
            try:
                _fuzz(
                    operation,
                    base_url,
                    _headers(path, actor, operator),
                    _ids(tenant, spare, path, method),
                    statuses[f"{method} {path}"],
                )
            except (Exception, BaseExceptionGroup) as exc:  # each is reported, the run goes on
                failures.append(f"{method} {path}: {exc}"[:3000])
    elapsed = time.monotonic() - started
    calls = sum(sum(counts.values()) for counts in statuses.values())
    print(f"schemathesis: {calls} requests in {elapsed:.1f}s")
    for label, counts in sorted(statuses.items()):
        print(f"  {label}: {dict(sorted(counts.items(), key=str))}")
    assert calls > 1000
    if failures:
        pytest.fail(f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures))
