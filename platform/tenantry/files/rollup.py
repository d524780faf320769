"""The file stats rollup: per tenant, counts and bytes of ready files by dimension and key.

Every change to a ready file applies its facets with +1 or -1 in the same transaction, so the
rollup is exactly what a scan of the files would say (a test checks that against the scan).
Rows are locked in one global order (sorted keys), so concurrent writers never deadlock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from tenantry.db.enums import StatsDimension

# Repositories hand out either kind; both execute statements the same way.
Session = AsyncSession | async_scoped_session[AsyncSession]

NONE = ""  # the key of files without a category, language or content type

_APPLY = text(
    "INSERT INTO file_stats (tenant_id, dimension, key, files, bytes) "
    "SELECT :tenant_id, dimension, key, files, bytes FROM unnest("
    "CAST(:dimensions AS text[]), CAST(:keys AS text[]), CAST(:files AS bigint[]), "
    "CAST(:bytes AS bigint[])) AS t(dimension, key, files, bytes) "
    "ON CONFLICT (tenant_id, dimension, key) DO UPDATE SET "
    "files = file_stats.files + EXCLUDED.files, bytes = file_stats.bytes + EXCLUDED.bytes"
)


def _recount_by_column(dimension: StatsDimension, key_sql: str) -> TextClause:
    # Only module constants are formatted in; the tenant is a bound parameter.
    return text(
        "INSERT INTO file_stats (tenant_id, dimension, key, files, bytes) "  # noqa: S608
        f"SELECT :tenant_id, '{dimension}', {key_sql}, count(*), sum(size) FROM files "
        "WHERE tenant_id = :tenant_id AND status = 'ready' GROUP BY 3"
    )


_RECOUNT = {
    StatsDimension.TOTAL: _recount_by_column(StatsDimension.TOTAL, "''"),
    StatsDimension.CATEGORY: _recount_by_column(
        StatsDimension.CATEGORY, "COALESCE(category_id::text, '')"
    ),
    StatsDimension.LANGUAGE: _recount_by_column(StatsDimension.LANGUAGE, "COALESCE(language, '')"),
    StatsDimension.CONTENT_TYPE: _recount_by_column(
        StatsDimension.CONTENT_TYPE, "COALESCE(content_type, '')"
    ),
    StatsDimension.AUDIENCE: text(
        "INSERT INTO file_stats (tenant_id, dimension, key, files, bytes) "
        "SELECT :tenant_id, 'audience', fa.audience_id::text, count(*), sum(f.size) "
        "FROM files f JOIN file_audiences fa ON fa.tenant_id = f.tenant_id AND fa.file_id = f.id "
        "WHERE f.tenant_id = :tenant_id AND f.status = 'ready' GROUP BY fa.audience_id"
    ),
}
_CLEAR = text("DELETE FROM file_stats WHERE tenant_id = :tenant_id AND dimension = :dimension")


@dataclass(frozen=True)
class Facets:
    """What the rollup counts a ready file under."""

    size: int
    category_id: uuid.UUID | None
    language: str | None
    content_type: str | None
    audience_ids: list[uuid.UUID] = field(default_factory=list)

    def counted_under(self) -> list[tuple[str, str]]:
        pairs = [
            (StatsDimension.TOTAL, NONE),
            (StatsDimension.CATEGORY, str(self.category_id) if self.category_id else NONE),
            (StatsDimension.LANGUAGE, self.language or NONE),
            (StatsDimension.CONTENT_TYPE, self.content_type or NONE),
            *((StatsDimension.AUDIENCE, str(audience)) for audience in self.audience_ids),
        ]
        return sorted(pairs)


async def apply(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    removed: Facets | None = None,
    added: Facets | None = None,
) -> None:
    """Count a file out (`removed`) and/or in (`added`), in one statement, rows in key order."""
    deltas: dict[tuple[str, str], tuple[int, int]] = {}
    for facets, sign in ((removed, -1), (added, 1)):
        if facets is None:
            continue
        for key in facets.counted_under():
            files, size = deltas.get(key, (0, 0))
            deltas[key] = (files + sign, size + sign * facets.size)
    changed = sorted((key, delta) for key, delta in deltas.items() if delta != (0, 0))
    if not changed:
        return
    await session.execute(
        _APPLY,
        {
            "tenant_id": tenant_id,
            "dimensions": [dimension for (dimension, _), _ in changed],
            "keys": [key for (_, key), _ in changed],
            "files": [files for _, (files, _) in changed],
            "bytes": [size for _, (_, size) in changed],
        },
    )


async def recount(session: Session, tenant_id: uuid.UUID, dimension: StatsDimension) -> None:
    """Rebuild one dimension from the files: after a category or audience is deleted, when the
    database itself changed files (ON DELETE SET NULL / CASCADE)."""
    await session.execute(_CLEAR, {"tenant_id": tenant_id, "dimension": dimension})
    await session.execute(_RECOUNT[dimension], {"tenant_id": tenant_id})


async def rebuild(session: Session, tenant_id: uuid.UUID) -> None:
    """Every dimension from the files: for rows written behind the rollup's back (bulk loads)."""
    for dimension in _RECOUNT:
        await recount(session, tenant_id, dimension)
