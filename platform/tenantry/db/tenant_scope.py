"""The tenant a unit of work acts for, and the one way a transaction takes it on.

The request's tenant lives in a ContextVar (set by TenancyMiddleware, or by a command acting for
one tenant). Every transaction on the tenant engine and every one on the raw read pool starts
with `tenant_setting_sql`: the transaction-local `app.tenant_id` that the RLS policies read. No
tenant in context: the setting is empty and RLS shows nothing.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

import msgspec


class TenantRecord(msgspec.Struct, frozen=True):
    """What a request needs to know about its tenant: a snapshot of its `tenants` row."""

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


def tenant_setting_sql(tenant_id: uuid.UUID | None) -> str:
    """The statement that scopes the current transaction to `tenant_id` (or to none).

    The id is inlined, so the statement can share a simple-protocol round trip with BEGIN; it is
    a `uuid.UUID` (checked here), never client text.
    """
    if tenant_id is not None and not isinstance(tenant_id, uuid.UUID):
        raise TypeError(f"tenant_id must be a UUID, not {type(tenant_id).__name__}")
    return f"SELECT set_config('app.tenant_id', '{tenant_id or ''}', true)"
