from __future__ import annotations

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.auth.tokens import TokenIssuer
from tenantry.config import Settings
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord


def provide_tenant_auth_service(
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    settings: NamedDependency[Settings],
    tokens: NamedDependency[TokenIssuer],
    passwords: NamedDependency[PasswordHasher],
    reader: NamedDependency[TenantReader],
) -> TenantAuthService:
    return TenantAuthService(
        db_session, tenant, settings=settings, tokens=tokens, passwords=passwords, reader=reader
    )


def provide_platform_auth_service(
    platform_db_session: NamedDependency[AsyncSession],
    tokens: NamedDependency[TokenIssuer],
    passwords: NamedDependency[PasswordHasher],
) -> PlatformAuthService:
    return PlatformAuthService(platform_db_session, tokens=tokens, passwords=passwords)
