"""Noisy-neighbour limits: each tenant's request rates and uploads in flight, set per plan and
overridable per tenant by the operator, held across every worker process and replica.

The shared state is in Postgres (`rate_buckets`, `upload_slots`, UNLOGGED), not in a separate
store: the deployment already has it, its transactions make the bookkeeping exact, and the
tenant's RLS covers these rows like any other. What keeps it off the hot path:

- **Rates** are token buckets that processes *lease* from in batches (a tenth of a second of
  the rate at a time): a request spends a local token, and a process asks Postgres only when
  its lease is spent, one upsert that refills the bucket for the time since its last refill and
  grants what it holds, up to the batch. A bucket found empty is not asked again until it would
  hold a token, so a flood of refused requests costs no queries. Across processes at most one
  batch per process is in hand beyond the bucket, which bounds how far the limit can be
  overshot.
- **Upload bytes** go through a bucket of their own (in KiB), leased the same way; an upload
  that has spent its tenant's bytes waits for the bucket to refill instead of being refused, so
  the client is slowed down by TCP's own back-pressure. A bulk migration then costs the node at
  most its plan's bandwidth of CPU (parse, sniff, hash, write), whatever its concurrency.
- **Uploads in flight** are leases that their process renews while the upload runs: a process
  that dies frees its slots when the leases expire, without anyone cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import structlog

from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode

RequestBucket = Literal["api", "auth"]
Bucket = RequestBucket | Literal["upload"]
logger = structlog.get_logger("tenantry.limits")

# Processes whose lease is spent ask for a tenth of a second of the rate at once.
_LEASE_SECONDS = 0.1
# Local bucket states kept per process (a forgotten one only forfeits its leased tokens).
_MAX_LOCAL_BUCKETS = 100_000
UPLOAD_SLOT_SECONDS = 60.0


class TenantLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rates in requests per second with a burst (the bucket's size), uploads in flight, and
    the upload bandwidth in MiB/s of all the tenant's uploads through the API together (a
    second's worth of burst); None: no limit."""

    api_rate: float | None
    api_burst: int | None
    auth_rate: float | None
    auth_burst: int | None
    concurrent_uploads: int | None
    upload_mib_per_second: float | None


Rate = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class LimitsPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The operator's overrides: a value replaces the plan's, null lifts the limit, absent
    keeps what is set."""

    api_rate: Rate | msgspec.UnsetType | None = msgspec.UNSET
    api_burst: Count | msgspec.UnsetType | None = msgspec.UNSET
    auth_rate: Rate | msgspec.UnsetType | None = msgspec.UNSET
    auth_burst: Count | msgspec.UnsetType | None = msgspec.UNSET
    concurrent_uploads: Count | msgspec.UnsetType | None = msgspec.UNSET
    upload_mib_per_second: Rate | msgspec.UnsetType | None = msgspec.UNSET


# Logins cost a bcrypt hash (about 0.3 s of a core at cost 12) and an upload through the API
# about 3 CPU seconds per GiB: the auth and upload rates protect the CPU. 20 MiB/s is 1.6 TiB a
# day; bulk migrations beyond that go direct to the store (`POST /api/v1/uploads`), unpaced.
PLAN_LIMITS: dict[str, TenantLimits] = {
    "standard": TenantLimits(
        api_rate=200,
        api_burst=400,
        auth_rate=2,
        auth_burst=20,
        concurrent_uploads=10,
        upload_mib_per_second=20,
    ),
    "business": TenantLimits(
        api_rate=500,
        api_burst=1000,
        auth_rate=5,
        auth_burst=50,
        concurrent_uploads=25,
        upload_mib_per_second=50,
    ),
    "enterprise": TenantLimits(
        api_rate=2000,
        api_burst=4000,
        auth_rate=10,
        auth_burst=100,
        concurrent_uploads=50,
        upload_mib_per_second=100,
    ),
}
DEFAULT_PLAN = "standard"


def effective_limits(plan: str, overrides: Mapping[str, Any]) -> TenantLimits:
    """The plan's limits (an unknown plan gets the default plan's) with the tenant's overrides."""
    limits = PLAN_LIMITS.get(plan, PLAN_LIMITS[DEFAULT_PLAN])
    given = {k: v for k, v in overrides.items() if k in TenantLimits.__struct_fields__}
    return msgspec.structs.replace(limits, **given) if given else limits


