"""`tenantry usage seed`: the synthetic usage is coherent and the rollups count all of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tenantry.commands import seed_usage
from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tenantry.lib.errors import DomainError
from tenantry.usage.repository import PlatformUsageRepository
from tenantry.usage.rollups import RollupJob
from tenantry.usage.seed import SeedPlan, SyntheticUsage
from tenantry.usage.services import PlatformUsageService, parse_range

PLAN = SeedPlan(tenants=3, events=2_000, days=30, seed=7)
KIND_COUNTS = {
    "upload": "uploads",
    "download": "downloads",
    "delete": "deletes",
    "login": "logins",
    "signup": "signups",
}
ROLLUPS = {
    "usage_daily": "tenant_id, day, dimension, key",
    "usage_daily_users": "tenant_id, day, user_id",
    "usage_storage_daily": "tenant_id, day",
}


async def _rollups(connection: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    return {
        table: await connection.fetch(f"SELECT * FROM {table} ORDER BY {key}")
        for table, key in ROLLUPS.items()
    }


async def test_seeded_usage_is_rolled_up_whole_and_rebuilds_the_same(
    settings: Settings, clean_database: None, platform_connection: asyncpg.Connection
) -> None:
    report = await seed_usage(settings, PLAN)

    by_kind = dict(
        await platform_connection.fetch("SELECT kind, count(*) FROM usage_events GROUP BY kind")
    )
    assert sum(by_kind.values()) == PLAN.events == report.rolled_up
    assert set(by_kind) == set(KIND_COUNTS), "every kind occurs"
    rolled = await platform_connection.fetchrow(
        "SELECT "
        + ", ".join(f"sum({column})::bigint AS {column}" for column in KIND_COUNTS.values())
        + " FROM usage_daily WHERE dimension = 'total'"
    )
    assert {kind: rolled[column] for kind, column in KIND_COUNTS.items()} == by_kind

    # Storage: the last snapshot, the quota counter, the files and the events all agree.
    storage = await platform_connection.fetch(
        """
        SELECT u.storage_bytes, u.file_count, t.storage_quota_bytes,
            last.storage_bytes AS rolled_bytes, last.file_count AS rolled_files,
            (SELECT coalesce(sum(size), 0) FROM files f
             WHERE f.tenant_id = u.tenant_id AND f.status = 'ready') AS file_bytes,
            (SELECT count(*) FROM files f WHERE f.tenant_id = u.tenant_id) AS files,
            (SELECT coalesce(sum(CASE kind WHEN 'upload' THEN bytes ELSE -bytes END), 0)
             FROM usage_events e WHERE e.tenant_id = u.tenant_id
               AND kind IN ('upload', 'delete')) AS event_bytes
        FROM tenant_usage u JOIN tenants t ON t.id = u.tenant_id
        LEFT JOIN LATERAL (
            SELECT storage_bytes, file_count FROM usage_storage_daily s
            WHERE s.tenant_id = u.tenant_id ORDER BY day DESC LIMIT 1) last ON true
        WHERE t.slug LIKE 'seed-%'
        """
    )
    assert len(storage) == PLAN.tenants
    for row in storage:
        assert row["storage_bytes"] == row["rolled_bytes"] == row["file_bytes"]
        assert row["storage_bytes"] == row["event_bytes"] <= row["storage_quota_bytes"]
        assert row["file_count"] == row["rolled_files"] == row["files"]

    # Every day's snapshot is the running sum of the uploads and deletes up to that day.
    storage_days_off = await platform_connection.fetchval(
        """
        WITH changes AS (
            SELECT tenant_id, occurred_at::date AS day,
                sum(CASE kind WHEN 'upload' THEN bytes ELSE -bytes END) AS bytes,
                sum(CASE kind WHEN 'upload' THEN 1 ELSE -1 END) AS files
            FROM usage_events WHERE kind IN ('upload', 'delete') GROUP BY 1, 2),
        running AS (
            SELECT tenant_id, day, sum(bytes) OVER w AS bytes, sum(files) OVER w AS files
            FROM changes WINDOW w AS (PARTITION BY tenant_id ORDER BY day))
        SELECT count(*) FROM running r FULL JOIN usage_storage_daily s USING (tenant_id, day)
        WHERE r.bytes IS DISTINCT FROM s.storage_bytes OR r.files IS DISTINCT FROM s.file_count
        """
    )
    assert storage_days_off == 0

    # Facets as the app records them: users exist with their role, downloads and deletes name
    # a file uploaded earlier with the same size and facets.
    incoherent = await platform_connection.fetchval(
        """
        SELECT count(*) FROM usage_events e
        LEFT JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id
        LEFT JOIN usage_events up ON up.tenant_id = e.tenant_id AND up.kind = 'upload'
            AND up.file_id = e.file_id AND up.occurred_at <= e.occurred_at
        WHERE u.role IS DISTINCT FROM e.user_role
            OR (e.kind IN ('download', 'delete') AND (up.bytes IS DISTINCT FROM e.bytes
                OR up.category_id IS DISTINCT FROM e.category_id
                OR up.language IS DISTINCT FROM e.language
                OR up.audience_ids IS DISTINCT FROM e.audience_ids
                OR up.content_type IS DISTINCT FROM e.content_type))
        """
    )
    assert incoherent == 0
    roles = await platform_connection.fetch(
        "SELECT tenant_id, count(DISTINCT role) AS roles FROM users GROUP BY tenant_id"
    )
    assert [row["roles"] for row in roles] == [4] * PLAN.tenants
    file_stats = await platform_connection.fetchval(
        "SELECT sum(files) FROM file_stats WHERE dimension = 'total'"
    )
    assert file_stats == report.files

    before = await _rollups(platform_connection)
    config = platform_db_config(settings)
    try:
        job = RollupJob(config, retention_days=settings.usage_retention_days)
        rebuilt = await job.rebuild(report.first.date(), report.last.date())
    finally:
        await config.get_engine().dispose()
    assert rebuilt == PLAN.events
    assert await _rollups(platform_connection) == before

    with pytest.raises(DomainError, match="exist already"):
        await seed_usage(settings, PLAN)


async def test_replace_seeds_anew(settings: Settings, clean_database: None) -> None:
    small = SeedPlan(tenants=2, events=300, days=10)
    first = await seed_usage(settings, small)
    again = await seed_usage(
        settings, SeedPlan(tenants=2, events=300, days=10, seed=2), replace=True
    )
    assert again.rolled_up == small.events
    assert set(again.tenant_ids).isdisjoint(first.tenant_ids)


async def test_platform_totals_are_the_same_on_every_page(
    settings: Settings, clean_database: None, platform_connection: asyncpg.Connection
) -> None:
    report = await seed_usage(settings, SeedPlan(tenants=3, events=600, days=10))
    span = parse_range(report.first.date(), report.last.date(), "day", None, zone="UTC")
    config = platform_db_config(settings)
    try:
        async with config.get_session() as session:
            service = PlatformUsageService(PlatformUsageRepository(session))
            pages = [
                await service.report(span, sort="-storage_bytes", limit=2, offset=offset)
                for offset in (0, 2, 3)  # two tenants, the third, none
            ]
    finally:
        await config.get_engine().dispose()
    assert [len(page.items) for page in pages] == [2, 1, 0]
    assert pages[0].totals == pages[1].totals == pages[2].totals
    assert {page.total for page in pages} == {3}
    totals = pages[0].totals
    expected = await platform_connection.fetchrow(
        "SELECT count(*) FILTER (WHERE kind = 'download') AS downloads, "
        "coalesce(sum(bytes) FILTER (WHERE kind = 'upload'), 0) AS bytes_in, "
        "(SELECT sum(storage_bytes) FROM tenant_usage) AS storage_bytes FROM usage_events"
    )
    assert (totals.downloads, totals.bytes_in, totals.storage_bytes) == tuple(expected)


def test_days_add_up_to_the_events_and_end_now() -> None:
    now = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
    world = SyntheticUsage(SeedPlan(tenants=5, events=10_000, days=7), now)
    days = world.days()
    assert sum(day.events for day in days) == 10_000
    assert days[0].start == datetime(2026, 11, 25, tzinfo=UTC)
    moments = [row[1] for day in days for row in world.events_of(day)]
    assert moments == sorted(moments)
    assert world.first <= moments[0] and moments[-1] < now
    assert now - moments[-1] < timedelta(hours=1)
