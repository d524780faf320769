"""Third review of 524da39..main: each test fails while its defect is present."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.db.reads import TenantReader
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.tenancy.limits import RateLimiter
from tests.integration.conftest import Api
from tests.integration.test_limits import _as_tenant, _limit, _reader, _record

# -- 1. A lease that began before a concurrent one committed is granted negative tokens --------
# `_LEASE` (tenancy/limits.py) refills by `now() - b.refreshed_at`, and `now()` is the start of
# the leasing transaction. Two leases of one bucket at once (two processes, or two requests of
# one process both finding the local lease spent): the one that began first but upserts second
# sees a refreshed_at later than its now(), a negative refill, and on a nearly empty bucket a
# negative `granted`. `_renew` adds it to the local lease, whose tokens then never equal 0
# again: `admit` stops asking Postgres and admits every request of that tenant in that process
# (the flood the limit exists for is exactly when leases race). Fixed: the refill never goes
# back in time (and `_renew` takes a grant below 1 as an empty bucket).


class _LateReader:
    """The reader of a process whose next lease transaction begins, then stalls while
    `meanwhile` runs (another process's lease commits), then goes on."""

    def __init__(self, reader: TenantReader, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self._reader = reader
        self._meanwhile: Callable[[], Awaitable[None]] | None = meanwhile

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = True) -> AsyncIterator[Any]:
        async with self._reader.transaction(read_only=read_only) as connection:
            if self._meanwhile is not None:
                meanwhile, self._meanwhile = self._meanwhile, None
                await meanwhile()
            yield connection


async def _admitted(limiter: RateLimiter, record: Any) -> int:
    try:
        await limiter.admit(record, "api")
    except DomainError as refused:
        assert refused.error is ErrorCode.RATE_LIMITED  # noqa: PT017 - counting
        return 0
    return 1


async def test_a_lease_that_raced_another_never_turns_the_limit_off(
    api: Api, settings: Settings
) -> None:
    tenant = await api.provision("raced")
    await _limit(api, tenant, api_rate=10, api_burst=1)  # batches of 1
    record = await _record(api, tenant)
    async with _reader(settings) as reader:
        with _as_tenant(record):
            other = RateLimiter(reader)
            assert await _admitted(other, record) == 1  # the bucket: empty

            async def another_process_leases() -> None:
                await asyncio.sleep(0.5)  # the bucket refills meanwhile
                assert await _admitted(other, record) == 1  # and is taken: refreshed now

            late = RateLimiter(_LateReader(reader, another_process_leases))  # type: ignore[arg-type]
            await _admitted(late, record)  # its lease began before the other one's
            admitted = sum([await _admitted(late, record) for _ in range(50)])
    # 10 per second with a burst of 1: a fraction of a second admits one or two, not all 50.
    assert admitted <= 2, admitted


# -- 2. An Origin that is not a URL is a 500 ---------------------------------------------------
# `origin_allowed` (tenancy/cors.py) parses the header with `urlsplit` and reads `.port`; both
# raise ValueError on text that is not a URL with a valid port (`[` opens an IPv6 literal that
# never closes; a port that is not a number or is out of range), and nothing catches it: any
# request to a tenant route with such an Origin, preflight or not, answered 500. Fixed: an
# Origin that does not parse is not an allowed one.


@pytest.mark.parametrize(
    "origin", ["https://elsewhere.example:abc", "https://elsewhere.example:99999", "http://["]
)
async def test_an_origin_that_does_not_parse_is_refused_not_a_500(api: Api, origin: str) -> None:
    tenant = await api.provision("origins")
    auth = await api.token(tenant)
    preflight = await api.client.options(
        "/api/v1/files",
        headers={
            "Host": tenant.host,
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
        },
    )
    assert preflight.status_code == 403, preflight.text
    assert preflight.json()["code"] == "origin_not_allowed"
    listed = await api.client.get(
        "/api/v1/files", headers={"Host": tenant.host, "Origin": origin, **auth}
    )
    assert listed.status_code == 200, listed.text
    assert "access-control-allow-origin" not in listed.headers
