from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.runtime import AppServices
from tenantry.tenancy.context import TenantRecord


def provide_tenant_auth_service(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
) -> TenantAuthService:
    services = AppServices.of(request)
    return TenantAuthService(
        db_session,
        tenant,
        settings=services.settings,
        tokens=services.tokens,
        passwords=services.passwords,
        reader=services.reader,
    )


def provide_platform_auth_service(
    request: Request[Any, Any, Any], platform_db_session: NamedDependency[AsyncSession]
) -> PlatformAuthService:
    services = AppServices.of(request)
    return PlatformAuthService(
        platform_db_session, tokens=services.tokens, passwords=services.passwords
    )
