"""The tenant cache drops only the tenant a notification names (and misses it makes stale)."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest
from litestar import Litestar

from tenantry.config import Settings
from tenantry.db.engines import tenant_db_config
from tenantry.lib.metrics import tenant_cache_hits, tenant_cache_misses
from tenantry.tenancy.cache import TenantCache
from tests.integration.conftest import Api


def _counts() -> tuple[float, float]:
    return tenant_cache_hits._value.get(), tenant_cache_misses._value.get()  # type: ignore[attr-defined]


async def test_a_change_drops_its_tenant_and_keeps_the_others(
    api: Api, app: Litestar, settings: Settings, platform_connection: asyncpg.Connection
) -> None:
    changed, kept = await api.provision("changed"), await api.provision("kept")
    config = tenant_db_config(settings)
    cache = TenantCache(config.get_engine(), ttl_seconds=60)
    cache.listening(True)
    try:
        for slug in ("changed", "kept", "future"):  # "future" is cached as a miss
            await cache.by_slug(slug)
        assert await cache.by_id(uuid.UUID(changed.id)) is not None
        # What the trigger sends when "changed" is renamed to "future".
        cache.notified(json.dumps({"tenant_id": changed.id, "slugs": ["changed", "future"]}))
        hits, misses = _counts()
        assert (await cache.by_slug("kept")) is not None
        assert _counts() == (hits + 1, misses), "the other tenant's entry was dropped"
        await cache.by_slug("changed")
        await cache.by_slug("future")
        await cache.by_id(uuid.UUID(changed.id))
        assert _counts() == (hits + 1, misses + 3), "the changed tenant's entries stayed"
        # A payload of before 0008 (the id alone) still clears everything.
        cache.notified(kept.id)
        assert len(cache) == 0
    finally:
        await config.get_engine().dispose()


async def test_the_trigger_names_the_tenant_and_its_keys(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    tenant = await api.provision("notified")
    heard: list[str] = []
    await platform_connection.add_listener("tenant_changed", lambda *args: heard.append(args[3]))
    await platform_connection.execute(
        "UPDATE tenants SET slug = 'renamed' WHERE id = $1", uuid.UUID(tenant.id)
    )
    await platform_connection.execute(
        "INSERT INTO tenant_domains (domain, tenant_id) VALUES ('learn.renamed.example', $1)",
        uuid.UUID(tenant.id),
    )
    await platform_connection.execute("SELECT 1")  # notifications arrive with the next message
    changes = [json.loads(payload) for payload in heard]
    assert changes == [
        {"tenant_id": tenant.id, "slugs": ["notified", "renamed"]},
        {"tenant_id": tenant.id, "domains": ["learn.renamed.example"]},
    ]


async def test_statements_the_flush_cannot_see_drop_their_tenant_at_commit(
    api: Api, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branding save (an UPDATE statement) and a domain removal (a DELETE statement) drop the
    tenant from the committing replica's cache at once: the notification, which would drop it
    a moment later, is never heard here."""
    tenant = await api.provision("statements", domains=["learn.statements.example"])
    auth = await api.token(tenant)
    monkeypatch.setattr(app.state.services.tenant_cache, "notified", lambda payload: None)
    host, domain_host = {"Host": tenant.host}, {"Host": "learn.statements.example"}
    for headers in (host, domain_host):  # both cached
        assert (await api.client.get("/api/v1/branding", headers=headers)).status_code == 200
    saved = await api.client.patch(
        "/api/v1/admin/branding", json={"display_name": "Renamed"}, headers={**host, **auth}
    )
    assert saved.status_code == 200, saved.text
    branding = await api.client.get("/api/v1/branding", headers=host)
    assert branding.json()["display_name"] == "Renamed"
    removed = await api.client.delete(
        f"/platform/v1/tenants/{tenant.id}/domains/learn.statements.example", headers=api.operator
    )
    assert removed.status_code == 204, removed.text
    gone = await api.client.get("/api/v1/branding", headers=domain_host)
    assert gone.status_code == 404, gone.text
