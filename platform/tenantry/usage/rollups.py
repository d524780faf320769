"""The usage rollups, kept current by a job that reads events from a watermark.

Why a job and not the event's own transaction: a download link is a hot path, and counting it
in place would add six to ten upserts to it, all on the same few rows per tenant and day, which
serialise every concurrent download of a tenant on row locks. The job instead rolls up
thousands of events per statement, set-based, off the request path.

How it never misses or double-counts: events are read in `(txid, seq)` order and only below the
oldest transaction still running (`pg_snapshot_xmin`), where nothing can commit any more; the
watermark moves in the same transaction as the rollups it produced, under a row lock that one
replica at a time holds (`FOR UPDATE SKIP LOCKED`: the others skip the round).

What "current" means: an event is in the reports at most `usage_rollup_interval_seconds` (1 s
by default) after its transaction and every transaction older than it have committed. A report
says how current it is in `as_of`.

A day is a day in the tenant's reporting zone (`settings.usage_timezone`, default UTC).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.lib.errors import DomainError, ErrorCode

logger = structlog.get_logger("tenantry.usage")

BATCH = 20_000
# Kinds that concern a file (the others, login and signup, have no file facets).
_FILE_KINDS = "('upload', 'download', 'delete', 'serve')"

# {select} picks the batch: the events with their day. Every metric is one FILTERed aggregate,
# so a row of `usage_daily` holds all kinds of one (tenant, day, dimension, key).
_ROLL_UP = """
WITH batch AS MATERIALIZED (
    SELECT e.tenant_id, e.txid, e.seq, e.kind, e.user_id, e.user_role, e.file_id, e.bytes,
        e.category_id, e.language, e.audience_ids, e.content_type,
        (e.occurred_at AT TIME ZONE COALESCE(t.settings ->> 'usage_timezone', 'UTC'))::date AS day
    FROM usage_events e JOIN tenants t ON t.id = e.tenant_id
    WHERE {where}
    ORDER BY e.txid, e.seq
    {limit}
),
facts AS (
    SELECT tenant_id, day, kind, bytes, 'total' AS dimension, '' AS key FROM batch
    UNION ALL SELECT tenant_id, day, kind, bytes, 'role', COALESCE(user_role, '') FROM batch
    UNION ALL SELECT tenant_id, day, kind, bytes, 'category', COALESCE(category_id::text, '')
        FROM batch WHERE kind IN {file_kinds}
    UNION ALL SELECT tenant_id, day, kind, bytes, 'language', COALESCE(language, '')
        FROM batch WHERE kind IN {file_kinds}
    UNION ALL SELECT tenant_id, day, kind, bytes, 'content_type', COALESCE(content_type, '')
        FROM batch WHERE kind IN {file_kinds}
    UNION ALL SELECT b.tenant_id, b.day, b.kind, b.bytes, 'audience', COALESCE(a::text, '')
        FROM batch b CROSS JOIN LATERAL unnest(
            CASE WHEN cardinality(b.audience_ids) = 0 THEN ARRAY[NULL::uuid]
            ELSE b.audience_ids END) AS a
        WHERE b.kind IN {file_kinds}
    UNION ALL SELECT tenant_id, day, kind, bytes, 'file', file_id::text
        FROM batch WHERE kind IN ('download', 'serve') AND file_id IS NOT NULL
),
daily AS (
    INSERT INTO usage_daily AS d (tenant_id, day, dimension, key, uploads, downloads, deletes,
        logins, signups, bytes_in, bytes_out, bytes_served)
    SELECT tenant_id, day, dimension, key,
        count(*) FILTER (WHERE kind = 'upload'),
        count(*) FILTER (WHERE kind = 'download'),
        count(*) FILTER (WHERE kind = 'delete'),
        count(*) FILTER (WHERE kind = 'login'),
        count(*) FILTER (WHERE kind = 'signup'),
        COALESCE(sum(bytes) FILTER (WHERE kind = 'upload'), 0),
        COALESCE(sum(bytes) FILTER (WHERE kind = 'download'), 0),
        COALESCE(sum(bytes) FILTER (WHERE kind = 'serve'), 0)
    FROM facts GROUP BY tenant_id, day, dimension, key
    ON CONFLICT (tenant_id, day, dimension, key) DO UPDATE SET
        uploads = d.uploads + EXCLUDED.uploads,
        downloads = d.downloads + EXCLUDED.downloads,
        deletes = d.deletes + EXCLUDED.deletes,
        logins = d.logins + EXCLUDED.logins,
        signups = d.signups + EXCLUDED.signups,
        bytes_in = d.bytes_in + EXCLUDED.bytes_in,
        bytes_out = d.bytes_out + EXCLUDED.bytes_out,
        bytes_served = d.bytes_served + EXCLUDED.bytes_served
),
active AS (
    INSERT INTO usage_daily_users (tenant_id, day, user_id)
    SELECT DISTINCT tenant_id, day, user_id FROM batch WHERE user_id IS NOT NULL
    ON CONFLICT DO NOTHING
),
-- Storage: every upload adds its bytes and a file, every delete takes them away. A snapshot
-- row is the state at the end of its day; rows exist on days with changes only.
deltas AS (
    SELECT tenant_id, day,
        sum(CASE kind WHEN 'upload' THEN bytes ELSE -bytes END) AS bytes,
        sum(CASE kind WHEN 'upload' THEN 1 ELSE -1 END) AS files
    FROM batch WHERE kind IN ('upload', 'delete') GROUP BY tenant_id, day
),
later_days AS (
    -- Days that already have a row take every change of that day or before.
    UPDATE usage_storage_daily s
    SET storage_bytes = s.storage_bytes + x.bytes, file_count = s.file_count + x.files
    FROM (
        SELECT s2.tenant_id, s2.day, sum(d.bytes) AS bytes, sum(d.files) AS files
        FROM usage_storage_daily s2
        JOIN deltas d ON d.tenant_id = s2.tenant_id AND d.day <= s2.day
        WHERE s2.day < :until
        GROUP BY s2.tenant_id, s2.day
    ) x
    WHERE s.tenant_id = x.tenant_id AND s.day = x.day
),
new_days AS (
    -- Days without a row start from the last row before them (this statement sees the rows
    -- as they were before it) plus every change of the batch up to that day: a running sum
    -- over the tenant's days (a correlated sum per day would read all the deltas again for
    -- each day, quadratic in the days of a batch: a rebuild of a year took minutes).
    INSERT INTO usage_storage_daily (tenant_id, day, storage_bytes, file_count)
    SELECT d.tenant_id, d.day,
        COALESCE(prev.storage_bytes, 0) + d.bytes_so_far,
        COALESCE(prev.file_count, 0) + d.files_so_far
    FROM (
        SELECT tenant_id, day,
            sum(bytes) OVER (PARTITION BY tenant_id ORDER BY day) AS bytes_so_far,
            sum(files) OVER (PARTITION BY tenant_id ORDER BY day) AS files_so_far
        FROM deltas) d
    LEFT JOIN LATERAL (
        SELECT p.storage_bytes, p.file_count FROM usage_storage_daily p
        WHERE p.tenant_id = d.tenant_id AND p.day < d.day ORDER BY p.day DESC LIMIT 1
    ) prev ON true
    WHERE NOT EXISTS (
        SELECT 1 FROM usage_storage_daily s WHERE s.tenant_id = d.tenant_id AND s.day = d.day)
)
SELECT (SELECT count(*) FROM batch) AS events, last.txid::text AS txid, last.seq
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT txid, seq FROM batch ORDER BY txid DESC, seq DESC LIMIT 1) AS last ON true
"""

_INCREMENT = text(
    _ROLL_UP.format(
        where="(e.txid, e.seq) > (CAST(:txid AS xid8), :seq)"
        " AND e.txid < pg_snapshot_xmin(pg_current_snapshot())",
        limit="LIMIT :batch",
        file_kinds=_FILE_KINDS,
    )
)
# A rebuild recounts the events of its days that the job has already counted (up to the
# watermark); later ones are the job's, as always.
_REBUILD = text(
    _ROLL_UP.format(
        where="(e.txid, e.seq) <= (CAST(:txid AS xid8), :seq)"
        " AND e.occurred_at >= :events_from AND e.occurred_at < :events_to"
        " AND (CAST(:tenant_id AS uuid) IS NULL OR e.tenant_id = CAST(:tenant_id AS uuid))"
        " AND (e.occurred_at AT TIME ZONE COALESCE(t.settings ->> 'usage_timezone', 'UTC'))::date"
        " BETWEEN :first AND :last",
        limit="",
        file_kinds=_FILE_KINDS,
    )
)
_LOCK_STATE = "SELECT txid::text AS txid, seq FROM usage_rollup_state WHERE id = 1 FOR UPDATE"
_MOVE_WATERMARK = text(
    "UPDATE usage_rollup_state SET txid = CAST(:txid AS xid8), seq = :seq, "
    "rolled_up_at = now() WHERE id = 1"
)
_BEHIND = text(
    "SELECT count(*) FROM usage_events e, usage_rollup_state s "
    "WHERE s.id = 1 AND (e.txid, e.seq) > (s.txid, s.seq)"
)
_TOUCH_WATERMARK = text("UPDATE usage_rollup_state SET rolled_up_at = now() WHERE id = 1")
_CLEAR_RANGE = [
    text(
        f"DELETE FROM {table} WHERE day BETWEEN :first AND :last"  # noqa: S608
        " AND (CAST(:tenant_id AS uuid) IS NULL OR tenant_id = CAST(:tenant_id AS uuid))"
    )
    for table in ("usage_daily", "usage_daily_users", "usage_storage_daily")
]
# Where the oldest partition still kept begins: events before it are gone.
_OLDEST_PARTITION = text(
    "SELECT min(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)')"
    "::timestamptz) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'usage_events'::regclass"
)
_ENSURE_PARTITIONS = text("SELECT usage_events_ensure_partitions(:first, :last)")
_DROP_PARTITIONS = text("SELECT usage_events_drop_partitions(:before)")


@dataclass(frozen=True, slots=True)
class Watermark:
    txid: int  # xid8, which asyncpg passes as an int
    seq: int


async def _roll_up_batch(session: AsyncSession, mark: Watermark) -> tuple[int, Watermark]:
    row = (
        await session.execute(
            _INCREMENT,
            {"txid": mark.txid, "seq": mark.seq, "batch": BATCH, "until": date.max},
        )
    ).one()
    if not row.events:
        return 0, mark
    return int(row.events), Watermark(int(row.txid), int(row.seq))


class RollupJob:
    """Rolls up new events (`run_once`), rebuilds days from events (`rebuild`), and keeps the
    event partitions ahead of time and within retention (`maintain_partitions`)."""

    def __init__(self, platform_db: SQLAlchemyAsyncConfig, *, retention_days: int) -> None:
        self._db = platform_db
        self._retention = timedelta(days=retention_days)

    async def run_once(self) -> int:
        """Rolls up every event that is final now; 0 when another replica holds the job."""
        total = 0
        while True:
            async with self._db.get_session() as session, session.begin():
                state = (await session.execute(text(_LOCK_STATE + " SKIP LOCKED"))).first()
                if state is None:
                    return total
                counted, mark = await _roll_up_batch(session, Watermark(int(state.txid), state.seq))
                if counted:
                    await session.execute(_MOVE_WATERMARK, {"txid": mark.txid, "seq": mark.seq})
                else:
                    await session.execute(_TOUCH_WATERMARK)
            total += counted
            if counted < BATCH:
                return total

    async def behind(self) -> int:
        """Events committed (or still being written) that the rollups do not count yet: the
        job's lag. It waits on every transaction older than an event, in the whole cluster."""
        async with self._db.get_session() as session:
            return int((await session.execute(_BEHIND)).scalar_one())

    async def catch_up(self, timeout_seconds: float = 30.0) -> int:
        """Rolls up until every event committed before the call is counted (rounds wait for
        older transactions to end); returns the events counted."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        counted = await self.run_once()
        while await self.behind():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("usage rollups: older transactions are still open")
            await asyncio.sleep(0.05)
            counted += await self.run_once()
        return counted

    async def rebuild(self, first: date, last: date, *, tenant_id: uuid.UUID | None = None) -> int:
        """Recomputes the rollups of days `first`..`last` from the raw events; returns the
        events counted. Waits for a running job round, and holds off the next until done."""
        if last < first:
            raise DomainError(ErrorCode.INVALID_VALUE, "`to` is before `from`", field="to")
        # Days in any zone lie within a day and a half of the same UTC day: a wide enough net.
        window = {
            "events_from": datetime.combine(first, datetime.min.time(), UTC) - timedelta(days=2),
            "events_to": datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=3),
        }
        scope = {"first": first, "last": last, "tenant_id": tenant_id}
        async with self._db.get_session() as session, session.begin():
            state = (await session.execute(text(_LOCK_STATE))).one()
            kept_since: datetime | None = await session.scalar(_OLDEST_PARTITION)
            # A day in any zone starts at most 14 hours before the same UTC day.
            if kept_since is None or first <= kept_since.date():
                raise DomainError(
                    ErrorCode.INVALID_VALUE,
                    f"events before {kept_since.date() if kept_since else 'now'} are past the "
                    "retention window: only their rollups are left, and a rebuild would lose them",
                    field="from",
                )
            for clear in _CLEAR_RANGE:
                await session.execute(clear, scope)
            row = (
                await session.execute(
                    _REBUILD,
                    {
                        **scope,
                        **window,
                        "txid": int(state.txid),
                        "seq": state.seq,
                        # Days after the range already hold these changes.
                        "until": last + timedelta(days=1),
                    },
                )
            ).one()
        return int(row.events)

    async def maintain_partitions(self, now: datetime | None = None) -> list[str]:
        """Partitions for last month through three months ahead; partitions wholly older than
        the retention window dropped (returned). Idempotent, safe in every replica."""
        now = now or datetime.now(UTC)
        async with self._db.get_session() as session, session.begin():
            await session.execute(
                _ENSURE_PARTITIONS,
                {"first": now - timedelta(days=31), "last": now + timedelta(days=92)},
            )
            dropped = list(
                await session.scalars(_DROP_PARTITIONS, {"before": now - self._retention})
            )
        if dropped:
            logger.info("usage_partitions_dropped", partitions=dropped)
        return dropped

    async def ensure_partitions(self, first: datetime, last: datetime) -> None:
        async with self._db.get_session() as session, session.begin():
            await session.execute(_ENSURE_PARTITIONS, {"first": first, "last": last})

    async def run_forever(self, interval_seconds: float) -> None:
        maintained = datetime.min.replace(tzinfo=UTC)
        while True:
            try:
                if datetime.now(UTC) - maintained > timedelta(hours=1):
                    await self.maintain_partitions()
                    maintained = datetime.now(UTC)
                await self.run_once()
            except Exception:  # a failed round is retried at the next interval
                logger.exception("usage_rollup_failed")
            await asyncio.sleep(interval_seconds)
