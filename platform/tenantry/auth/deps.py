from __future__ import annotations

from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.lib.errors import NotFound
from tenantry.runtime import AppServices
from tenantry.tenancy.context import TenantRecord, current_tenant


def provide_tenant(request: Request[Any, Any, Any]) -> TenantRecord:
    tenant = current_tenant.get()
    if tenant is None:  # unreachable behind TenancyMiddleware; fail closed all the same
        raise NotFound("no tenant", code="unknown_tenant")
    return tenant


def provide_tenant_auth_service(
    request: Request[Any, Any, Any], db_session: AsyncSession, tenant: TenantRecord
) -> TenantAuthService:
    services = AppServices.of(request)
    return TenantAuthService(
        db_session,
        tenant,
        settings=services.settings,
        tokens=services.tokens,
        passwords=services.passwords,
    )


def provide_platform_auth_service(
    request: Request[Any, Any, Any], platform_db_session: AsyncSession
) -> PlatformAuthService:
    services = AppServices.of(request)
    return PlatformAuthService(platform_db_session, tokens=services.tokens, passwords=services.passwords)
