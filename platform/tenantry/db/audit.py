"""The one writer of the audit log: who did what to a tenant, in the action's transaction.

An `Actor` is whoever acted: a tenant user, an API key, the operator, or the system. Summaries
hold before/after values of what changed, never secrets (callers pass only safe fields; `scrub`
drops any key that looks like one, as a second line of defence).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import insert

from tenantry.db.enums import ActorType
from tenantry.db.models import AuditEntry
from tenantry.db.usage import Clock, Session, utc_now

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


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


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
        origin = origin or RequestOrigin(request_id=current_request_id())
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
