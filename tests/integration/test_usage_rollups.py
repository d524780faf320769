"""The rollup job counts every event exactly once, whatever commits late; retention drops raw
events without changing a report; days are the tenant's reporting zone's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenantry.config import Settings
from tenantry.db.engines import platform_db_config, role_url
from tenantry.db.usage import UsageRecorder
from tenantry.lib.errors import DomainError
from tenantry.storage.keys import branding_key, file_key
from tenantry.usage.meter import ServedBytesMeter
from tenantry.usage.rollups import RollupJob
from tests.conftest import connect_as

INSERT_EVENT = (
    "INSERT INTO usage_events (tenant_id, occurred_at, kind, user_id, bytes) "
    "VALUES ($1, $2, $3, $4, $5)"
)
TOTALS = (
    "SELECT day, uploads, downloads, logins, bytes_in, bytes_out FROM usage_daily "
    "WHERE tenant_id = $1 AND dimension = 'total' ORDER BY day"
)


@pytest.fixture
async def job(settings: Settings) -> AsyncIterator[RollupJob]:
    config = platform_db_config(settings)
    yield RollupJob(config, retention_days=400)
    await config.get_engine().dispose()


async def _tenant(platform: asyncpg.Connection, zone: str = "UTC") -> uuid.UUID:
    tenant_id: uuid.UUID = await platform.fetchval(
        "INSERT INTO tenants (slug, name, storage_quota_bytes, max_file_bytes, settings) "
        "VALUES ($1, 'T', 1000000, 1000000, $2::jsonb) RETURNING id",
        f"t-{uuid.uuid4().hex[:8]}",
        f'{{"usage_timezone": "{zone}"}}',
    )
    return tenant_id


async def test_an_event_that_commits_late_is_counted_once(
    settings: Settings,
    clean_database: None,
    job: RollupJob,
    platform_connection: asyncpg.Connection,
) -> None:
    tenant_id = await _tenant(platform_connection)
    now = datetime.now(UTC)
    async with connect_as(role_url(settings, "platform")) as slow:
        # A transaction that wrote its event first and commits last.
        late = slow.transaction()
        await late.start()
        await slow.execute(INSERT_EVENT, tenant_id, now, "upload", None, 1000)
        for _ in range(5):
            await platform_connection.execute(INSERT_EVENT, tenant_id, now, "download", None, 10)
        # The five are committed, but not final while the older transaction may still commit:
        # the job waits for it rather than moving its watermark past it.
        assert await job.run_once() == 0
        await late.commit()
    assert await job.catch_up() == 6
    assert await job.run_once() == 0  # nothing twice
    rows = await platform_connection.fetch(TOTALS, tenant_id)
    assert [tuple(row)[1:] for row in rows] == [(1, 5, 0, 1000, 50)]


async def test_a_rolled_back_event_is_never_counted(
    settings: Settings,
    clean_database: None,
    job: RollupJob,
    platform_connection: asyncpg.Connection,
) -> None:
    tenant_id = await _tenant(platform_connection)
    async with connect_as(role_url(settings, "platform")) as other:
        aborted = other.transaction()
        await aborted.start()
        await other.execute(INSERT_EVENT, tenant_id, datetime.now(UTC), "upload", None, 99)
        await aborted.rollback()
    await platform_connection.execute(INSERT_EVENT, tenant_id, datetime.now(UTC), "login", None, 0)
    assert await job.catch_up() == 1
    rows = await platform_connection.fetch(TOTALS, tenant_id)
    assert [tuple(row)[1:] for row in rows] == [(0, 0, 1, 0, 0)]


async def test_days_are_the_tenants_reporting_zone(
    clean_database: None, job: RollupJob, platform_connection: asyncpg.Connection
) -> None:
    berlin = await _tenant(platform_connection, "Europe/Berlin")
    utc = await _tenant(platform_connection)
    late_evening = datetime.combine(date.today() - timedelta(days=3), datetime.min.time(), UTC)
    late_evening += timedelta(hours=23, minutes=30)  # 00:30 the next day in Berlin
    for tenant_id in (berlin, utc):
        await platform_connection.execute(INSERT_EVENT, tenant_id, late_evening, "login", None, 0)
    await job.catch_up()
    berlin_day = (await platform_connection.fetch(TOTALS, berlin))[0]["day"]
    utc_day = (await platform_connection.fetch(TOTALS, utc))[0]["day"]
    assert berlin_day == utc_day + timedelta(days=1)


async def test_retention_drops_old_events_and_no_report_changes(
    settings: Settings,
    clean_database: None,
    job: RollupJob,
    platform_connection: asyncpg.Connection,
) -> None:
    tenant_id = await _tenant(platform_connection)
    old = datetime.now(UTC) - timedelta(days=380)
    await job.ensure_partitions(old, old)
    user = uuid.uuid4()
    await platform_connection.execute(INSERT_EVENT, tenant_id, old, "upload", user, 4096)
    await platform_connection.execute(INSERT_EVENT, tenant_id, datetime.now(UTC), "upload", user, 1)
    await job.catch_up()
    rollups = "SELECT * FROM usage_daily UNION ALL SELECT tenant_id, day, 'storage', '', storage_bytes, file_count, 0, 0, 0, 0, 0, 0 FROM usage_storage_daily"
    before = sorted(map(tuple, await platform_connection.fetch(rollups)))
    old_partition = "usage_events_" + old.strftime("%Y_%m")

    # Forty days on, the old event's month is past the 400-day window.
    dropped = await job.maintain_partitions(now=datetime.now(UTC) + timedelta(days=40))
    assert old_partition in dropped
    assert await platform_connection.fetchval("SELECT count(*) FROM usage_events") == 1
    assert sorted(map(tuple, await platform_connection.fetch(rollups))) == before
    # The current months are kept (and made ahead), so writing goes on.
    await platform_connection.execute(INSERT_EVENT, tenant_id, datetime.now(UTC), "login", user, 0)
    # A rebuild that reaches before the window would lose what only the rollups still hold.
    with pytest.raises(DomainError, match="retention window"):
        await job.rebuild(old.date(), date.today())


class _DownOnce(UsageRecorder):
    """A recorder whose first write meets a database that is down."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def record_served(self, session: Any, served: Any) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("connection refused")
        await super().record_served(session, served)


async def test_served_bytes_survive_a_failed_write(
    settings: Settings, clean_database: None, platform_connection: asyncpg.Connection
) -> None:
    tenant_id, file_id = await _tenant(platform_connection), uuid.uuid4()
    config = platform_db_config(settings)
    meter = ServedBytesMeter(config, _DownOnce())
    try:
        meter.served(file_key(tenant_id, file_id), 100)
        with pytest.raises(OSError, match="refused"):
            await meter.drain()
        meter.served(file_key(tenant_id, file_id), 23)
        meter.served(branding_key(tenant_id, "logo"), 5)  # not a file: not metered
        await meter.drain()
    finally:
        await config.get_engine().dispose()
    rows = await platform_connection.fetch(
        "SELECT kind, file_id, bytes FROM usage_events WHERE tenant_id = $1", tenant_id
    )
    assert [tuple(row) for row in rows] == [("serve", file_id, 123)]
