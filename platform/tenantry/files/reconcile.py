"""The storage reconciler: brings the store back in line with the database.

Rows are written before their objects and deleted before them, so an object without a row is
always garbage, and a row stuck in `pending` past the timeout is an upload that died. Runs
periodically in every replica (all steps are idempotent) and as `tenantry storage reconcile`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import text

from tenantry.storage import ObjectStore, tenant_prefix

BATCH = 500
logger = structlog.get_logger("tenantry.reconcile")

_STALE_PENDING = text(
    "DELETE FROM files WHERE status IN ('pending', 'uploading') AND updated_at < :cutoff "
    "RETURNING storage_key"
)
_KNOWN_KEYS = text("SELECT storage_key FROM files WHERE storage_key = ANY(:keys)")
_OFFBOARDED = text("SELECT id FROM tenants WHERE status = 'deleted'")


class ReconcileReport(msgspec.Struct):
    stale_pending_removed: int = 0
    orphan_objects_removed: int = 0
    offboarded_objects_removed: int = 0


class Reconciler:
    def __init__(
        self, platform_db: SQLAlchemyAsyncConfig, store: ObjectStore, *, pending_timeout: timedelta
    ) -> None:
        self._db = platform_db
        self._store = store
        self._pending_timeout = pending_timeout

    async def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        async with self._db.get_session() as session, session.begin():
            cutoff = datetime.now(UTC) - self._pending_timeout
            stale = list(await session.scalars(_STALE_PENDING, {"cutoff": cutoff}))
            offboarded = list(await session.scalars(_OFFBOARDED))
        for key in stale:
            await self._store.delete(key)
        report.stale_pending_removed = len(stale)
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

    async def _remove_orphans(self, keys: list[str]) -> int:
        async with self._db.get_session() as session, session.begin():
            known = set(await session.scalars(_KNOWN_KEYS, {"keys": keys}))
        orphans = [key for key in keys if key not in known]
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
                logger.info("reconciled", **msgspec.structs.asdict(report))
            except Exception:  # a failed round is retried at the next interval
                logger.exception("reconcile_failed")
