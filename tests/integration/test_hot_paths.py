"""What keeps the hottest routes cheap, checked on the app as built (the speed itself is
measured in benchmarks/, not here)."""

from __future__ import annotations

import gc
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.integration.conftest import Api
from tests.integration.files_support import add_taxonomy, pdf_of_size, upload

HOT_READS = {
    "/api/v1/files/{file_id:uuid}",
    "/api/v1/files",
    "/api/v1/files/stats",
    "/api/v1/auth/me",
}


def test_hot_routes_resolve_one_dependency_per_level(app: Litestar) -> None:
    """Litestar resolves a level of two or more dependencies in an anyio task group per
    request (litestar-org/litestar#4563); on these routes that was a quarter of the work."""
    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path in HOT_READS:
            _, kwargs_model = route.route_handler_map["GET"]
            batches = [sorted(d.key for d in batch) for batch in kwargs_model.dependency_batches]
            assert all(len(batch) == 1 for batch in batches), (route.path, batches)
            found.add(route.path)
    assert found == HOT_READS


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "title", "-title", "size", "-size"])
async def test_the_listing_postgres_encodes_is_the_one_the_api_encoder_writes(
    api: Api, platform_connection: asyncpg.Connection, sort: str
) -> None:
    """The unfiltered page (its JSON written by Postgres) and the same page through the ORM
    path (a filter that matches every file, encoded by msgspec) are the same bytes: nulls,
    several audiences, text that JSON must escape, a timestamp on a whole second."""
    tenant = await api.provision("encoded")
    auth = {"Host": tenant.host, **(await api.token(tenant))}
    audiences = [
        await add_taxonomy(platform_connection, tenant.id, "audiences", name)
        for name in ("Mentors", "Mentees")
    ]
    category = await add_taxonomy(platform_connection, tenant.id, "categories", "Guides")
    variants: list[dict[str, Any]] = [
        {"title": 'Quotes " and \\ back\\slash', "description": "tab\tnew\nline é 🎓"},
        {"title": "With all", "category": category, "language": "pt", "audiences": audiences},
        {"title": "Plain"},
    ]
    for fields in variants:
        response = await upload(api, tenant, auth, pdf_of_size(2048 + len(fields)), **fields)
        assert response.status_code == 201, response.text
    await platform_connection.execute(
        "UPDATE files SET created_at = date_trunc('second', created_at), uploaded_by = NULL"
        " WHERE tenant_id = $1 AND title = 'Plain'",
        uuid.UUID(tenant.id),
    )
    fast = await api.client.get(f"/api/v1/files?limit=50&sort={sort}", headers=auth)
    through_orm = await api.client.get(
        f"/api/v1/files?limit=50&sort={sort}&created_after=2000-01-01T00:00:00Z", headers=auth
    )
    assert fast.status_code == through_orm.status_code == 200
    assert fast.json()["total"] == 3 and len(fast.json()["items"]) == 3
    assert fast.content == through_orm.content
    empty = await api.client.get("/api/v1/files?limit=50&offset=10", headers=auth)
    assert empty.json() == {"items": [], "total": 3, "limit": 50, "offset": 10}


async def test_start_up_objects_are_out_of_the_collectors_way(
    client: AsyncTestClient[Litestar],
) -> None:
    """A running app has frozen what start-up made: a full collection of them stalled every
    request of the worker for about 100 ms."""
    assert (await client.get("/health/live")).status_code == 200
    assert gc.get_freeze_count() > 10_000
