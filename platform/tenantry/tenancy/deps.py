from __future__ import annotations

from tenantry.lib.errors import NotFound
from tenantry.tenancy.context import TenantRecord, current_tenant


def provide_tenant() -> TenantRecord:
    """The request's tenant, as TenancyMiddleware resolved it."""
    tenant = current_tenant.get()
    if tenant is None:  # unreachable behind TenancyMiddleware; fail closed all the same
        raise NotFound("no tenant", code="unknown_tenant")
    return tenant
