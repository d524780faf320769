"""The one writer of the audit log: who did what to a tenant, in the action's transaction.

An `Actor` is whoever acted: a tenant user, an API key, the operator, or the system. Summaries
hold before/after values of what changed, never secrets (callers pass only safe fields; `scrub`
drops any key that looks like one, as a second line of defence).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import insert

from tenantry.db.enums import ActorType
from tenantry.db.models import AuditEntry
from tenantry.db.repository import TenantScopedRepository
from tenantry.db.usage import Clock, Session, utc_now
from tenantry.lib.logging import request_context
from tenantry.lib.schemas import Page

_SECRET_WORDS = ("password", "secret", "token", "hash", "key")
_INSERT = insert(AuditEntry)


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    id: uuid.UUID | None = None
    label: str | None = None


SYSTEM = Actor(ActorType.SYSTEM, label="system")


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where an audited action came from."""

    request_id: str | None = None
    client_address: str | None = None


def scrub(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: scrub(value) if isinstance(value, dict) else value
        for key, value in values.items()
        if not any(word in key.lower() for word in _SECRET_WORDS)
    }


def current_origin() -> RequestOrigin:
    """The request being served, as the request-context middleware bound it (its peer's
    address: behind a proxy, the proxy's)."""
    bound = request_context()
    request_id, client = bound.get("request_id"), bound.get("client_address")
    return RequestOrigin(str(request_id) if request_id else None, str(client) if client else None)


class AuditWriter:
    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    async def record(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        actor: Actor,
        action: str,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        origin: RequestOrigin | None = None,
    ) -> None:
        summary = {
            key: scrub(value)
            for key, value in (("before", before), ("after", after))
            if value is not None
        }
        origin = origin or current_origin()
        await session.execute(
            _INSERT,
            {
                "tenant_id": tenant_id,
                "occurred_at": self.clock(),
                "actor_type": actor.type,
                "actor_id": actor.id,
                "actor_label": actor.label,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "summary": summary,
                "request_id": origin.request_id,
                "client_address": origin.client_address,
            },
        )


class AuditEntryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    occurred_at: datetime
    actor_type: ActorType
    actor_id: uuid.UUID | None
    actor_label: str | None
    action: str
    target_type: str | None
    target_id: str | None
    summary: dict[str, Any]
    request_id: str | None
    client_address: str | None


class AuditRepository(TenantScopedRepository[AuditEntry]):
    """One tenant's audit log, newest first (its admins on the tenant engine, the operator on
    the platform engine: the filter is the repository's either way)."""

    model_type = AuditEntry

    async def page(
        self,
        *,
        action: str | None,
        actor_type: ActorType | None,
        limit: int,
        offset: int,
    ) -> Page[AuditEntryOut]:
        conditions = []
        if action:
            conditions.append(AuditEntry.action == action)
        if actor_type is not None:
            conditions.append(AuditEntry.actor_type == actor_type)
        entries, total = await self.get_many_and_count(
            *conditions, OrderBy("occurred_at", "desc"), LimitOffset(limit=limit, offset=offset)
        )
        items = [
            AuditEntryOut(
                **{name: getattr(entry, name) for name in AuditEntryOut.__struct_fields__}
            )
            for entry in entries
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)
