from __future__ import annotations

from tenantry.db.tenant_scope import TenantRecord, current_tenant
from tenantry.lib.errors import DomainError, ErrorCode


def provide_tenant() -> TenantRecord:
    """The request's tenant, as TenancyMiddleware resolved it."""
    tenant = current_tenant.get()
    if tenant is None:  # unreachable behind TenancyMiddleware; fail closed all the same
        raise DomainError(ErrorCode.UNKNOWN_TENANT, "no tenant")
    return tenant
