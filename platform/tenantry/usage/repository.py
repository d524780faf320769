"""Queries over the usage rollups (never the raw events).

`TenantUsageRepository` reads one tenant's rollups; it runs on the tenant engine for a tenant's
own admins (RLS scopes it too) and on the platform engine for the operator's per-tenant report:
every statement names the tenant explicitly either way. `PlatformUsageRepository` reads across
tenants and exists only on the platform engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

# Statements are assembled from these constants only (never from input): hence the S608 waivers.
COUNTS = "uploads, downloads, deletes, logins, signups, bytes_in, bytes_out, bytes_served"
_SUMS = ", ".join(f"COALESCE(sum({c}), 0)::bigint AS {c}" for c in COUNTS.split(", "))

_SERIES = text(
    f"SELECT date_trunc(:unit, day)::date AS period, {_SUMS} FROM usage_daily "  # noqa: S608 - module constants only
    "WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last AND dimension = 'total' "
    "GROUP BY 1 ORDER BY 1"
)
# Distinct users per period and over the whole range, in one pass (the empty grouping set is
# the range: its period is NULL).
_ACTIVE = text(
    "SELECT date_trunc(:unit, day)::date AS period, count(DISTINCT user_id) AS users "
    "FROM usage_daily_users WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last "
    "GROUP BY GROUPING SETS ((1), ())"
)
# The last snapshot before the range (where the range starts from) and those inside it.
_STORAGE = text(
    "(SELECT day, storage_bytes, file_count FROM usage_storage_daily "
    " WHERE tenant_id = :tenant_id AND day < :first ORDER BY day DESC LIMIT 1) "
    "UNION ALL (SELECT day, storage_bytes, file_count FROM usage_storage_daily "
    " WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last ORDER BY day)"
)
_GROUPS = text(
    f"SELECT dimension, key, {_SUMS} FROM usage_daily "  # noqa: S608 - module constants only
    "WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last "
    "AND dimension = ANY(:dimensions) GROUP BY dimension, key"
)
_GROUP_SERIES = text(
    f"SELECT date_trunc(:unit, day)::date AS period, key, {_SUMS} FROM usage_daily "  # noqa: S608 - module constants only
    "WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last AND dimension = :dimension "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)
_TOP_FILES = text(
    "SELECT top.file_id, f.title, top.downloads, top.bytes_out FROM ("
    "  SELECT key::uuid AS file_id, sum(downloads)::bigint AS downloads,"
    "    sum(bytes_out)::bigint AS bytes_out FROM usage_daily"
    "  WHERE tenant_id = :tenant_id AND day BETWEEN :first AND :last AND dimension = 'file'"
    "  GROUP BY key HAVING sum(downloads) > 0 ORDER BY 2 DESC, 1 LIMIT :limit"
    ") top LEFT JOIN files f ON f.tenant_id = :tenant_id AND f.id = top.file_id "
    "ORDER BY top.downloads DESC, top.file_id"
)
_NAMES = text(
    "SELECT 'category' AS dimension, id::text AS key, name FROM categories "
    "WHERE tenant_id = :tenant_id "
    "UNION ALL SELECT 'audience', id::text, name FROM audiences WHERE tenant_id = :tenant_id"
)
_AS_OF = text("SELECT rolled_up_at FROM usage_rollup_state WHERE id = 1")


class TenantUsageRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def _rows(self, statement: Any, **values: object) -> Sequence[Row[Any]]:
        result = await self.session.execute(statement, {"tenant_id": self.tenant_id, **values})
        return result.all()

    async def series(self, unit: str, first: date, last: date) -> Sequence[Row[Any]]:
        return await self._rows(_SERIES, unit=unit, first=first, last=last)

    async def active_users(self, unit: str, first: date, last: date) -> tuple[dict[date, int], int]:
        """Distinct active users per period, and over the whole range."""
        rows = await self._rows(_ACTIVE, unit=unit, first=first, last=last)
        per_period = {row.period: int(row.users) for row in rows if row.period is not None}
        overall = next((int(row.users) for row in rows if row.period is None), 0)
        return per_period, overall

    async def storage(self, first: date, last: date) -> Sequence[Row[Any]]:
        return await self._rows(_STORAGE, first=first, last=last)

    async def groups(
        self, dimensions: Sequence[str], first: date, last: date
    ) -> Sequence[Row[Any]]:
        return await self._rows(_GROUPS, dimensions=list(dimensions), first=first, last=last)

    async def group_series(
        self, dimension: str, unit: str, first: date, last: date
    ) -> Sequence[Row[Any]]:
        return await self._rows(
            _GROUP_SERIES, dimension=dimension, unit=unit, first=first, last=last
        )

    async def top_files(self, first: date, last: date, limit: int) -> Sequence[Row[Any]]:
        return await self._rows(_TOP_FILES, first=first, last=last, limit=limit)

    async def names(self) -> dict[tuple[str, str], str]:
        return {(row.dimension, row.key): row.name for row in await self._rows(_NAMES)}

    async def as_of(self) -> datetime:
        value: datetime = (await self.session.execute(_AS_OF)).scalar_one()
        return value


# Every live tenant, with its numbers over the range; one index range scan per tenant (indexes
# lead with tenant_id: the same shape serves a Citus cluster, where a tenant is a shard key).
_PLATFORM_ROWS = f"""
WITH per_tenant AS (
    SELECT t.id AS tenant_id, t.slug, t.name, t.status, t.storage_quota_bytes,
        COALESCE(s.storage_bytes, 0) AS storage_bytes, COALESCE(s.file_count, 0) AS file_count,
        a.uploads, a.downloads, a.deletes, a.bytes_in, a.bytes_out,
        COALESCE(u.users, 0) AS active_users
    FROM tenants t
    LEFT JOIN LATERAL (
        SELECT storage_bytes, file_count FROM usage_storage_daily
        WHERE tenant_id = t.id AND day <= :last ORDER BY day DESC LIMIT 1) s ON true
    CROSS JOIN LATERAL (
        SELECT {_SUMS} FROM usage_daily
        WHERE tenant_id = t.id AND day BETWEEN :first AND :last AND dimension = 'total') a
    LEFT JOIN LATERAL (
        SELECT count(DISTINCT user_id) AS users FROM usage_daily_users
        WHERE tenant_id = t.id AND day BETWEEN :first AND :last) u ON true
    WHERE t.status <> 'deleted'
)
SELECT *,
    round(100.0 * storage_bytes / GREATEST(storage_quota_bytes, 1), 2)::float AS quota_used_pct
