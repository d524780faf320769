"""Noisy-neighbour limits through the real app and Postgres: request rates per tenant and
bucket, uploads in flight, the operator's overrides, and the shared bookkeeping that holds
them across processes (two limiters on one database stand for two workers here; the e2e test
`tests/e2e/test_limits_across_workers.py` runs real worker processes)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import asyncpg
import msgspec
import pytest
from litestar import Litestar

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, role_url
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord, current_tenant
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage.protocol import MiB
from tenantry.tenancy.limits import PLAN_LIMITS, RateLimiter, UploadSlots
from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import pdf_of_size, upload


@pytest.fixture
async def app(settings: Settings, clean_database: None) -> Litestar:
    return create_app(msgspec.structs.replace(settings, rate_limits=True))


async def _limit(api: Api, tenant: Tenant, **limits: object) -> dict[str, object]:
    response = await api.client.patch(
        f"/platform/v1/tenants/{tenant.id}", json={"limits": limits}, headers=api.operator
    )
    assert response.status_code == 200, response.text
    effective: dict[str, object] = response.json()["limits"]
    return effective


async def test_a_tenants_requests_beyond_its_rate_are_refused_and_others_pass(api: Api) -> None:
    flooded, neighbour = await api.provision("flooded"), await api.provision("neighbour")
    flooded_auth, neighbour_auth = await api.token(flooded), await api.token(neighbour)
    assert await _limit(api, flooded, api_rate=0.5, api_burst=3) == {
        **msgspec.to_builtins(PLAN_LIMITS["standard"]),
        "api_rate": 0.5,
        "api_burst": 3,
    }
    answers = [
        await api.client.get("/api/v1/auth/me", headers={"Host": flooded.host, **flooded_auth})
        for _ in range(5)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    # The neighbour's own bucket is untouched.
    for _ in range(5):
        mine = await api.client.get(
            "/api/v1/auth/me", headers={"Host": neighbour.host, **neighbour_auth}
        )
        assert mine.status_code == 200


async def test_logins_spend_their_own_bucket(api: Api) -> None:
    tenant = await api.provision("storm")
    auth = await api.token(tenant)  # one login spent
    await _limit(api, tenant, auth_rate=0.1, auth_burst=3)
    statuses = [(await api.login(tenant, password="wrong-password")).status_code for _ in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:2], statuses
    # Plain API requests go on meanwhile.
    me = await api.client.get("/api/v1/auth/me", headers={"Host": tenant.host, **auth})
    assert me.status_code == 200


async def test_null_lifts_a_limit_and_bad_values_are_refused(api: Api) -> None:
    tenant = await api.provision("lifted")
    assert (await _limit(api, tenant, api_rate=None))["api_rate"] is None
    for bad in ({"api_rate": 0}, {"api_burst": -1}, {"api_burst": 2**40}, {"unknown": 1}):
        response = await api.client.patch(
            f"/platform/v1/tenants/{tenant.id}", json={"limits": bad}, headers=api.operator
        )
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["code"] == "validation_error"


async def test_uploads_beyond_the_tenants_concurrency_are_refused(
    api: Api, settings: Settings
) -> None:
    tenant = await api.provision("busy")
    auth = await api.token(tenant)
    await _limit(api, tenant, concurrent_uploads=1)
    record = await _record(api, tenant)
    async with _reader(settings) as reader:
        with _as_tenant(record):
            # Another process holds the only slot.
            async with UploadSlots(reader).held(record):
                refused = await upload(api, tenant, auth)
                assert refused.status_code == 429, refused.text
                assert refused.json()["code"] == "too_many_uploads"
                assert refused.headers["retry-after"] == "1"
    accepted = await upload(api, tenant, auth)
    assert accepted.status_code == 201, accepted.text


async def test_a_dead_process_frees_its_slots_when_the_lease_expires(
    api: Api, settings: Settings, platform_connection: asyncpg.Connection
) -> None:
    tenant = await api.provision("crashed")
    await _limit(api, tenant, concurrent_uploads=1)
    record = await _record(api, tenant)
    # The slot of a process that died mid-upload: nobody renews its lease any more.
    await platform_connection.execute(
        "INSERT INTO upload_slots (tenant_id, id, expires_at) "
        "VALUES ($1, gen_random_uuid(), now() + interval '300 milliseconds')",
        uuid.UUID(tenant.id),
    )
    async with _reader(settings) as reader:
        with _as_tenant(record):
            slots = UploadSlots(reader)
            with pytest.raises(DomainError) as caught:
                async with slots.held(record):
                    pass
            assert caught.value.error is ErrorCode.TOO_MANY_UPLOADS
            await asyncio.sleep(0.4)
            async with slots.held(record):
                assert await platform_connection.fetchval("SELECT count(*) FROM upload_slots") == 1
    assert await platform_connection.fetchval("SELECT count(*) FROM upload_slots") == 0


async def test_two_processes_share_one_bucket(api: Api, settings: Settings) -> None:
    """Each limiter leases in batches; together they admit the burst and at most a batch
    each beyond it, where limiters counting alone would admit twice the burst."""
    tenant = await api.provision("shared")
    await _limit(api, tenant, api_rate=40, api_burst=100)  # batches of 4
    record = await _record(api, tenant)
    admitted = 0
    async with _reader(settings) as reader:
        with _as_tenant(record):
            workers = [RateLimiter(reader), RateLimiter(reader)]
            for _ in range(150):
                for limiter in workers:
                    admitted += await _admitted(limiter, record)
    # The bucket refills at 40/s during the loop: allow for its duration.
    assert 100 <= admitted <= 100 + 2 * 4 + 40, admitted


async def test_uploads_go_at_the_tenants_bandwidth_and_a_neighbours_own(api: Api) -> None:
    slow, neighbour = await api.provision("bulk"), await api.provision("quiet")
    slow_auth, neighbour_auth = await api.token(slow), await api.token(neighbour)
    assert (await _limit(api, slow, upload_mib_per_second=1))["upload_mib_per_second"] == 1
    content = pdf_of_size(2 * MiB + MiB // 2)

    async def timed(tenant: Tenant, auth: dict[str, str]) -> float:
        started = time.monotonic()
        response = await upload(api, tenant, auth, content)
        assert response.status_code == 201, response.text
        assert response.json()["size"] == len(content)
        return time.monotonic() - started

    slow_seconds = await timed(slow, slow_auth)
    quiet_seconds = await timed(neighbour, neighbour_auth)
    # A second's worth is the burst; the rest waits for the bucket at 1 MiB/s. The neighbour's
    # bucket (its plan's 20 MiB/s) holds its whole file.
    assert slow_seconds >= 1.3, slow_seconds
    assert quiet_seconds < slow_seconds / 2, (quiet_seconds, slow_seconds)


async def test_two_processes_pace_uploads_from_one_bucket(api: Api, settings: Settings) -> None:
    """Bytes paced by two limiters (two workers) together stay within the tenant's bandwidth:
    each would pass its own bytes in half the time alone."""
    tenant = await api.provision("paced")
    await _limit(api, tenant, upload_mib_per_second=2)  # burst 2 MiB, batches of 205 KiB
    record = await _record(api, tenant)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(48):
            yield bytes(64 * 1024)  # 3 MiB

    async def drain(limiter: RateLimiter) -> int:
        return sum([len(chunk) async for chunk in limiter.paced(record, chunks())])

    async with _reader(settings) as reader:
        with _as_tenant(record):
            started = time.monotonic()
            sizes = await asyncio.gather(drain(RateLimiter(reader)), drain(RateLimiter(reader)))
            elapsed = time.monotonic() - started
    assert sizes == [3 * MiB, 3 * MiB]
    # 6 MiB, 2 MiB of burst, then 2 MiB/s; each process may hold one batch beyond the bucket.
    assert elapsed >= (6 * MiB - 2 * MiB - 2 * 205 * 1024) / (2 * MiB), elapsed


async def _record(api: Api, tenant: Tenant) -> TenantRecord:
    """The tenant as the app's cache holds it (read on the app's own loop)."""
    cache = api.client.app.state.services.tenant_cache
    portal = api.client.blocking_portal
    assert portal is not None
    record = await anyio.to_thread.run_sync(portal.call, cache.by_id, uuid.UUID(tenant.id))
    assert isinstance(record, TenantRecord)
    return record


async def _admitted(limiter: RateLimiter, record: TenantRecord) -> int:
    try:
        await limiter.admit(record, "api")
    except DomainError as refused:
        assert refused.error is ErrorCode.RATE_LIMITED  # noqa: PT017 - counting, not expecting
        return 0
    return 1


@contextmanager
def _as_tenant(record: TenantRecord) -> Iterator[None]:
    """What AccessMiddleware sets for a request of this tenant."""
    token = current_tenant.set(record)
    try:
        yield
    finally:
        current_tenant.reset(token)


@asynccontextmanager
async def _reader(settings: Settings) -> AsyncIterator[TenantReader]:
    """A raw pool of its own, as another worker process would have."""
    reader = TenantReader(asyncpg_dsn(role_url(settings, "app")), max_size=2)
    await reader.start()
    try:
        yield reader
    finally:
        await reader.close()
