"""Third review of 524da39..main: each test fails while its defect is present."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

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
