"""The reconciler and tenant offboarding bring the store back in line with the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from litestar import Litestar

from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tenantry.files.reconcile import Reconciler, ReconcileReport
from tests.integration.conftest import Api
from tests.integration.files_support import file_rows, stored_keys, upload, usage


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _reconcile(app: Litestar, settings: Settings) -> ReconcileReport:
    report = await _reconcile_or_skip(app, settings)
    assert report is not None
    return report


async def _reconcile_or_skip(app: Litestar, settings: Settings) -> ReconcileReport | None:
    # The app's engines live on the test client's loop; the reconciler gets its own.
    config = platform_db_config(settings)
    try:
        reconciler = Reconciler(
            config, app.state.services.store, pending_timeout=timedelta(hours=1)
        )
        return await reconciler.run_once()
    finally:
        await config.get_engine().dispose()


async def test_one_replica_reconciles_at_a_time(
    app: Litestar, settings: Settings, platform_connection: asyncpg.Connection
) -> None:
    lock = "SELECT pg_try_advisory_lock(hashtextextended('tenantry.reconcile', 0))"
    assert await platform_connection.fetchval(lock)  # another replica's round is running
    try:
        assert await _reconcile_or_skip(app, settings) is None
    finally:
        await platform_connection.fetchval(
            "SELECT pg_advisory_unlock(hashtextextended('tenantry.reconcile', 0))"
        )
    assert await _reconcile_or_skip(app, settings) is not None


async def test_reconciler_removes_orphans_and_dead_pending_uploads(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection, settings: Settings
) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    kept = (await upload(api, acme, auth)).json()
    store = app.state.services.store
    orphan = f"tenants/{acme.id}/files/{uuid.uuid4()}"
    await store.put_stream(orphan, _chunks(b"%PDF-orphan"), content_type="application/pdf")
    pending = (
        await api.client.post(
            "/api/v1/files",
            json={"title": "t", "filename": "t.pdf"},
            headers={"Host": acme.host, **auth},
        )
    ).json()["file"]
    fresh_pending = (
        await api.client.post(
            "/api/v1/files",
            json={"title": "t2", "filename": "t2.pdf"},
            headers={"Host": acme.host, **auth},
        )
    ).json()["file"]
    await platform_connection.execute(
        "UPDATE files SET updated_at = now() - interval '2 hours' WHERE id = $1",
        uuid.UUID(pending["id"]),
    )

    report = await _reconcile(app, settings)
    assert report.orphan_objects_removed == 1
    assert report.stale_pending_removed == 1
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/files/{kept['id']}"]
    ids = {str(row["id"]) for row in await file_rows(platform_connection, acme.id)}
    assert ids == {kept["id"], fresh_pending["id"]}
    # A second run finds nothing more to do.
    again = await _reconcile(app, settings)
    assert (again.orphan_objects_removed, again.stale_pending_removed) == (0, 0)


async def test_offboarding_removes_every_object_of_the_tenant_only(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    for tenant in (acme, globex):
        auth = await api.token(tenant)
        for _ in range(2):
            assert (await upload(api, tenant, auth)).status_code == 201
    response = await api.client.delete(f"/platform/v1/tenants/{acme.id}", headers=api.operator)
    assert response.status_code == 204
    assert await stored_keys(app, acme.id) == []
    assert await file_rows(platform_connection, acme.id) == []
    assert await usage(platform_connection, acme.id) == (0, 0)
    assert len(await stored_keys(app, globex.id)) == 2
    assert len(await file_rows(platform_connection, globex.id)) == 2
