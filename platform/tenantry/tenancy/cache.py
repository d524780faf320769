"""Host -> tenant lookups, cached in process and dropped at once when their tenant changes.

A trigger on `tenants` and `tenant_domains` sends `NOTIFY tenant_changed` naming the tenant and
the slugs or domains that changed; every replica listens (`tenantry.db.listener`) and drops those
entries (the tenant's by id, slug and domain, and the misses cached for a slug or domain that now
exists), so a suspension or a new domain takes effect everywhere within a notification's
latency while the other tenants' entries stay: with a hundred thousand tenants, provisioning one
must not make every replica look every tenant up again. The replica that commits a change drops
the same entries at its commit (`forget_changed`), ahead of the notification. Entries also expire
after a short TTL, and while the listener is down nothing is cached at all (correctness over
speed). The cache is bounded (least recently used entries go first), misses included: a flood
of unknown hosts costs at most `max_entries` entries, and a repeated unknown host no query. An
entry's size is bounded too: a tenant row's settings and branding are validated documents.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, cast

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
)
from sqlalchemy.orm import Session

from tenantry.db.models import Tenant, TenantDomain
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.metrics import tenant_cache_hits, tenant_cache_misses

CHANNEL = "tenant_changed"
_COLUMNS = (
    "t.id, t.slug, t.name, t.status, t.plan, t.storage_quota_bytes, t.max_file_bytes, "
    "t.settings, t.branding, t.limits, ARRAY(SELECT v.domain FROM tenant_domains v "
    "WHERE v.tenant_id = t.id AND v.verified ORDER BY v.domain) AS domains"
)
_BY_ID = text(f"SELECT {_COLUMNS} FROM tenants t WHERE t.id = :key AND t.status <> 'deleted'")  # noqa: S608
_BY_SLUG = text(f"SELECT {_COLUMNS} FROM tenants t WHERE t.slug = :key AND t.status <> 'deleted'")  # noqa: S608
_BY_DOMAIN = text(
    f"SELECT {_COLUMNS} FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id "  # noqa: S608
    "WHERE d.domain = :key AND d.verified AND t.status <> 'deleted'"
)
logger = structlog.get_logger("tenantry.tenancy")
Key = tuple[str, str]  # ("id" | "slug" | "domain", value)
_CHANGED = "tenant_cache_keys"


def track_tenant_changes(config: SQLAlchemyAsyncConfig) -> None:
    """Sessions of `config` note the tenants and domains they flush, for `forget_changed`."""
    maker = cast("async_sessionmaker[AsyncSession]", config.create_session_maker())
    event.listen(maker.kw["sync_session_class"], "after_flush", _note_flushed)


def _note_flushed(session: Session, _context: object) -> None:
    keys: set[Key] = session.info.setdefault(_CHANGED, set())
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Tenant):
            keys.update({("id", str(row.id)), ("slug", row.slug)})
        elif isinstance(row, TenantDomain):
            keys.update({("id", str(row.tenant_id)), ("domain", row.domain)})


def note_tenant_changed(
    session: AsyncSession | async_scoped_session[AsyncSession], tenant_id: uuid.UUID
) -> None:
    """For a change the flush does not see (an UPDATE or DELETE statement rather than an ORM
    row): every cached way to reach the tenant is dropped at the session's commit."""
    keys: set[Key] = session.info.setdefault(_CHANGED, set())
    keys.add(("id", str(tenant_id)))


class TenantCache:
    """A subscriber of the change listener (`tenantry.db.listener`)."""

    channel = CHANNEL

    def __init__(
        self, engine: AsyncEngine, *, ttl_seconds: float, max_entries: int = 10_000
    ) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[Key, tuple[float, TenantRecord | None]] = OrderedDict()
        # Each cached tenant's keys, so that its change drops every way to reach it.
        self._keys_of: dict[uuid.UUID, set[Key]] = {}
        # Bumped on every invalidation, so a lookup that raced a change never stores stale data.
        self._generation = 0
        self.is_listening = False

    def invalidate(self, *_: Any) -> None:
        self._generation += 1
        self._entries.clear()
        self._keys_of.clear()

    def notified(self, payload: str) -> None:
        try:
            change = json.loads(payload)
            keys = [("id", str(change["tenant_id"]))]
            keys += [("slug", slug) for slug in change.get("slugs", ())]
            keys += [("domain", domain) for domain in change.get("domains", ())]
        except (ValueError, TypeError, KeyError):  # a payload of before 0008: the tenant id only
            self.invalidate()
            return
        self.forget(keys)

    def forget_changed(self, session: AsyncSession) -> None:
        """After a commit: the tenants and domains the session changed, dropped at once."""
        keys = session.info.pop(_CHANGED, ())
        if keys:
            self.forget(keys)

    def forget(self, keys: Iterable[Key]) -> None:
        self._generation += 1
        for kind, value in keys:
            if kind == "id":
                for key in self._keys_of.pop(uuid.UUID(value), ()):
                    self._entries.pop(key, None)
            self._entries.pop((kind, value), None)

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
            self._store((kind, key), now + self._ttl, record)
        return record

    def _store(self, key: Key, expires: float, record: TenantRecord | None) -> None:
        self._entries[key] = (expires, record)
        self._entries.move_to_end(key)
        if record is not None:
            self._keys_of.setdefault(record.id, set()).add(key)
        if len(self._entries) > self._max_entries:
            evicted, (_, gone) = self._entries.popitem(last=False)
            if gone is not None:
                keys = self._keys_of.get(gone.id)
                if keys is not None:
                    keys.discard(evicted)
                    if not keys:
                        del self._keys_of[gone.id]

    def __len__(self) -> int:
        return len(self._entries)
