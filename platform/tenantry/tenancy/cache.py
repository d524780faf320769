"""Host -> tenant lookups, cached in process and dropped at once when any tenant changes.

A trigger on `tenants` and `tenant_domains` sends `NOTIFY tenant_changed`; every replica listens
(`tenantry.db.listener`) and clears its cache on each notification, so a suspension or a new domain
takes effect everywhere within a notification's latency. Entries also expire after a short TTL,
and while the listener is down nothing is cached at all (correctness over speed). The cache is
bounded (least recently used entries go first), misses included: a flood of unknown hosts costs
at most `max_entries` entries, and a repeated unknown host no query.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.metrics import tenant_cache_hits, tenant_cache_misses

CHANNEL = "tenant_changed"
_COLUMNS = (
    "t.id, t.slug, t.name, t.status, t.plan, t.storage_quota_bytes, t.max_file_bytes, "
    "t.settings, t.branding, ARRAY(SELECT v.domain FROM tenant_domains v "
    "WHERE v.tenant_id = t.id AND v.verified ORDER BY v.domain) AS domains"
)
_BY_ID = text(f"SELECT {_COLUMNS} FROM tenants t WHERE t.id = :key AND t.status <> 'deleted'")  # noqa: S608
_BY_SLUG = text(f"SELECT {_COLUMNS} FROM tenants t WHERE t.slug = :key AND t.status <> 'deleted'")  # noqa: S608
_BY_DOMAIN = text(
    f"SELECT {_COLUMNS} FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id "  # noqa: S608
    "WHERE d.domain = :key AND d.verified AND t.status <> 'deleted'"
)
logger = structlog.get_logger("tenantry.tenancy")


class TenantCache:
    """A subscriber of the change listener (`tenantry.db.listener`)."""

    channel = CHANNEL

    def __init__(
        self, engine: AsyncEngine, *, ttl_seconds: float, max_entries: int = 10_000
    ) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, TenantRecord | None]] = (
            OrderedDict()
        )
        # Bumped on every invalidation, so a lookup that raced a change never stores stale data.
        self._generation = 0
        self.is_listening = False

    def invalidate(self, *_: Any) -> None:
        self._generation += 1
        self._entries.clear()

    def notified(self, payload: str) -> None:
        self.invalidate()

    def listening(self, on: bool) -> None:
        self.invalidate()
        self.is_listening = on

    async def by_id(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        return await self._lookup("id", str(tenant_id), _BY_ID)

    async def by_slug(self, slug: str) -> TenantRecord | None:
        return await self._lookup("slug", slug, _BY_SLUG)

    async def by_domain(self, domain: str) -> TenantRecord | None:
        return await self._lookup("domain", domain, _BY_DOMAIN)

    async def _lookup(self, kind: str, key: str, query: Any) -> TenantRecord | None:
        now = time.monotonic()
        cached = self._entries.get((kind, key))
        if cached is not None and cached[0] > now:
            self._entries.move_to_end((kind, key))
            tenant_cache_hits.inc()
            return cached[1]
        tenant_cache_misses.inc()
        generation = self._generation
        async with self._engine.connect() as connection:
            row = (await connection.execute(query, {"key": key})).first()
        record = TenantRecord(**{**row._mapping, "domains": tuple(row.domains)}) if row else None
        if self.is_listening and generation == self._generation:
            self._entries[(kind, key)] = (now + self._ttl, record)
            self._entries.move_to_end((kind, key))
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return record

    def __len__(self) -> int:
        return len(self._entries)
