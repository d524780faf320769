"""Providers of the auth services. The tenant's have one injected leaf, the session; the tenant
and the backends are read from the request (why: `tenantry.files.deps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.accounts import AccountService
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.auth.tokens import TokenIssuer
from tenantry.config import Settings
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import request_tenant
from tenantry.db.usage import UsageRecorder
from tenantry.lib.mail import Mailer


@dataclass(frozen=True, slots=True)
class AuthBackends:
    """What the tenant's auth service runs on (the app builds it once, in its state)."""

    settings: Settings
    tokens: TokenIssuer
    passwords: PasswordHasher
    reader: TenantReader
    recorder: UsageRecorder
    mailer: Mailer | None


def _backends(request: Request[Any, Any, Any]) -> AuthBackends:
    backends: AuthBackends = request.app.state.auth_backends
    return backends


def provide_tenant_auth_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> TenantAuthService:
    backends = _backends(request)
    return TenantAuthService(
        db_session,
        request_tenant(),
        settings=backends.settings,
        tokens=backends.tokens,
        passwords=backends.passwords,
        reader=backends.reader,
        recorder=backends.recorder,
    )


def provide_account_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> AccountService:
    return AccountService(
        provide_tenant_auth_service(request, db_session), _backends(request).mailer
    )


def provide_platform_auth_service(
    platform_db_session: NamedDependency[AsyncSession],
    tokens: NamedDependency[TokenIssuer],
    passwords: NamedDependency[PasswordHasher],
) -> PlatformAuthService:
    return PlatformAuthService(platform_db_session, tokens=tokens, passwords=passwords)