def merged_limits(current: dict[str, Any], patch: LimitsPatch) -> dict[str, Any]:
    """The stored overrides once `patch` is applied."""
    given = {name: getattr(patch, name) for name in patch.__struct_fields__}
    return {**current, **{k: v for k, v in given.items() if v is not msgspec.UNSET}}


# The bucket refilled for the time since its last refill. `now()` is when the leasing
# transaction began: one that began before a concurrent lease committed finds a later
# `refreshed_at`, and must neither refill negatively (a negative grant) nor move it back.
_REFILLED = "least($3, b.tokens + $4 * greatest(0, extract(epoch FROM now() - b.refreshed_at)))"
_LEASE = f"""
INSERT INTO rate_buckets AS b (tenant_id, bucket, tokens, granted, refreshed_at)
VALUES ($1, $2, $3 - least($5, floor($3)), least($5, floor($3))::int, now())
ON CONFLICT (tenant_id, bucket) DO UPDATE SET
    granted = least($5, floor({_REFILLED}))::int,
    tokens = {_REFILLED} - least($5, floor({_REFILLED})),
    refreshed_at = greatest(b.refreshed_at, now())
RETURNING granted, tokens
"""  # noqa: S608 - this module's own constant


@dataclass(slots=True)
class _Lease:
    # The limits it was leased under: tokens leased under others are void (a lowered limit
    # takes effect at once, not after the old batch is spent).
    rate: float
    burst: int
    tokens: int = 0
    # When the shared bucket was last found empty: not asked again before it holds a token.
    empty_until: float = 0.0


