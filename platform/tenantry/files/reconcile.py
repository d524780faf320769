"""The storage reconciler: brings the store back in line with the database.

Rows are written before their objects and deleted before them, so an object without a row is
always garbage, and a row stuck in `pending` past the timeout is an upload that died. A direct
upload not completed by its `expires_at` (or stuck completing an hour past it) is given up:
session, file row and reservation in one transaction (after the tenant's write lock, the order
every upload takes), then the store's multipart upload (with what the store staged beside it)
and any object. What a store stages beside a file's key (`keys.staging_key`, the S3 store's tus
tail) is the upload session's: garbage once the session is gone or completed, which the scan of
the bucket finds like any orphan (a PATCH still running when its upload ended can stage after
the abort). Runs periodically in every replica and as `tenantry storage reconcile`, one at a
time (a session advisory lock on a connection of its own, outside any transaction: a scan of
the bucket must not hold back the usage job's snapshot horizon); the others skip their turn.
Memory stays bounded at any number of tenants and objects: keys are listed and checked BATCH at
a time, stale rows and abandoned uploads handled BATCH at a time, and only tenants offboarded in
the last OFFBOARDED_RETRY are purged by prefix (older ones' objects are orphans the scan finds
anyway).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import text

from tenantry.db.engines import asyncpg_dsn
from tenantry.storage import ObjectStore, staging_owner, tenant_prefix

BATCH = 500
OFFBOARDED_RETRY = timedelta(days=7)
logger = structlog.get_logger("tenantry.reconcile")

_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('tenantry.reconcile', 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('tenantry.reconcile', 0))"
# Direct uploads' files are their sessions' to settle (their reservation goes with them).
_STALE_PENDING = text(
    "DELETE FROM files WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM files "
    "WHERE status IN ('pending', 'uploading') AND updated_at < :cutoff "
    "AND NOT EXISTS (SELECT 1 FROM upload_sessions s "
    "WHERE s.tenant_id = files.tenant_id AND s.file_id = files.id) LIMIT :batch) "
    "RETURNING storage_key"
)
# A request completing an upload claimed it before it expired; it gets this long to finish.
COMPLETING_GRACE = timedelta(hours=1)
_ABANDONED = text(
    "SELECT tenant_id, id FROM upload_sessions "
    "WHERE (state = 'open' AND expires_at < now()) "
    "OR (state = 'completing' AND expires_at < :completing_cutoff) LIMIT :batch"
)
_LOCK_COUNTERS = text("SELECT 1 FROM tenant_usage WHERE tenant_id = :tenant_id FOR UPDATE")
# Found abandoned and not completed since (an expired open upload cannot be claimed any more).
_GIVE_UP = text(
    "DELETE FROM upload_sessions WHERE tenant_id = :tenant_id AND id = :id "
    "AND state <> 'completed' RETURNING file_id, store_upload_id, reserved_bytes"
)
_DELETE_FILE = text(
    "DELETE FROM files WHERE tenant_id = :tenant_id AND id = :file_id RETURNING storage_key"
)
_RELEASE = text(
    "UPDATE tenant_usage SET reserved_bytes = reserved_bytes - :bytes, updated_at = now() "
    "WHERE tenant_id = :tenant_id"
)
# Completed sessions answer a repeated complete until they expire; then they are history.
_FORGET_COMPLETED = text(
    "DELETE FROM upload_sessions WHERE state = 'completed' AND expires_at < now()"
)
_KNOWN_KEYS = text("SELECT storage_key FROM files WHERE storage_key = ANY(:keys)")
# Files whose upload is still going on (their staging is kept).
_UPLOADING_KEYS = text(
    "SELECT f.storage_key FROM files f JOIN upload_sessions s "
    "ON s.tenant_id = f.tenant_id AND s.file_id = f.id "
    "WHERE f.storage_key = ANY(:keys) AND s.state <> 'completed'"
)
_OFFBOARDED = text("SELECT id FROM tenants WHERE status = 'deleted' AND deleted_at > :since")


class ReconcileReport(msgspec.Struct):
    stale_pending_removed: int = 0
    abandoned_uploads_aborted: int = 0
    orphan_objects_removed: int = 0
    offboarded_objects_removed: int = 0


class Reconciler:
    def __init__(
        self, platform_db: SQLAlchemyAsyncConfig, store: ObjectStore, *, pending_timeout: timedelta
    ) -> None:
        self._db = platform_db
        self._store = store
        self._pending_timeout = pending_timeout

    async def run_once(self) -> ReconcileReport | None:
        """One round, or None when another replica's round is running."""
        lock = await asyncpg.connect(asyncpg_dsn(self._db.get_engine().url))
        try:
            if not await lock.fetchval(_LOCK):
                return None
            try:
                return await self._reconcile()
            finally:
                await lock.fetchval(_UNLOCK)
        finally:
            await lock.close()

    async def _reconcile(self) -> ReconcileReport:
        report = ReconcileReport()
        now = datetime.now(UTC)
        while True:
            async with self._db.get_session() as session, session.begin():
                stale = list(
                    await session.scalars(
                        _STALE_PENDING, {"cutoff": now - self._pending_timeout, "batch": BATCH}
                    )
                )
            for key in stale:
                await self._store.delete(key)
            report.stale_pending_removed += len(stale)
            if len(stale) < BATCH:
                break
        report.abandoned_uploads_aborted = await self._give_up_abandoned()
        async with self._db.get_session() as session:
            offboarded = list(await session.scalars(_OFFBOARDED, {"since": now - OFFBOARDED_RETRY}))
        for tenant_id in offboarded:
            report.offboarded_objects_removed += await self._store.delete_prefix(
                tenant_prefix(tenant_id)
            )
        batch: list[str] = []
        async for key in self._store.list_keys("tenants/"):
            if "/files/" in key:
                batch.append(key)
            if len(batch) >= BATCH:
                report.orphan_objects_removed += await self._remove_orphans(batch)
                batch = []
        if batch:
            report.orphan_objects_removed += await self._remove_orphans(batch)
        return report

    async def _give_up_abandoned(self) -> int:
        async with self._db.get_session() as session, session.begin():
            cutoff = datetime.now(UTC) - COMPLETING_GRACE
            found = (
                await session.execute(_ABANDONED, {"completing_cutoff": cutoff, "batch": BATCH})
            ).all()
            await session.execute(_FORGET_COMPLETED)
        given_up = 0
        for tenant_id, upload_id in found:
            async with self._db.get_session() as session, session.begin():
                await session.execute(_LOCK_COUNTERS, {"tenant_id": tenant_id})
                gone = (
                    await session.execute(_GIVE_UP, {"tenant_id": tenant_id, "id": upload_id})
                ).one_or_none()
                if gone is None:  # completed meanwhile
                    continue
                file_id, store_upload_id, reserved = gone
                key = await session.scalar(
                    _DELETE_FILE, {"tenant_id": tenant_id, "file_id": file_id}
                )
                await session.execute(_RELEASE, {"tenant_id": tenant_id, "bytes": reserved})
            if key is not None:  # after the commit: rows go before their objects
                if store_upload_id is not None:
                    await self._store.abort_multipart(key, store_upload_id)
                await self._store.delete(key)
            given_up += 1
        if given_up:
            logger.info("abandoned_uploads_aborted", count=given_up)
        return given_up

    async def _remove_orphans(self, keys: list[str]) -> int:
        owners = {key: staging_owner(key) for key in keys}
        async with self._db.get_session() as session, session.begin():
            known = set(await session.scalars(_KNOWN_KEYS, {"keys": keys}))
            uploading = set(
                await session.scalars(
                    _UPLOADING_KEYS, {"keys": [owner for owner in owners.values() if owner]}
                )
            )
        orphans = [
            key
            for key, owner in owners.items()
            if (owner not in uploading if owner is not None else key not in known)
        ]
        for key in orphans:
            await self._store.delete(key)
        if orphans:
            logger.info("orphan_objects_removed", count=len(orphans))
        return len(orphans)

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                report = await self.run_once()
                if report is None:
                    logger.info("reconcile_skipped", reason="another replica is reconciling")
                else:
                    logger.info("reconciled", **msgspec.structs.asdict(report))
            except Exception:  # a failed round is retried at the next interval
                logger.exception("reconcile_failed")
