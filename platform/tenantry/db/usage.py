"""The one writer of usage events.

Every metered action (upload, download link, served bytes, delete, login, signup) calls
`UsageRecorder.record` inside the action's own transaction, so an event exists exactly when its
action committed. The recorder carries the clock: events take their time from it, which lets
tests script days of usage without sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from tenantry.db.enums import Role, UsageKind
from tenantry.db.models import UsageEvent

Clock = Callable[[], datetime]
Session = AsyncSession | async_scoped_session[AsyncSession]


def utc_now() -> datetime:
    return datetime.now(UTC)


_INSERT = insert(UsageEvent)

# A served range of a file, with the file's facets read in the same statement (the local
# store's handler knows only the object key). RLS scopes both tables to the request's tenant.
_INSERT_SERVED = text(
    """
    INSERT INTO usage_events (tenant_id, occurred_at, kind, file_id, bytes, category_id,
        language, audience_ids, content_type)
    SELECT f.tenant_id, :occurred_at, 'serve', f.id, :bytes, f.category_id, f.language,
        ARRAY(SELECT fa.audience_id FROM file_audiences fa
              WHERE fa.tenant_id = f.tenant_id AND fa.file_id = f.id ORDER BY fa.audience_id),
        f.content_type
    FROM files f WHERE f.tenant_id = :tenant_id AND f.id = :file_id
    """
)


class UsageRecorder:
    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    async def record(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        kind: UsageKind,
        *,
        user_id: uuid.UUID | None = None,
        role: Role | str | None = None,
        file_id: uuid.UUID | None = None,
        bytes: int = 0,
        category_id: uuid.UUID | None = None,
        language: str | None = None,
        audience_ids: Sequence[uuid.UUID] = (),
        content_type: str | None = None,
    ) -> None:
        await session.execute(
            _INSERT,
            {
                "tenant_id": tenant_id,
                "occurred_at": self.clock(),
                "kind": kind,
                "user_id": user_id,
                "user_role": role,
                "file_id": file_id,
                "bytes": bytes,
                "category_id": category_id,
                "language": language,
                "audience_ids": list(audience_ids),
                "content_type": content_type,
            },
        )

    async def record_served(
        self, session: Session, tenant_id: uuid.UUID, file_id: uuid.UUID, nbytes: int
    ) -> None:
        """Bytes the local store sent for a signed link (none for a file gone meanwhile)."""
        await session.execute(
            _INSERT_SERVED,
            {
                "tenant_id": tenant_id,
                "file_id": file_id,
                "bytes": nbytes,
                "occurred_at": self.clock(),
            },
        )
