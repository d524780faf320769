from __future__ import annotations

import uuid
from collections.abc import Sequence

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.passwords import PasswordHasher
from tenantry.config import Settings
from tenantry.db.enums import TenantStatus
from tenantry.lib.schemas import Limit, Offset, Page
from tenantry.lib.zones import PLATFORM
from tenantry.platform.schemas import (
    DomainCreate,
    DomainOut,
    TenantCreate,
    TenantOut,
    TenantPatch,
)
from tenantry.platform.services import TenantPurge, TenantService
from tenantry.storage import ObjectStore


def provide_tenant_service(
    platform_db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    passwords: NamedDependency[PasswordHasher],
    store: NamedDependency[ObjectStore],
    tenant_purges: NamedDependency[Sequence[TenantPurge]],
) -> TenantService:
    return TenantService(
        platform_db_session,
        settings=settings,
        passwords=passwords,
        store=store,
        purges=tenant_purges,
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
        return await tenant_service.set_status(tenant_id, TenantStatus.SUSPENDED)

    @post("/{tenant_id:uuid}/resume", status_code=HTTP_200_OK)
    async def resume_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        return await tenant_service.set_status(tenant_id, TenantStatus.ACTIVE)

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
