"""Faults and races any client or operator can cause: dropped database connections, taxonomy
deleted under uploads and edits, floods of unknown hosts, signed links of a tenant that went
away. None of them may end in a 500 or in a rollup that disagrees with a scan."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engines import admin_url, asyncpg_dsn
from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import (
    PDF,
    add_taxonomy,
    assert_rollup_matches_scan,
    upload,
    user_with_role,
)
from tests.integration.live import serve


async def test_connections_terminated_while_idle_do_not_fail_the_next_requests(
    api: Api, settings: Settings
) -> None:
    acme = await api.provision("acme")
    auth = {"Host": acme.host, **await api.token(acme)}
    created = await upload(api, acme, await api.token(acme))
    assert created.status_code == 201
    file_id = created.json()["id"]

    async def every_path() -> list[int]:
        return [
            (await api.client.get("/api/v1/auth/me", headers=auth)).status_code,  # raw pool
            (await api.client.get(f"/api/v1/files/{file_id}", headers=auth)).status_code,
            (await api.client.get("/api/v1/files?language=en", headers=auth)).status_code,  # ORM
            (await api.client.get("/api/v1/categories", headers=auth)).status_code,
            (await api.client.get("/platform/v1/tenants", headers=api.operator)).status_code,
            (await api.login(acme)).status_code,
        ]

    assert await every_path() == [200] * 6
    admin = await asyncpg.connect(asyncpg_dsn(admin_url(settings)))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename IN ('tenantry_app', 'tenantry_platform') AND datname = current_database()"
        )
    finally:
        await admin.close()
    assert killed >= 2  # the pools' idle connections (and the LISTEN one)
    await asyncio.sleep(0.3)  # idle: the app's sockets see the close
    assert await every_path() == [200] * 6


async def test_taxonomy_deleted_under_uploads_and_edits(
    api: Api, platform_connection: asyncpg.Connection, settings: Settings
) -> None:
    acme = await api.provision("acme")
    owner = await api.token(acme)
    host = {"Host": acme.host, **owner}
    category = await add_taxonomy(platform_connection, acme.id, "categories", "Doomed")
    keeper = await add_taxonomy(platform_connection, acme.id, "categories", "Kept")
    doomed = await add_taxonomy(platform_connection, acme.id, "audiences", "Doomed")
    kept = await add_taxonomy(platform_connection, acme.id, "audiences", "Kept")
    existing = []
    for _ in range(4):
        response = await upload(api, acme, owner, category=keeper, audiences=[kept], language="en")
        assert response.status_code == 201, response.text
        existing.append(response.json()["id"])

    # The race runs against a second instance of the app under uvicorn, so the requests really
    # overlap (the test client serves one request at a time).
    with serve(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=host, timeout=60) as http:

            async def new_upload() -> int:
                response = await http.post(
                    "/api/v1/files",
                    data={
                        "title": "Racing",
                        "category": category,
                        "language": "de",
                        "audiences": [doomed, kept],
                    },
                    files={"file": ("racing.pdf", PDF, "application/pdf")},
                )
                return response.status_code

            async def edit(file_id: str) -> int:
                response = await http.patch(
                    f"/api/v1/files/{file_id}",
                    json={"category": category, "audiences": [doomed, kept]},
                )
                return response.status_code

            async def remove(kind: str, term: str) -> int:
                await asyncio.sleep(0.02)
                return (await http.delete(f"/api/v1/admin/{kind}/{term}")).status_code

            statuses = await asyncio.gather(
                *(new_upload() for _ in range(6)),
                *(edit(file_id) for file_id in existing),
                remove("categories", category),
                remove("audiences", doomed),
            )
    assert all(status < 500 for status in statuses), statuses
    assert set(statuses[:6]) <= {201, 422}
    assert set(statuses[6:10]) <= {200, 422}
    assert statuses[10:] == [204, 204]
    assert not await platform_connection.fetchval(
        "SELECT count(*) FROM files WHERE tenant_id = $1 AND category_id = $2",
        uuid.UUID(acme.id),
        uuid.UUID(category),
    )
    await assert_rollup_matches_scan(platform_connection, acme.id)


async def test_unknown_hosts_cost_a_bounded_cache(settings: Settings, clean_database: None) -> None:
    """The memory of a real worker under such a flood is measured in tests/e2e."""
    app = create_app(msgspec.structs.replace(settings, tenant_cache_max_entries=100))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        for n in range(300):
            response = await client.get("/api/v1/branding", headers={"Host": f"u{n}.localhost"})
            assert response.status_code == 404
            assert response.json()["code"] == "unknown_tenant"
        cache = app.state.services.tenant_cache
        assert len(cache) == 100
        # The most recent misses are kept: a repeated unknown host costs no query.
        assert ("slug", "u299") in cache._entries
        assert ("slug", "u0") not in cache._entries

        hostile = await client.get("/api/v1/branding", headers={"Host": "a" * 300 + ".example"})
        assert hostile.status_code == 400
        assert hostile.json()["code"] == "invalid_host"
        assert len(cache) == 100  # refused before any lookup


async def _signed_link(api: Api, tenant: Tenant) -> tuple[str, str]:
    auth = await api.token(tenant)
    created = await upload(api, tenant, auth)
    assert created.status_code == 201, created.text
    link = await api.client.get(
        f"/api/v1/files/{created.json()['id']}/download", headers={"Host": tenant.host, **auth}
    )
    assert link.status_code == 200, link.text
    url = urlsplit(link.json()["url"])
    assert url.scheme == "http"
    assert url.netloc == tenant.host  # absolute, on the host the client called
    return f"{url.path}?{url.query}", url.netloc


async def test_signed_links_stop_at_suspension_and_offboarding(api: Api) -> None:
    acme = await api.provision("acme")
    globex = await api.provision("globex")
    path, host = await _signed_link(api, acme)

    async def fetch(on_host: str) -> int:
        return (await api.client.get(path, headers={"Host": on_host})).status_code

    assert await fetch(host) == 200
    assert await fetch("127.0.0.1") == 200  # a shared host: the signature is the capability
    refused = await api.client.get(path, headers={"Host": globex.host})
    assert refused.status_code == 404
    assert refused.json()["code"] == "invalid_signature"

    suspend = f"/platform/v1/tenants/{acme.id}"
    assert (await api.client.post(f"{suspend}/suspend", headers=api.operator)).status_code == 200
    assert await fetch(host) in (403, 404)
    assert await fetch("127.0.0.1") == 404
    assert (await api.client.post(f"{suspend}/resume", headers=api.operator)).status_code == 200
    assert await fetch(host) == 200
    assert (await api.client.delete(suspend, headers=api.operator)).status_code == 204
    assert await fetch("127.0.0.1") == 404


async def test_download_link_carries_the_port_the_client_used(api: Api) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    created = await upload(api, acme, auth, PDF)
    link = await api.client.get(
        f"/api/v1/files/{created.json()['id']}/download",
        headers={"Host": f"{acme.host}:8123", **auth},
    )
    assert link.status_code == 200, link.text
    assert link.json()["url"].startswith(f"http://{acme.host}:8123/_store/tenants/{acme.id}/")


async def test_tokens_of_deleted_and_disabled_users_are_never_a_500(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    owner = await api.token(acme)
    created = await upload(api, acme, owner)
    file_id = created.json()["id"]
    for gone in ("DELETE FROM users", "UPDATE users SET disabled = true"):
        editor = await user_with_role(api, acme, platform_connection, "editor")
        await platform_connection.execute(
            f"{gone} WHERE tenant_id = $1 AND role = 'editor'", uuid.UUID(acme.id)
        )
        headers = {"Host": acme.host, **editor}
        me = await api.client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 401
        assert me.json()["code"] == "invalid_token"
        answers = [
            (await upload(api, acme, editor)).status_code,
            (await api.client.get(f"/api/v1/files/{file_id}", headers=headers)).status_code,
            (
                await api.client.patch(
                    f"/api/v1/files/{file_id}", json={"title": "x"}, headers=headers
                )
            ).status_code,
            (
                await api.client.get(f"/api/v1/files/{file_id}/download", headers=headers)
            ).status_code,
            (await api.client.post("/api/v1/auth/logout", json={}, headers=headers)).status_code,
        ]
        assert all(status < 500 for status in answers), (gone, answers)
        # A deleted uploader cannot leave a file behind: the upload is refused, 401.
        if gone.startswith("DELETE"):
            assert answers[0] == 401


async def test_tenant_comes_from_the_trusted_proxys_own_value(
    settings: Settings, clean_database: None, operator_headers: dict[str, str]
) -> None:
    trusting = create_app(msgspec.structs.replace(settings, trusted_proxies=("testclient",)))
    async with AsyncTestClient(app=trusting, base_url="http://127.0.0.1") as client:
        api = Api(client, operator_headers)
        acme = await api.provision("acme")
        await api.provision("globex")
        # The client sent "globex"; the proxy appended what it saw, "acme".
        forwarded = {"X-Forwarded-Host": "globex.localhost, acme.localhost"}
        response = await client.get("/api/v1/branding", headers=forwarded)
        assert response.status_code == 200
        assert response.json()["slug"] == acme.slug
