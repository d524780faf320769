from __future__ import annotations

from dataclasses import dataclass

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.accounts import AccountService
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.auth.tokens import TokenIssuer
from tenantry.config import Settings
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord
from tenantry.db.usage import UsageRecorder
from tenantry.lib.mail import Mailer


@dataclass(frozen=True, slots=True)
class AuthBackends:
    """What the tenant's auth service runs on, injected as one value (the app builds it once):
    `/auth/me` is on every page, and each injected value costs a resolution per request."""

    settings: Settings
    tokens: TokenIssuer
    passwords: PasswordHasher
    reader: TenantReader
    recorder: UsageRecorder
    mailer: Mailer | None


def provide_tenant_auth_service(
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    auth_backends: NamedDependency[AuthBackends],
) -> TenantAuthService:
    return TenantAuthService(
        db_session,
        tenant,
        settings=auth_backends.settings,
        tokens=auth_backends.tokens,
        passwords=auth_backends.passwords,
        reader=auth_backends.reader,
        recorder=auth_backends.recorder,
    )


def provide_account_service(
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    auth_backends: NamedDependency[AuthBackends],
) -> AccountService:
    return AccountService(
        provide_tenant_auth_service(db_session, tenant, auth_backends), auth_backends.mailer
    )


def provide_platform_auth_service(
    platform_db_session: NamedDependency[AsyncSession],
    tokens: NamedDependency[TokenIssuer],
    passwords: NamedDependency[PasswordHasher],
) -> PlatformAuthService:
    return PlatformAuthService(platform_db_session, tokens=tokens, passwords=passwords)
