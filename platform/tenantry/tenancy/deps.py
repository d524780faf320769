from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from tenantry.config import Settings
from tenantry.db.tenant_scope import TenantRecord, current_tenant
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.http import request_origin


def provide_tenant() -> TenantRecord:
    """The request's tenant, as TenancyMiddleware resolved it."""
    tenant = current_tenant.get()
    if tenant is None:  # unreachable behind TenancyMiddleware; fail closed all the same
        raise DomainError(ErrorCode.UNKNOWN_TENANT, "no tenant")
    return tenant


def provide_origin(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> str:
    """Where absolute links (downloads, logos) point: the configured public origin, else the
    one the client used."""
    return settings.public_origin or request_origin(
        request.scope, request.headers, settings.trusted_proxies
    )
