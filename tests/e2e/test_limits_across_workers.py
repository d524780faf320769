"""Noisy-neighbour limits hold across granian's worker processes: one tenant's bucket and upload
slots are shared by every worker (in Postgres), not counted per process."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import asyncpg
import httpx

from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, role_url
from tests.e2e.production_server import WORKERS, ProductionServer
from tests.integration.files_support import pdf_of_size
from tests.integration.live import LiveTenant, operator_token, provision

BURST = 20


def _limit(server: ProductionServer, operator: str, tenant: LiveTenant, **limits: object) -> None:
    response = httpx.patch(
        f"{server.base_url}/platform/v1/tenants/{tenant.id}",
        json={"limits": limits},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert response.status_code == 200, response.text


def _flood(server: ProductionServer, tenant: LiveTenant, count: int) -> list[int]:
    headers = {"Host": tenant.host, "Authorization": f"Bearer {tenant.owner_token}"}

    async def run() -> list[int]:
        # A connection per request, eight at a time: both workers take some.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:
            gate = asyncio.Semaphore(8)

            async def one() -> int:
                async with gate:
                    return (await http.get("/api/v1/auth/me", headers=headers)).status_code

            return await asyncio.gather(*(one() for _ in range(count)))

    return asyncio.run(run())


def test_one_bucket_for_every_worker(server: ProductionServer, settings: Settings) -> None:
    operator = operator_token(settings, server.base_url)
    tenant = provision(server.base_url, operator, "flood")
    _limit(server, operator, tenant, api_rate=1, api_burst=BURST)
    started = time.monotonic()
    statuses = _flood(server, tenant, 80)
    elapsed = time.monotonic() - started
    admitted = statuses.count(200)
    assert set(statuses) == {200, 429}, statuses
    # The burst, a refill of 1/s while the flood ran and at most one leased token per worker
    # beyond it; workers counting alone would each admit the burst.
    assert BURST <= admitted <= BURST + elapsed + 1 + WORKERS, (admitted, elapsed)
    pids = {
        entry["pid"]
        for entry in map(json.loads, server.lines())
        if entry.get("event") == "request" and entry.get("tenant") == "flood"
    }
    assert len(pids) == WORKERS, f"the flood reached {len(pids)} worker(s)"


def test_upload_slots_for_every_worker(server: ProductionServer, settings: Settings) -> None:
    operator = operator_token(settings, server.base_url)
    tenant = provision(server.base_url, operator, "busy")
    _limit(server, operator, tenant, concurrent_uploads=2)
    headers = {"Host": tenant.host, "Authorization": f"Bearer {tenant.owner_token}"}
    content = pdf_of_size(512 * 1024)
    finish = threading.Event()
    boundary = "slot-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nSlow\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()

    def slow_body() -> Iterator[bytes]:
        yield head + content[:1024]
        finish.wait(30)
        yield content[1024:] + f"\r\n--{boundary}--\r\n".encode()

    results: list[int] = []

    def slow_upload() -> None:
        response = httpx.post(
            f"{server.base_url}/api/v1/files",
            content=slow_body(),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=60,
        )
        results.append(response.status_code)

    holders = [threading.Thread(target=slow_upload) for _ in range(2)]
    for holder in holders:
        holder.start()
    asyncio.run(_wait_for_slots(settings, tenant, 2))

    def quick_upload() -> httpx.Response:
        with httpx.Client(base_url=server.base_url) as http:  # a connection of its own
            return http.post(
                "/api/v1/files",
                data={"title": "Quick"},
                files={"file": ("q.pdf", content, "application/pdf")},
                headers=headers,
            )

    refused = [quick_upload() for _ in range(6)]
    assert {response.status_code for response in refused} == {429}
    assert {response.json()["code"] for response in refused} == {"too_many_uploads"}
    finish.set()
    for holder in holders:
        holder.join(timeout=30)
    assert results == [201, 201]
    assert quick_upload().status_code == 201  # the slots came back


async def _wait_for_slots(settings: Settings, tenant: LiveTenant, count: int) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(role_url(settings, "platform")))
    try:
        deadline = time.monotonic() + 10
        query = "SELECT count(*) FROM upload_slots WHERE tenant_id = $1::uuid"
        while await connection.fetchval(query, tenant.id) < count:
            assert time.monotonic() < deadline, "the slow uploads never took their slots"
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
