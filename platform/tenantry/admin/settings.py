"""A tenant's own settings, within its plan: the operator sets the plan's limits (types, largest
file), the tenant's admins choose inside them. Values beyond the plan are 422 naming the limit.

`tenants` is a global table the app role only reads, so the write goes through the platform
engine, always for the request's own tenant by id; the tenant cache of every replica hears of it
(NOTIFY on `tenants`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import TenantSettingsOut, TenantSettingsPatch
from tenantry.auth.principals import Principal, actor_of
from tenantry.db.audit import AuditWriter
from tenantry.db.models import Tenant
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import convert_or_invalid
from tenantry.storage.sniff import mime_essence
from tenantry.tenancy.schemas import TenantSettings

_ADMIN_FIELDS = (
    "allow_signup",
    "signup_role",
    "accepted_content_types",
    "max_file_bytes",
    "download_url_ttl_seconds",
    "cors_origins",
)


def settings_out(settings: TenantSettings, plan_max_file_bytes: int) -> TenantSettingsOut:
    return TenantSettingsOut(
        allow_signup=settings.allow_signup,
        signup_role=settings.signup_role,
        accepted_content_types=settings.accepted_content_types,
        max_file_bytes=settings.max_file_bytes,
        download_url_ttl_seconds=settings.download_url_ttl_seconds,
        cors_origins=settings.cors_origins,
        plan_content_types=settings.allowed_content_types,
        plan_max_file_bytes=plan_max_file_bytes,
    )


def _beyond_plan(field: str, limit: str) -> DomainError:
    return DomainError(ErrorCode.BEYOND_PLAN, f"{field}: beyond the plan's {limit}", field=field)


class TenantSettingsService:
    def __init__(
        self,
        platform_session: AsyncSession,
        tenant: TenantRecord,
        caller: Principal,
        *,
        audit: AuditWriter,
    ) -> None:
        self.session = platform_session
        self.tenant = tenant
        self.caller = caller
        self.audit = audit

    async def get(self) -> TenantSettingsOut:
        settings = convert_or_invalid(self.tenant.settings, TenantSettings, prefix="settings")
        return settings_out(settings, self.tenant.max_file_bytes)

    async def update(self, patch: TenantSettingsPatch) -> TenantSettingsOut:
        row = (
            await self.session.execute(
                select(Tenant).where(Tenant.id == self.tenant.id).with_for_update()
            )
        ).scalar_one()
        current = convert_or_invalid(row.settings, TenantSettings, prefix="settings")
        changes: dict[str, Any] = {
            name: getattr(patch, name)
            for name in _ADMIN_FIELDS
            if getattr(patch, name) is not msgspec.UNSET
        }
        if changes.get("accepted_content_types") is not None:
            accepted = sorted({mime_essence(t) for t in changes["accepted_content_types"]})
            plan = current.allowed_content_types
            if plan is not None and not set(accepted) <= {mime_essence(t) for t in plan}:
                raise _beyond_plan("accepted_content_types", f"types ({', '.join(plan)})")
            changes["accepted_content_types"] = accepted
        if (changes.get("max_file_bytes") or 0) > row.max_file_bytes:
            raise _beyond_plan("max_file_bytes", f"largest file ({row.max_file_bytes} bytes)")
        before = {name: getattr(current, name) for name in changes}
        merged = convert_or_invalid({**row.settings, **changes}, TenantSettings, prefix="settings")
        row.settings = msgspec.to_builtins(merged)
        await self.session.flush()
        await self.audit.record(
            self.session,
            self.tenant.id,
            actor_of(self.caller),
            "settings.updated",
            target_type="tenant",
            target_id=str(self.tenant.id),
            before=before,
            after=changes,
        )
        return settings_out(merged, row.max_file_bytes)
