"""The one writer of usage events.

Every metered action (upload, download link, served bytes, delete, login, signup) calls
`UsageRecorder.record` inside the action's own transaction, so an event exists exactly when its
action committed. The recorder carries the clock: events take their time from it, which lets
tests script days of usage without sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
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

# Bytes the local store sent per file, with each file's facets read in the same statement (the
# store's handler knows only object keys). A file deleted since still counts, without facets.
_INSERT_SERVED = text(
    """
    INSERT INTO usage_events (tenant_id, occurred_at, kind, file_id, bytes, category_id,
        language, audience_ids, content_type)
    SELECT served.tenant_id, served.occurred_at, 'serve', served.file_id, served.bytes,
        f.category_id, f.language,
        ARRAY(SELECT fa.audience_id FROM file_audiences fa
              WHERE fa.tenant_id = served.tenant_id AND fa.file_id = served.file_id
              ORDER BY fa.audience_id),
        f.content_type
    FROM unnest(CAST(:tenant_ids AS uuid[]), CAST(:file_ids AS uuid[]),
        CAST(:bytes AS bigint[]), CAST(:occurred_at AS timestamptz[]))
        AS served (tenant_id, file_id, bytes, occurred_at)
    LEFT JOIN files f ON f.tenant_id = served.tenant_id AND f.id = served.file_id
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
        self, session: Session, served: Mapping[tuple[uuid.UUID, uuid.UUID], tuple[int, datetime]]
    ) -> None:
        """Bytes the local store sent per (tenant, file) since a time: a `serve` event each."""
        keys = list(served)
        await session.execute(
            _INSERT_SERVED,
            {
                "tenant_ids": [tenant_id for tenant_id, _ in keys],
                "file_ids": [file_id for _, file_id in keys],
                "bytes": [served[key][0] for key in keys],
                "occurred_at": [served[key][1] for key in keys],
            },
        )