class RateLimiter:
    """Admits a tenant's request or refuses it with 429 `rate_limited` and `Retry-After`, and
    paces its uploads."""

    def __init__(
        self,
        reader: TenantReader,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._enabled = enabled
        self._clock = clock
        self._leases: OrderedDict[tuple[uuid.UUID, Bucket], _Lease] = OrderedDict()

    async def admit(self, tenant: TenantRecord, bucket: RequestBucket) -> None:
        """Spends one token of the tenant's bucket. The request's tenant must be `tenant`
        (the lease runs under its RLS)."""
        if not self._enabled:
            return
        limits = effective_limits(tenant.plan, tenant.limits)
        rate, burst = (
            (limits.api_rate, limits.api_burst)
            if bucket == "api"
            else (limits.auth_rate, limits.auth_burst)
        )
        if rate is None or burst is None:
            return
        key = (tenant.id, bucket)
        lease = self._lease(key, rate, burst)
        if lease.tokens == 0:
            now = self._clock()
            if now < lease.empty_until:
                raise _rate_limited(bucket, lease.empty_until - now)
            if not await self._renew(lease, key, now, wanted=1):
                raise _rate_limited(bucket, lease.empty_until - now)
        lease.tokens -= 1

    async def paced(
        self, tenant: TenantRecord, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """`chunks`, no faster than the tenant's upload bandwidth allows all its uploads
        together: a chunk waits for its bytes rather than being refused."""
        rate = effective_limits(tenant.plan, tenant.limits).upload_mib_per_second
        if not self._enabled or rate is None:
            async for chunk in chunks:
                yield chunk
            return
        kib_rate = rate * 1024
        key: tuple[uuid.UUID, Bucket] = (tenant.id, "upload")
        async for chunk in chunks:
            await self._spend(key, kib_rate, math.ceil(kib_rate), -(-len(chunk) // 1024))
            yield chunk

    async def _spend(
        self, key: tuple[uuid.UUID, Bucket], rate: float, burst: int, amount: int
    ) -> None:
        lease = self._lease(key, rate, burst)
        while amount > lease.tokens:
            amount -= lease.tokens
            lease.tokens = 0
            now = self._clock()
            if now < lease.empty_until:
                await asyncio.sleep(lease.empty_until - now)
            else:
                await self._renew(lease, key, now, wanted=_batch(rate, burst))
        lease.tokens -= amount

    def _lease(self, key: tuple[uuid.UUID, Bucket], rate: float, burst: int) -> _Lease:
        lease = self._leases.get(key)
        if lease is None or (lease.rate, lease.burst) != (rate, burst):
            lease = self._leases[key] = _Lease(rate, burst)
            if len(self._leases) > _MAX_LOCAL_BUCKETS:
                self._leases.popitem(last=False)
        self._leases.move_to_end(key)
        return lease

    async def _renew(
        self, lease: _Lease, key: tuple[uuid.UUID, Bucket], now: float, *, wanted: int
    ) -> bool:
        """Leases a batch from the shared bucket; False when it is empty (then it is not
        asked again until it would hold `wanted` tokens)."""
        tenant_id, bucket = key
        rate, burst = lease.rate, lease.burst
        try:
            async with self._reader.transaction(read_only=False) as connection:
                granted, left = await connection.fetchrow(
                    _LEASE, tenant_id, bucket, float(burst), float(rate), _batch(rate, burst)
                )
        except DomainError as exc:  # the database is down: serve rather than refuse everyone
            logger.warning("rate_limit_unchecked", tenant_id=str(tenant_id), reason=exc.code)
            lease.tokens += _batch(rate, burst)
            return True
        if granted <= 0:
            lease.empty_until = now + (wanted - left) / rate
            return False
        lease.tokens += granted  # concurrent renewals in one process add up
        return True


def _batch(rate: float, burst: int) -> int:
    return max(1, min(burst, math.ceil(rate * _LEASE_SECONDS)))


def _rate_limited(bucket: RequestBucket, wait_seconds: float) -> DomainError:
    what = "login, signup and password-reset requests" if bucket == "auth" else "requests"
    return DomainError(
        ErrorCode.RATE_LIMITED,
        f"this tenant's {what} are above its plan's rate",
        headers={"Retry-After": str(max(1, math.ceil(wait_seconds)))},
    )


_TAKE_SLOT = [
    # One tenant's takers in turn, whichever process or replica they run in.
    "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 4242))",
    "DELETE FROM upload_slots WHERE tenant_id = $1 AND expires_at < now()",
]
_INSERT_SLOT = """
INSERT INTO upload_slots (tenant_id, id, expires_at)
SELECT $1, $2, now() + make_interval(secs => $4)
WHERE (SELECT count(*) FROM upload_slots WHERE tenant_id = $1) < $3
RETURNING id
"""
_RENEW_SLOT = (
    "UPDATE upload_slots SET expires_at = now() + make_interval(secs => $3) "
    "WHERE tenant_id = $1 AND id = $2"
)
_FREE_SLOT = "DELETE FROM upload_slots WHERE tenant_id = $1 AND id = $2"


class UploadSlots:
    """Bounds a tenant's uploads in flight (429 `too_many_uploads` beyond its limit)."""

    def __init__(
        self,
        reader: TenantReader,
        *,
        enabled: bool = True,
        lease_seconds: float = UPLOAD_SLOT_SECONDS,
    ) -> None:
        self._reader = reader
        self._enabled = enabled
        self._lease_seconds = lease_seconds

    @contextlib.asynccontextmanager
    async def held(self, tenant: TenantRecord) -> AsyncIterator[None]:
        """A slot for the block's duration. The request's tenant must be `tenant`."""
        limit = effective_limits(tenant.plan, tenant.limits).concurrent_uploads
        if not self._enabled or limit is None:
            yield
            return
        slot = uuid.uuid4()
        async with self._reader.transaction(read_only=False) as connection:
            for statement in _TAKE_SLOT:
                await connection.execute(statement, tenant.id)
            taken = await connection.fetchval(
                _INSERT_SLOT, tenant.id, slot, limit, self._lease_seconds
            )
        if taken is None:
            raise DomainError(
                ErrorCode.TOO_MANY_UPLOADS,
                f"this tenant already has {limit} uploads in flight, its plan's limit",
                headers={"Retry-After": "1"},
            )
        renewer = asyncio.create_task(self._renew_forever(tenant.id, slot))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            # Freed even when the request is being cancelled; if this fails, the lease expires.
            with contextlib.suppress(DomainError):
                await asyncio.shield(self._free(tenant.id, slot))

    async def _renew_forever(self, tenant_id: uuid.UUID, slot: uuid.UUID) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            with contextlib.suppress(DomainError):
                async with self._reader.transaction(read_only=False) as connection:
                    await connection.execute(_RENEW_SLOT, tenant_id, slot, self._lease_seconds)

    async def _free(self, tenant_id: uuid.UUID, slot: uuid.UUID) -> None:
        async with self._reader.transaction(read_only=False) as connection:
            await connection.execute(_FREE_SLOT, tenant_id, slot)


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What bounds a tenant's uploads through the API: its uploads in flight and its bandwidth."""

    slots: UploadSlots
    limiter: RateLimiter

    def held(self, tenant: TenantRecord) -> contextlib.AbstractAsyncContextManager[None]:
        return self.slots.held(tenant)

    def paced(self, tenant: TenantRecord, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self.limiter.paced(tenant, chunks)
