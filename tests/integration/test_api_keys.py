"""API keys: a tenant's back ends call its API with them, bound to their tenant and role, and a
revoked key fails at once on every replica."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import upload, user_with_role

KEYS = "/api/v1/admin/api-keys"


async def _key(api: Api, tenant: Tenant, auth: dict[str, str], role: str = "viewer") -> str:
    made = await api.client.post(
        KEYS, json={"name": "back end", "role": role}, headers={"Host": tenant.host, **auth}
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_acts_for_its_tenant_with_its_role(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    owner = await api.token(acme)
    key = await _key(api, acme, owner, "editor")
    host = {"Host": acme.host}

    assert (
        await api.client.get("/api/v1/files", headers={**host, **bearer(key)})
    ).status_code == 200
    uploaded = await upload(api, acme, bearer(key))
    assert uploaded.status_code == 201, uploaded.text
    # On a shared host the key names its tenant; on another tenant's host it is refused.
    shared = await api.client.get("/api/v1/files", headers=bearer(key))
    assert shared.status_code == 200 and shared.json()["total"] == 1
    other = await api.client.get("/api/v1/files", headers={"Host": globex.host, **bearer(key)})
    assert (other.status_code, other.json()["code"]) == (403, "tenant_mismatch")
    # An editor key is not an admin.
    assert (await api.client.get(KEYS, headers={**host, **bearer(key)})).status_code == 403
    # A tampered secret, or a key of another tenant's id with this secret, is nothing.
    for forged in (
        key[:-4] + "AAAA",
        key.replace(acme.id.replace("-", ""), globex.id.replace("-", "")),
    ):
        refused = await api.client.get("/api/v1/files", headers=bearer(forged))
        assert refused.status_code in (401, 404), refused.text

    listed = (await api.client.get(KEYS, headers={**host, **owner})).json()
    assert listed["total"] == 1 and "key" not in listed["items"][0]
    stored = await platform_connection.fetchval("SELECT secret_hash FROM api_keys")
    assert key[-43:] not in stored


async def test_a_keys_role_is_at_most_its_creators(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    admin = await user_with_role(api, acme, platform_connection, "admin")
    refused = await api.client.post(
        KEYS, json={"name": "too much", "role": "owner"}, headers={"Host": acme.host, **admin}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "role_too_high")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = await api.client.post(
        KEYS, json={"name": "old", "expires_at": past}, headers={"Host": acme.host, **admin}
    )
    assert (expired.status_code, expired.json()["errors"][0]["field"]) == (422, "expires_at")


async def test_revoked_and_expired_keys_fail_at_once_on_another_app(
    settings: Settings, api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    owner = await api.token(acme)
    revoked, expiring = await _key(api, acme, owner), await _key(api, acme, owner)
    host = {"Host": acme.host}
    second_app = create_app(settings)
    async with AsyncTestClient(app=second_app, base_url="http://127.0.0.1") as second:
        for key in (revoked, expiring):  # held as valid in the second app's memory
            assert (
                await second.get("/api/v1/files", headers={**host, **bearer(key)})
            ).status_code == 200
        listed = (await api.client.get(KEYS, headers={**host, **owner})).json()["items"]
        revoked_id = next(k["id"] for k in listed if k["id"].replace("-", "") in revoked)
        gone = await api.client.delete(f"{KEYS}/{revoked_id}", headers={**host, **owner})
        assert gone.status_code == 204
        await platform_connection.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id <> $1",
            uuid.UUID(revoked_id),
        )
        for key in (revoked, expiring):
            deadline = time.monotonic() + 1.0
            while (
                await second.get("/api/v1/files", headers={**host, **bearer(key)})
            ).status_code != 401:
                assert time.monotonic() < deadline, "still accepted after a second"
                await asyncio.sleep(0.02)

    # Use is recorded (at most once a minute per key), written in the background.
    fresh = await _key(api, acme, owner)
    assert (
        await api.client.get("/api/v1/files", headers={**host, **bearer(fresh)})
    ).status_code == 200
    await anyio.to_thread.run_sync(
        api.client.blocking_portal.call, app.state.services.key_uses.flush
    )
    used = await platform_connection.fetchval(
        "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL"
    )
    assert used == 3
    actions = await platform_connection.fetch("SELECT action FROM audit_log ORDER BY occurred_at")
    assert [a["action"] for a in actions].count("api_key.created") == 3
    assert "api_key.revoked" in [a["action"] for a in actions]
