"""The app behind a real PgBouncer in transaction mode with ONE server connection per role:
tenants interleaved on it see only their own rows, the main flows work, no prepared statement
trips over another client's, and LISTEN (direct) still brings changes within a second."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, pooled_role_url, statement_cache_args
from tests.integration.conftest import Api, Tenant, operator_login
from tests.integration.files_support import PDF, upload
from tests.integration.pgbouncer import run_pgbouncer


@pytest.fixture(scope="module")
def pooled(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The suite's settings with the pooled role connections going through PgBouncer."""
    with run_pgbouncer(settings, Path(tmp_path_factory.mktemp("pgbouncer"))) as url:
        yield msgspec.structs.replace(settings, db_pooler_url=url)


@pytest.fixture
async def pooled_api(pooled: Settings, clean_database: None) -> AsyncIterator[Api]:
    app: Litestar = create_app(pooled)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield Api(client, await operator_login(pooled, client))


async def _server_backends(platform_connection: asyncpg.Connection, role: str) -> int:
    """Postgres backends of `role` in this database (PgBouncer's server connections, and the
    app's LISTEN connection for `tenantry_app`)."""
    count: int = await platform_connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1",
        role,
    )
    return count


async def _connect_pooled(settings: Settings, **arguments: int) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(pooled_role_url(settings, "app")), **arguments)


async def test_a_transaction_with_no_tenant_after_one_with_a_tenant_sees_nothing(
    pooled: Settings, platform_connection: asyncpg.Connection, clean_database: None
) -> None:
    """Raw, as the app role: two clients, one server connection between them."""
    tenant_a = await platform_connection.fetchval(
        "INSERT INTO tenants (slug, name, storage_quota_bytes, max_file_bytes) "
        "VALUES ('tenant-a', 'A', 1024, 1024) RETURNING id"
    )
    await platform_connection.execute(
        "INSERT INTO users (tenant_id, email, password_hash, role) "
        "VALUES ($1, 'a@a.example', $2, 'viewer')",
        tenant_a,
        "x" * 60,
    )
    args = statement_cache_args(pooled)
    first, second = await _connect_pooled(pooled, **args), await _connect_pooled(pooled, **args)
    try:
        async with first.transaction():
            await first.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_a))
            assert await first.fetchval("SELECT count(*) FROM users") == 1
            server = await first.fetchval("SELECT pg_backend_pid()")
        async with second.transaction():
            assert await second.fetchval("SELECT pg_backend_pid()") == server  # the same one
            assert await second.fetchval("SELECT count(*) FROM users") == 0
            assert await second.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
        # Outside a transaction too (each statement is one of its own).
        assert await second.fetchval("SELECT count(*) FROM users") == 0
    finally:
        await first.close()
        await second.close()


async def test_asyncpg_defaults_break_behind_it_and_the_pooled_arguments_do_not(
    settings: Settings, tmp_path: Path
) -> None:
    """Why the switch exists. With two server connections: a statement asyncpg prepared and
    cached on one is not on the other, where the client's next transaction may land."""

    async def run(**arguments: int) -> None:
        first = await _connect_pooled(pooled, **arguments)
        second = await _connect_pooled(pooled, **arguments)
        try:
            assert await first.fetchval("SELECT $1::int", 1) == 1  # on server connection 1
            async with second.transaction():  # takes server connection 1 (the idle one)
                await second.fetchval("SELECT 1")
                assert await first.fetchval("SELECT $1::int", 2) == 2  # on connection 2
        finally:
            await first.close()
            await second.close()

    with run_pgbouncer(settings, tmp_path, pool_size=2) as url:
        pooled = msgspec.structs.replace(settings, db_pooler_url=url)
        with pytest.raises(asyncpg.InvalidSQLStatementNameError):
            await run()
        await run(**statement_cache_args(pooled))


