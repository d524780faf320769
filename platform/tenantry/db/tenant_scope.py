"""The tenant a unit of work acts for, and the one way a transaction takes it on.

The request's tenant lives in a ContextVar (set by AccessMiddleware, or by a command acting for
one tenant). Every transaction on the tenant engine (`SET_TENANT`) and every one on the raw read
pool (`tenant_setting_sql`) starts by setting the transaction-local `app.tenant_id` that the RLS
policies read, to `tenant_setting(...)`. No tenant in context: the setting is empty and RLS
shows nothing.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

import msgspec
from sqlalchemy import text

from tenantry.lib.errors import DomainError, ErrorCode


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
    # The operator's overrides of its plan's limits (tenancy.limits).
    limits: dict[str, Any] = msgspec.field(default_factory=dict)
    # Its verified custom domains (its CORS origins, with the ones its admins add).
    domains: tuple[str, ...] = ()


current_tenant: ContextVar[TenantRecord | None] = ContextVar("current_tenant", default=None)


def request_tenant() -> TenantRecord:
    """The request's tenant, as AccessMiddleware resolved it, for tenant routes."""
    tenant = current_tenant.get()
    if tenant is None:  # unreachable behind AccessMiddleware; fail closed all the same
        raise DomainError(ErrorCode.UNKNOWN_TENANT, "no tenant")
    return tenant


def current_tenant_id() -> uuid.UUID | None:
    tenant = current_tenant.get()
    return tenant.id if tenant else None


def tenant_setting(tenant_id: uuid.UUID | None) -> str:
    """The value of `app.tenant_id` for a transaction: the tenant's id, or '' for none."""
    if tenant_id is not None and not isinstance(tenant_id, uuid.UUID):
        raise TypeError(f"tenant_id must be a UUID, not {type(tenant_id).__name__}")
    return str(tenant_id) if tenant_id else ""


# The ORM path binds the value: one statement text, prepared once per connection. (Inlined, each
# tenant would be a statement of its own, and with many tenants nearly every transaction would
# pay a prepare round trip.)
SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")


def tenant_setting_sql(tenant_id: uuid.UUID | None) -> str:
    """The same statement with the value inlined, for the raw path, where it shares one
    simple-protocol round trip with BEGIN (which takes no parameters). Safe to inline: the value
    is a `uuid.UUID`'s text (checked), never client text."""
    return f"SELECT set_config('app.tenant_id', '{tenant_setting(tenant_id)}', true)"
