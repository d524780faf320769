from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.principals import Principal, actor_of
from tenantry.config import Settings
from tenantry.db.audit import AuditEntryOut, AuditWriter
from tenantry.db.enums import TenantStatus
from tenantry.lib.errors import ErrorCode
from tenantry.lib.mail import Mailer
from tenantry.lib.openapi import problems
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
from tenantry.tenancy.domains import DnsVerifier


def provide_tenant_service(
    request: Request[Principal, Any, Any],
    platform_db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    passwords: NamedDependency[PasswordHasher],
    store: NamedDependency[ObjectStore],
    tenant_purges: NamedDependency[Sequence[TenantPurge]],
    audit: NamedDependency[AuditWriter],
    mailer: NamedDependency[Mailer | None],
) -> TenantService:
    return TenantService(
        platform_db_session,
        settings=settings,
        passwords=passwords,
        store=store,
        purges=tenant_purges,
        audit=audit,
        actor=actor_of(request.user),
        mailer=mailer,
    )


class TenantsController(Controller):
    path = "/platform/v1/tenants"
    tags = ["platform"]
    opt = {"zone": PLATFORM}
    dependencies = {"tenant_service": Provide(provide_tenant_service, sync_to_thread=False)}

    @post(
        "/",
        responses=problems(
            ErrorCode.SLUG_TAKEN,
            ErrorCode.SLUG_RESERVED,
            ErrorCode.DOMAIN_TAKEN,
            ErrorCode.INVALID_DOMAIN,
            ErrorCode.PASSWORD_TOO_SHORT,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.INVALID_FIELD,
            ErrorCode.INVALID_VALUE,
        ),
    )
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
        """Every tenant not offboarded, optionally by status, oldest first."""
        return await tenant_service.list_tenants(status=status, limit=limit, offset=offset)

    @get("/{tenant_id:uuid}", responses=problems(ErrorCode.TENANT_NOT_FOUND))
    async def get_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        """One tenant, with its domains and quotas."""
        return await tenant_service.get_tenant(tenant_id)

    @patch(
        "/{tenant_id:uuid}",
        responses=problems(
            ErrorCode.TENANT_NOT_FOUND, ErrorCode.INVALID_FIELD, ErrorCode.INVALID_VALUE
        ),
    )
    async def update_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantPatch],
        tenant_service: NamedDependency[TenantService],
    ) -> TenantOut:
        """Change name, plan, quotas; `settings` and `branding` are merged key by key."""
        return await tenant_service.update_tenant(tenant_id, data)

    @delete(
        "/{tenant_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(ErrorCode.TENANT_NOT_FOUND),
    )
    async def offboard_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> None:
        """Offboard: the tenant's data and objects are removed; its slug stays taken."""
        await tenant_service.offboard(tenant_id)

    @post(
        "/{tenant_id:uuid}/suspend",
        status_code=HTTP_200_OK,
        responses=problems(ErrorCode.TENANT_NOT_FOUND),
    )
    async def suspend_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        """Takes effect on every replica's next request (cache invalidated by NOTIFY)."""
        return await tenant_service.set_status(tenant_id, TenantStatus.SUSPENDED)

    @post(
        "/{tenant_id:uuid}/resume",
        status_code=HTTP_200_OK,
        responses=problems(ErrorCode.TENANT_NOT_FOUND),
    )
    async def resume_tenant(
        self, tenant_id: FromPath[uuid.UUID], tenant_service: NamedDependency[TenantService]
    ) -> TenantOut:
        """Serve a suspended tenant again."""
        return await tenant_service.set_status(tenant_id, TenantStatus.ACTIVE)

    @post(
        "/{tenant_id:uuid}/domains",
        responses=problems(
            ErrorCode.TENANT_NOT_FOUND, ErrorCode.DOMAIN_TAKEN, ErrorCode.INVALID_DOMAIN
        ),
    )
    async def add_domain(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[DomainCreate],
        tenant_service: NamedDependency[TenantService],
    ) -> DomainOut:
        """Add a custom domain to the tenant."""
        return await tenant_service.add_domain(tenant_id, data)

    @delete(
        "/{tenant_id:uuid}/domains/{domain:str}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(ErrorCode.TENANT_NOT_FOUND, ErrorCode.DOMAIN_NOT_FOUND),
    )
    async def remove_domain(
        self,
        tenant_id: FromPath[uuid.UUID],
        domain: FromPath[str],
        tenant_service: NamedDependency[TenantService],
    ) -> None:
        """Remove one of the tenant's domains; it stops serving the tenant at once."""
        await tenant_service.remove_domain(tenant_id, domain)

    @get("/{tenant_id:uuid}/audit", responses=problems(ErrorCode.TENANT_NOT_FOUND))
    async def audit_log(
        self,
        tenant_id: FromPath[uuid.UUID],
        tenant_service: NamedDependency[TenantService],
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[AuditEntryOut]:
        """The tenant's audit log, newest first: its admins' actions and the operator's."""
        return await tenant_service.audit_log(tenant_id, limit=limit, offset=offset)

    @post(
        "/{tenant_id:uuid}/domains/{domain:str}/verify",
        status_code=HTTP_200_OK,
        responses=problems(
            ErrorCode.TENANT_NOT_FOUND,
            ErrorCode.DOMAIN_NOT_FOUND,
            ErrorCode.DOMAIN_NOT_VERIFIED,
            ErrorCode.DNS_UNAVAILABLE,
        ),
    )
    async def verify_domain(
        self,
        tenant_id: FromPath[uuid.UUID],
        domain: FromPath[str],
        tenant_service: NamedDependency[TenantService],
        dns_verifier: NamedDependency[DnsVerifier],
    ) -> DomainOut:
        """Checks the domain's TXT record through DNS; verified, it serves the tenant at once."""
        return await tenant_service.verify_domain(tenant_id, domain, dns_verifier)