FROM per_tenant
"""  # noqa: S608 - module constants only
_SORTS = {
    "slug": "slug",
    "-storage_bytes": "storage_bytes DESC",
    "-quota_used_pct": "quota_used_pct DESC",
    "-file_count": "file_count DESC",
    "-uploads": "uploads DESC",
    "-downloads": "downloads DESC",
    "-bytes_in": "bytes_in DESC",
    "-bytes_out": "bytes_out DESC",
    "-active_users": "active_users DESC",
}
# The platform totals: sums of every listed tenant's numbers (the tenant count besides).
_TOTALLED = (
    *("storage_bytes", "file_count", "uploads", "downloads", "deletes", "bytes_in", "bytes_out"),
    "active_users",
)
# A page carries the totals over all its rows' tenants as window sums, computed from the same
# per-tenant rows in the same statement: a separate totals statement read every tenant's
# rollups a second time (half of the report's time with a thousand tenants).
_TOTALS_OVER_ROWS = ", ".join(
    f"COALESCE(sum({column}) OVER (), 0)::bigint AS total_{column}" for column in _TOTALLED
)
_PLATFORM_PAGE = {
    sort: text(
        f"WITH rows AS ({_PLATFORM_ROWS}) SELECT *, count(*) OVER () AS total_tenants, "  # noqa: S608 - module constants only
        f"{_TOTALS_OVER_ROWS} FROM rows ORDER BY {order}, slug LIMIT :limit OFFSET :offset"
    )
    for sort, order in _SORTS.items()
}
# For a page past the last tenant, which has no row to carry them.
_PLATFORM_TOTALS = text(
    f"WITH rows AS ({_PLATFORM_ROWS}) SELECT count(*) AS tenants, "  # noqa: S608 - module constants only
    + ", ".join(f"COALESCE(sum({column}), 0)::bigint AS {column}" for column in _TOTALLED)
    + " FROM rows"
)
_PLATFORM_SERIES = text(
    "SELECT date_trunc(:unit, d.day)::date AS period, sum(d.uploads)::bigint AS uploads, "
    "sum(d.downloads)::bigint AS downloads, sum(d.bytes_in)::bigint AS bytes_in, "
    "sum(d.bytes_out)::bigint AS bytes_out, count(DISTINCT d.tenant_id) AS active_tenants "
    "FROM tenants t CROSS JOIN LATERAL ("
    "  SELECT tenant_id, day, uploads, downloads, bytes_in, bytes_out FROM usage_daily"
    "  WHERE tenant_id = t.id AND day BETWEEN :first AND :last AND dimension = 'total') d "
    "WHERE t.status <> 'deleted' GROUP BY 1 ORDER BY 1"
)
_PLATFORM_STORAGE = text(
    "SELECT s.* FROM tenants t CROSS JOIN LATERAL ("
    "  (SELECT tenant_id, day, storage_bytes, file_count FROM usage_storage_daily"
    "   WHERE tenant_id = t.id AND day < :first ORDER BY day DESC LIMIT 1)"
    "  UNION ALL (SELECT tenant_id, day, storage_bytes, file_count FROM usage_storage_daily"
    "   WHERE tenant_id = t.id AND day BETWEEN :first AND :last)) s "
    "WHERE t.status <> 'deleted' ORDER BY s.day"
)


_TENANT = text(
    "SELECT id, slug, name, settings, branding FROM tenants WHERE id = :id AND status <> 'deleted'"
)


class PlatformUsageRepository:
    """Cross-tenant reads: the platform engine only (the app role sees one tenant at a time)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tenant(self, tenant_id: uuid.UUID) -> Row[Any] | None:
        return (await self.session.execute(_TENANT, {"id": tenant_id})).first()

    async def tenant_rows(
        self, first: date, last: date, *, sort: str, limit: int, offset: int
    ) -> tuple[Sequence[Row[Any]], dict[str, int]]:
        """A page of tenants' rows, and the totals over every tenant (`tenants` and the sums
        of `_TOTALLED`)."""
        values = {"first": first, "last": last, "limit": limit, "offset": offset}
        rows = (await self.session.execute(_PLATFORM_PAGE[sort], values)).all()
        if not rows:
            totals = await self.session.execute(_PLATFORM_TOTALS, {"first": first, "last": last})
            return rows, {name: int(value) for name, value in totals.one()._mapping.items()}
        carried = rows[0]._mapping
        return rows, {
            "tenants": int(carried["total_tenants"]),
            **{column: int(carried[f"total_{column}"]) for column in _TOTALLED},
        }

    async def series(self, unit: str, first: date, last: date) -> Sequence[Row[Any]]:
        values = {"unit": unit, "first": first, "last": last}
        return (await self.session.execute(_PLATFORM_SERIES, values)).all()

    async def storage(self, first: date, last: date) -> Sequence[Row[Any]]:
        values = {"first": first, "last": last}
        return (await self.session.execute(_PLATFORM_STORAGE, values)).all()

    async def as_of(self) -> datetime:
        value: datetime = (await self.session.execute(_AS_OF)).scalar_one()
        return value
