"""The billing export: raw usage events as CloudEvents 1.0, cursor-paged and resumable.

The cursor is an event's place in `(txid, seq)` order (see migration 0006). A page holds only
events below the oldest transaction still running, so an event that commits late can never land
behind a cursor a reader already holds: reading on from the last cursor seen, after any pause
or crash, yields every event exactly once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.lib.errors import DomainError, ErrorCode

SOURCE_PREFIX = "/tenants/"
EVENT_TYPE_PREFIX = "io.tenantry.usage."
_CURSOR = re.compile(r"^([0-9]{1,20})-([0-9]{1,19})$")
_MAX = 2**63 - 1

# The cursor's txid is bound as text and cast in SQL: asyncpg binds a parameter inferred as
# xid8 from a Python int only.
_PAGE = text(
    """
    SELECT e.id, e.tenant_id, t.slug, e.occurred_at, e.kind, e.user_id, e.user_role, e.file_id,
        e.bytes, e.category_id, e.language, e.audience_ids, e.content_type,
        e.txid::text AS txid, e.seq
    FROM usage_events e JOIN tenants t ON t.id = e.tenant_id
    WHERE (e.txid, e.seq) > (CAST(CAST(:txid AS text) AS xid8), :seq)
      AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.txid, e.seq
    LIMIT :limit
    """
)


class UsageData(msgspec.Struct, kw_only=True):
    tenant_id: uuid.UUID
    tenant_slug: str
    kind: str
    user_id: uuid.UUID | None
    user_role: str | None
    file_id: uuid.UUID | None
    bytes: int
    category_id: uuid.UUID | None
    language: str | None
    audience_ids: list[uuid.UUID]
    content_type: str | None


class CloudEvent(msgspec.Struct, kw_only=True):
    """A CloudEvents 1.0 event in its JSON format; `cursor` is our extension attribute."""

    specversion: str = "1.0"
    id: uuid.UUID
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: str = "application/json"
    cursor: str
    data: UsageData


def parse_cursor(cursor: str | None) -> tuple[str, int]:
    if cursor is None or cursor == "":
        return "0", 0
    match = _CURSOR.fullmatch(cursor)
    if match is None or int(match.group(1)) > _MAX or int(match.group(2)) > _MAX:
        raise DomainError(
            ErrorCode.INVALID_FIELD,
            "after: a cursor from an earlier page (`cursor` of an event, or `next_cursor`)",
            field="after",
        )
    return match.group(1), int(match.group(2))


def _event(row: Row[Any]) -> CloudEvent:
    return CloudEvent(
        id=row.id,
        source=f"{SOURCE_PREFIX}{row.tenant_id}",
        type=EVENT_TYPE_PREFIX + row.kind,
        time=row.occurred_at,
        subject=f"files/{row.file_id}" if row.file_id else None,
        cursor=f"{row.txid}-{row.seq}",
        data=UsageData(
            tenant_id=row.tenant_id,
            tenant_slug=row.slug,
            kind=row.kind,
            user_id=row.user_id,
            user_role=row.user_role,
            file_id=row.file_id,
            bytes=row.bytes,
            category_id=row.category_id,
            language=row.language,
            audience_ids=list(row.audience_ids),
            content_type=row.content_type,
        ),
    )


class EventExport:
    """Runs on the platform engine only: the export is every tenant's events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, after: str | None, limit: int) -> tuple[list[CloudEvent], str]:
        """Events after the cursor, and the cursor to go on from (the same one when no event
        is final yet: call again later)."""
        txid, seq = parse_cursor(after)
        rows: Sequence[Row[Any]] = (
            await self.session.execute(_PAGE, {"txid": txid, "seq": seq, "limit": limit})
        ).all()
        events = [_event(row) for row in rows]
        return events, events[-1].cursor if events else (after or "0-0")