async def _tenant_with_files(
    api: Api, slug: str, titles: list[str]
) -> tuple[Tenant, dict[str, str]]:
    tenant = await api.provision(slug)
    headers = {"Host": tenant.host, **await api.token(tenant)}
    for title in titles:
        response = await upload(api, tenant, headers, title=title)
        assert response.status_code == 201, response.text
    return tenant, headers


async def test_interleaved_tenants_on_one_server_connection_see_only_their_own(
    pooled_api: Api, platform_connection: asyncpg.Connection
) -> None:
    api = pooled_api
    titles = {"acme": ["Acme one", "Acme two"], "globex": ["Globex one", "Globex two", "Globex 3"]}
    callers = {slug: await _tenant_with_files(api, slug, names) for slug, names in titles.items()}

    async def check(slug: str, n: int) -> None:
        tenant, headers = callers[slug]
        kind = n % 4
        if kind == 0:  # the raw read pool
            response = await api.client.get("/api/v1/files?limit=100", headers=headers)
            assert response.status_code == 200, response.text
            assert sorted(f["title"] for f in response.json()["items"]) == sorted(titles[slug])
        elif kind == 1:
            response = await api.client.get("/api/v1/auth/me", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["tenant"]["slug"] == slug
        elif kind == 2:
            response = await api.client.get("/api/v1/files/stats", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["files"] == len(titles[slug])
        else:  # the ORM engine
            response = await api.client.get("/api/v1/admin/users", headers=headers)
            assert response.status_code == 200, response.text
            assert {u["email"] for u in response.json()["items"]} == {tenant.owner_email}

    await asyncio.gather(*(check(("acme", "globex")[n % 2], n // 2) for n in range(240)))
    # All of it on one server connection of the app role (plus the app's direct LISTEN).
    assert await _server_backends(platform_connection, "tenantry_app") <= 2


async def test_main_flows_and_concurrent_writes_without_prepared_statement_errors(
    pooled_api: Api, pooled: Settings, platform_connection: asyncpg.Connection
) -> None:
    api = pooled_api
    acme, headers = await _tenant_with_files(api, "acme", ["Guide"])
    listed = await api.client.get("/api/v1/files", headers=headers)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    file_id = listed.json()["items"][0]["id"]
    link = await api.client.get(f"/api/v1/files/{file_id}/download", headers=headers)
    assert link.status_code == 200, link.text
    downloaded = await api.client.get(link.json()["url"], headers={"Host": acme.host})
    assert downloaded.status_code == 200 and downloaded.content == PDF

    async def write(n: int) -> None:
        kind = n % 3
        if kind == 0:
            response = await api.client.patch(
                f"/api/v1/files/{file_id}", json={"title": f"Guide {n}"}, headers=headers
            )
        elif kind == 1:
            response = await upload(api, acme, headers, title=f"Upload {n}")
        else:
            response = await api.login(acme)
        assert response.status_code in (200, 201), response.text

    await asyncio.gather(*(write(n) for n in range(60)))
    stats = await api.client.get("/api/v1/files/stats", headers=headers)
    assert stats.json()["files"] == 1 + 20
    # No statement survives on the server connections PgBouncer shares out.
    args = statement_cache_args(pooled)
    connection = await _connect_pooled(pooled, **args)
    try:
        assert await connection.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
    finally:
        await connection.close()
    assert await _server_backends(platform_connection, "tenantry_app") <= 2
    assert await _server_backends(platform_connection, "tenantry_platform") <= 2

    # LISTEN goes direct: a suspension made elsewhere reaches this app's cache within a second.
    assert (await api.client.get("/api/v1/branding", headers=headers)).status_code == 200
    await platform_connection.execute(
        "UPDATE tenants SET status = 'suspended' WHERE id = $1", uuid.UUID(acme.id)
    )
    deadline = time.monotonic() + 1.0
    while (await api.client.get("/api/v1/branding", headers=headers)).status_code != 403:
        assert time.monotonic() < deadline, "the suspension did not arrive within a second"
        await asyncio.sleep(0.02)
