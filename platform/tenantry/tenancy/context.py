"""The request's tenant, in a ContextVar: read by the RLS session hook and by the logs."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

import msgspec


class TenantRecord(msgspec.Struct, frozen=True):
    """What a request needs to know about its tenant, cached per process."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    plan: str
    storage_quota_bytes: int
    max_file_bytes: int
    settings: dict[str, Any]
    branding: dict[str, Any]


current_tenant: ContextVar[TenantRecord | None] = ContextVar("current_tenant", default=None)


def current_tenant_id() -> uuid.UUID | None:
    tenant = current_tenant.get()
    return tenant.id if tenant else None
