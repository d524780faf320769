"""Helpers for file tests: uploads over HTTP, listing what the store holds, taxonomy rows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from litestar import Litestar

from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tenantry.files.reconcile import Reconciler, ReconcileReport
from tests.integration.conftest import Api, Tenant

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
PDF = (CORPUS / "document.pdf").read_bytes()


def pdf_of_size(size: int) -> bytes:
    """A byte string that sniffs as PDF, of exactly `size` bytes."""
    return (PDF + b"\n%" + b"x" * size)[:size]


async def upload(
    api: Api,
    tenant: Tenant,
    headers: dict[str, str],
    content: bytes = PDF,
    *,
    filename: str = "guide.pdf",
    content_type: str | None = "application/pdf",
    **fields: Any,
) -> httpx.Response:
    data: dict[str, Any] = {"title": "Guide", **fields}
    file = (filename, content, content_type) if content_type else (filename, content)
    return await api.client.post(
        "/api/v1/files", data=data, files={"file": file}, headers={"Host": tenant.host, **headers}
    )


async def reconcile(app: Litestar, settings: Settings) -> ReconcileReport:
    """One reconciler round on the objects `app.state.inspect` sees, with an engine of its own
    (the app's live on another loop)."""
    config = platform_db_config(settings)
    try:
        reconciler = Reconciler(config, app.state.inspect, pending_timeout=timedelta(hours=1))
        report = await reconciler.run_once()
    finally:
        await config.get_engine().dispose()
    assert report is not None
    return report


async def stored_keys(app: Litestar, tenant_id: str) -> list[str]:
    store = app.state.services.store
    return [key async for key in store.list_keys(f"tenants/{tenant_id}/")]


async def file_rows(
    platform_connection: asyncpg.Connection, tenant_id: str
) -> list[asyncpg.Record]:
    return await platform_connection.fetch(
        "SELECT id, status, size FROM files WHERE tenant_id = $1", uuid.UUID(tenant_id)
    )


async def usage(platform_connection: asyncpg.Connection, tenant_id: str) -> tuple[int, int]:
    row = await platform_connection.fetchrow(
        "SELECT storage_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
        uuid.UUID(tenant_id),
    )
    return row["storage_bytes"], row["file_count"]


async def add_taxonomy(
    platform_connection: asyncpg.Connection, tenant_id: str, table: str, name: str
) -> str:
    value = await platform_connection.fetchval(
        f"INSERT INTO {table} (tenant_id, name) VALUES ($1, $2) RETURNING id",
        uuid.UUID(tenant_id),
        name,
    )
    return str(value)


async def user_with_role(
    api: Api, tenant: Tenant, platform_connection: asyncpg.Connection, role: str
) -> dict[str, str]:
    """A user of `tenant` with `role`, logged in: its auth header."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@{tenant.slug}.example"
    hashed = await platform_connection.fetchval(
        "SELECT password_hash FROM users WHERE tenant_id = $1 AND role = 'owner'",
        uuid.UUID(tenant.id),
    )
    await platform_connection.execute(
        "INSERT INTO users (tenant_id, email, password_hash, role) VALUES ($1, $2, $3, $4)",
        uuid.UUID(tenant.id),
        email,
        hashed,
        role,
    )
    response = await api.login(tenant, email=email, password=tenant.owner_password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# The rollup as a scan of the files computes it (the dimensions of tenantry.files.rollup).
ROLLUP_SCAN = """
SELECT 'total' AS dimension, '' AS key, count(*) AS files, sum(size) AS bytes
  FROM files WHERE tenant_id = $1 AND status = 'ready'
UNION ALL SELECT 'category', COALESCE(category_id::text, ''), count(*), sum(size)
  FROM files WHERE tenant_id = $1 AND status = 'ready' GROUP BY category_id
UNION ALL SELECT 'language', COALESCE(language, ''), count(*), sum(size)
  FROM files WHERE tenant_id = $1 AND status = 'ready' GROUP BY language
UNION ALL SELECT 'content_type', COALESCE(content_type, ''), count(*), sum(size)
  FROM files WHERE tenant_id = $1 AND status = 'ready' GROUP BY content_type
UNION ALL SELECT 'audience', fa.audience_id::text, count(*), sum(f.size)
  FROM files f JOIN file_audiences fa ON fa.tenant_id = f.tenant_id AND fa.file_id = f.id
  WHERE f.tenant_id = $1 AND f.status = 'ready' GROUP BY fa.audience_id
"""


async def assert_rollup_matches_scan(platform: asyncpg.Connection, tenant_id: str) -> None:
    tenant = uuid.UUID(tenant_id)
    scanned = {
        (row["dimension"], row["key"]): (row["files"], row["bytes"])
        for row in await platform.fetch(ROLLUP_SCAN, tenant)
        if row["files"]
    }
    rolled = {
        (row["dimension"], row["key"]): (row["files"], row["bytes"])
        for row in await platform.fetch(
            "SELECT dimension, key, files, bytes FROM file_stats WHERE tenant_id = $1", tenant
        )
        if row["files"]
    }
    assert rolled == scanned, {"rollup": rolled, "scan": scanned}
    usage = await platform.fetchrow(
        "SELECT storage_bytes, file_count FROM tenant_usage WHERE tenant_id = $1", tenant
    )
    total = scanned.get(("total", ""), (0, 0))
    assert (usage["file_count"], usage["storage_bytes"]) == (total[0], total[1] or 0)
