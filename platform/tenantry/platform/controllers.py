from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.lib.schemas import Limit, Offset, Page
from tenantry.platform.schemas import (
    DomainCreate,
    DomainOut,
    TenantCreate,
    TenantOut,
    TenantPatch,
    TenantStatus,
)
from tenantry.platform.services import TenantService
from tenantry.runtime import AppServices
from tenantry.tenancy.zones import PLATFORM


def provide_tenant_service(
    request: Request[Any, Any, Any], platform_db_session: NamedDependency[AsyncSession]
) -> TenantService:
    services = AppServices.of(request)
    return TenantService(
        platform_db_session,
        settings=services.settings,
        passwords=services.passwords,
        store=services.store,
    )


class TenantsController(Controller):
    path = "/platform/v1/tenants"
    tags = ["platform"]
    opt = {"zone": PLATFORM}
    dependencies = {"tenant_service": Provide(provide_tenant_service, sync_to_thread=False)}

    @post("/")
    async def create_tenant(
        self, data: JSONBody[TenantCreate], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        """Provision a tenant and its first user (role `owner`) in one transaction."""
        return await tenant_service.create_tenant(data)

    @get("/")
    async def list_tenants(
        self,
        tenant_service: NamedDependency[TenantService],
        status: FromQuery[TenantStatus | None] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[TenantOut]:
        return await tenant_service.list_tenants(status=status, limit=limit, offset=offset)

    @get("/{tenant_id:uuid}")
    async def get_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        return await tenant_service.get_tenant(tenant_id)

    @patch("/{tenant_id:uuid}")
    async def update_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantPatch],
        tenant_service: NamedDependency[TenantService],
    ) -> TenantOut:
        """Change name, plan, quotas; `settings` and `branding` are merged key by key."""
        return await tenant_service.update_tenant(tenant_id, data)

    @delete("/{tenant_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def offboard_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> None:
        await tenant_service.offboard(tenant_id)

    @post("/{tenant_id:uuid}/suspend", status_code=HTTP_200_OK)
    async def suspend_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        """Takes effect on every replica's next request (cache invalidated by NOTIFY)."""
        return await tenant_service.set_status(tenant_id, "suspended")

    @post("/{tenant_id:uuid}/resume", status_code=HTTP_200_OK)
    async def resume_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        return await tenant_service.set_status(tenant_id, "active")

    @post("/{tenant_id:uuid}/domains")
    async def add_domain(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[DomainCreate],
        tenant_service: NamedDependency[TenantService],
    ) -> DomainOut:
        return await tenant_service.add_domain(tenant_id, data)

    @delete("/{tenant_id:uuid}/domains/{domain:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove_domain(
        self,
        tenant_id: FromPath[uuid.UUID],
        domain: FromPath[str],
        tenant_service: NamedDependency[TenantService],
    ) -> None:
        await tenant_service.remove_domain(tenant_id, domain)
