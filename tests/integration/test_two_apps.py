"""Two real app instances (each under uvicorn in a thread, its own pools, caches and LISTEN
connection) on one database: what an operator or an admin changes through one reaches the other
within a second. (Disabling and deleting a user, and revoking an API key, are proven in
test_admin_users.py and test_api_keys.py; these are the tenant cache and a role change.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.live import LiveTenant, operator_token, provision, serve


async def _within_a_second(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 1.0
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not seen by the other app within a second"
        await asyncio.sleep(0.02)


@pytest.mark.usefixtures("clean_database")
async def test_changes_through_one_app_reach_the_other_within_a_second(
    settings: Settings,
) -> None:
    with serve(create_app(settings)) as first_url, serve(create_app(settings)) as second_url:
        token = operator_token(settings, first_url)
        operator = {"Authorization": f"Bearer {token}"}
        acme: LiveTenant = await asyncio.to_thread(provision, first_url, token, "acme")
        owner = {"Host": acme.host, "Authorization": f"Bearer {acme.owner_token}"}
        async with (
            httpx.AsyncClient(base_url=first_url) as first,
            httpx.AsyncClient(base_url=second_url) as second,
        ):
            # Both apps hold acme in their tenant cache.
            for app in (first, second):
                assert (await app.get("/api/v1/branding", headers=owner)).status_code == 200

            # A branding change (a tenant cache entry) through the first.
            changed = await first.patch(
                "/api/v1/admin/branding", json={"display_name": "Acme Media"}, headers=owner
            )
            assert changed.status_code == 200, changed.text

            async def renamed() -> bool:
                branding = await second.get("/api/v1/branding", headers={"Host": acme.host})
                return bool(branding.json()["display_name"] == "Acme Media")

            await _within_a_second(renamed, "a branding change")

            # A new domain (the second app has it cached as unknown, a miss) through the first.
            domain = {"Host": "learn.acme.example"}
            assert (await second.get("/api/v1/branding", headers=domain)).status_code == 404
            added = await first.post(
                f"/platform/v1/tenants/{acme.id}/domains",
                json={"domain": "learn.acme.example"},
                headers=operator,
            )
            assert added.status_code in (200, 201), added.text

            async def resolved() -> bool:
                branding = await second.get("/api/v1/branding", headers=domain)
                return branding.status_code == 200 and branding.json()["slug"] == "acme"

            await _within_a_second(resolved, "a new domain")

            # A role change: an admin demoted to viewer loses the admin routes on the second.
            made = await first.post(
                "/api/v1/admin/users",
                json={"email": "ann@acme.example", "role": "admin", "password": "ann-password"},
                headers=owner,
            )
            assert made.status_code == 201, made.text
            login = await second.post(
                "/api/v1/auth/login",
                json={"email": "ann@acme.example", "password": "ann-password"},
                headers={"Host": acme.host},
            )
            ann = {"Host": acme.host, "Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await second.get("/api/v1/admin/users", headers=ann)).status_code == 200
            demoted = await first.patch(
                f"/api/v1/admin/users/{made.json()['user']['id']}",
                json={"role": "viewer"},
                headers=owner,
            )
            assert demoted.status_code == 200, demoted.text

            async def refused() -> bool:
                answer = await second.get("/api/v1/admin/users", headers=ann)
                return answer.status_code in (401, 403)

            await _within_a_second(refused, "a role change")

            # A suspension through the first; then the resumption.
            for action, status in (("suspend", 403), ("resume", 200)):
                done = await first.post(
                    f"/platform/v1/tenants/{acme.id}/{action}", headers=operator
                )
                assert done.status_code == 200, done.text

                async def answered(status: int = status) -> bool:
                    branding = await second.get("/api/v1/branding", headers=owner)
                    return branding.status_code == status

                await _within_a_second(answered, f"a tenant's {action}")
