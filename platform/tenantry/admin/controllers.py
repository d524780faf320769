"""Tenant administration routes (admin and up)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.api_keys import ApiKeyService
from tenantry.admin.domains import DomainRequest, DomainService, TenantDomainOut
from tenantry.admin.schemas import (
    AdminUserOut,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    TenantSettingsOut,
    TenantSettingsPatch,
    UserCreate,
    UserCreated,
    UserPatch,
)
from tenantry.admin.settings import TenantSettingsService
from tenantry.admin.users import UserAdminService, UserFilters
from tenantry.auth.api_keys import ApiKeyHasher
from tenantry.auth.guards import requires_role
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.principals import Principal
from tenantry.config import Settings
from tenantry.db.audit import AuditEntryOut, AuditRepository, AuditWriter
from tenantry.db.enums import ActorType, Role
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import ErrorCode
from tenantry.lib.mail import Mailer
from tenantry.lib.openapi import problems
from tenantry.lib.schemas import Limit, Offset, Page
from tenantry.tenancy.domains import DnsVerifier


def provide_user_admin(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    passwords: NamedDependency[PasswordHasher],
    mailer: NamedDependency[Mailer | None],
    audit: NamedDependency[AuditWriter],
) -> UserAdminService:
    return UserAdminService(
        db_session, tenant, request.user, passwords=passwords, mailer=mailer, audit=audit
    )


_USER = "/{user_id:uuid}"


class UsersAdminController(Controller):
    path = "/api/v1/admin/users"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"users": Provide(provide_user_admin, sync_to_thread=False)}

    @get("/")
    async def list_users(
        self,
        users: NamedDependency[UserAdminService],
        role: FromQuery[Role | None] = None,
        disabled: FromQuery[bool | None] = None,
        email: FromQuery[str | None] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[AdminUserOut]:
        """The tenant's users by email; `email` matches a part of it."""
        filters = UserFilters(role=role, disabled=disabled, email=email)
        return await users.list_users(filters, limit=limit, offset=offset)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses=problems(
            ErrorCode.EMAIL_TAKEN,
            ErrorCode.OWNER_REQUIRED,
            ErrorCode.PASSWORD_TOO_SHORT,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.MAIL_UNAVAILABLE,
        ),
    )
    async def create_user(
        self, data: JSONBody[UserCreate], users: NamedDependency[UserAdminService]
    ) -> UserCreated:
        """A user with a password, or invited (no password: the invitation is mailed, or its
        token comes back here once when no mail server is configured)."""
        return await users.create_user(data)

    @get(_USER, responses=problems(ErrorCode.USER_NOT_FOUND))
    async def get_user(
        self, user_id: FromPath[uuid.UUID], users: NamedDependency[UserAdminService]
    ) -> AdminUserOut:
        """One user of the tenant."""
        return await users.get_user(user_id)

    @patch(
        _USER,
        responses=problems(
            ErrorCode.USER_NOT_FOUND, ErrorCode.OWNER_REQUIRED, ErrorCode.LAST_OWNER
        ),
    )
    async def update_user(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[UserPatch],
        users: NamedDependency[UserAdminService],
    ) -> AdminUserOut:
        """Role, disabled, display name. A new role or disabling ends the user's sessions at
        once (their live tokens fail on the next request, on every replica)."""
        return await users.update_user(user_id, data)

    @delete(
        _USER,
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(
            ErrorCode.USER_NOT_FOUND, ErrorCode.OWNER_REQUIRED, ErrorCode.LAST_OWNER
        ),
    )
    async def delete_user(
        self, user_id: FromPath[uuid.UUID], users: NamedDependency[UserAdminService]
    ) -> None:
        """The user's files stay (without an uploader); their sessions end at once."""
        await users.delete_user(user_id)


def provide_api_keys(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    key_hasher: NamedDependency[ApiKeyHasher],
    audit: NamedDependency[AuditWriter],
) -> ApiKeyService:
    return ApiKeyService(db_session, tenant, request.user, hasher=key_hasher, audit=audit)


class ApiKeysAdminController(Controller):
    path = "/api/v1/admin/api-keys"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"api_keys": Provide(provide_api_keys, sync_to_thread=False)}

    @get("/")
    async def list_keys(
        self, api_keys: NamedDependency[ApiKeyService], limit: Limit = 20, offset: Offset = 0
    ) -> Page[ApiKeyOut]:
        """The tenant's keys, newest first, with their last use (never their secrets)."""
        return await api_keys.list_keys(limit=limit, offset=offset)

    @post("/", status_code=HTTP_201_CREATED, responses=problems(ErrorCode.ROLE_TOO_HIGH))
    async def create_key(
        self, data: JSONBody[ApiKeyCreate], api_keys: NamedDependency[ApiKeyService]
    ) -> ApiKeyCreated:
        """A key for a back end, sent as `Authorization: Bearer <key>`; `key` is shown only in
        this answer."""
        return await api_keys.create_key(data)

    @delete(
        "/{key_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(ErrorCode.API_KEY_NOT_FOUND),
    )
    async def revoke_key(
        self, key_id: FromPath[uuid.UUID], api_keys: NamedDependency[ApiKeyService]
    ) -> None:
        """Revoked at once, on every replica; the key stays listed, revoked."""
        await api_keys.revoke_key(key_id)


def provide_settings(
    request: Request[Principal, Any, Any],
    platform_db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    audit: NamedDependency[AuditWriter],
) -> TenantSettingsService:
    return TenantSettingsService(platform_db_session, tenant, request.user, audit=audit)


class SettingsAdminController(Controller):
    path = "/api/v1/admin/settings"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"tenant_settings": Provide(provide_settings, sync_to_thread=False)}

    @get("/")
    async def get_settings(
        self, tenant_settings: NamedDependency[TenantSettingsService]
    ) -> TenantSettingsOut:
        """The tenant's own settings, and the plan's limits they stay within."""
        return await tenant_settings.get()

    @patch("/", responses=problems(ErrorCode.BEYOND_PLAN))
    async def update_settings(
        self,
        data: JSONBody[TenantSettingsPatch],
        tenant_settings: NamedDependency[TenantSettingsService],
    ) -> TenantSettingsOut:
        """Self-signup and its role, the file types accepted and the largest file (within the
        plan's), the download link lifetime (30 s to 24 h). Every replica applies it at once."""
        return await tenant_settings.update(data)


def provide_audit_log(
    db_session: NamedDependency[AsyncSession], tenant: NamedDependency[TenantRecord]
) -> AuditRepository:
    return AuditRepository(session=db_session, tenant_id=tenant.id)


class AuditAdminController(Controller):
    path = "/api/v1/admin/audit"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"audit_log": Provide(provide_audit_log, sync_to_thread=False)}

    @get("/")
    async def list_entries(
        self,
        audit_log: NamedDependency[AuditRepository],
        action: FromQuery[str | None] = None,
        actor_type: FromQuery[ActorType | None] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[AuditEntryOut]:
        """Who changed what in this tenant (its admins, its API keys, the operator), newest
        first."""
        return await audit_log.page(
            action=action, actor_type=actor_type, limit=limit, offset=offset
        )


def provide_domains(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    settings: NamedDependency[Settings],
    dns_verifier: NamedDependency[DnsVerifier],
    audit: NamedDependency[AuditWriter],
) -> DomainService:
    return DomainService(
        db_session, tenant, request.user, settings=settings, verifier=dns_verifier, audit=audit
    )


_DOMAIN = "/{domain:str}"


class DomainsAdminController(Controller):
    path = "/api/v1/admin/domains"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"domains": Provide(provide_domains, sync_to_thread=False)}

    @get("/")
    async def list_domains(self, domains: NamedDependency[DomainService]) -> list[TenantDomainOut]:
        """The tenant's domains; a pending one shows the TXT record that proves it."""
        return await domains.list_domains()

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses=problems(ErrorCode.DOMAIN_TAKEN, ErrorCode.INVALID_DOMAIN),
    )
    async def request_domain(
        self, data: JSONBody[DomainRequest], domains: NamedDependency[DomainService]
    ) -> TenantDomainOut:
        """Ask for a domain: it serves the tenant once verified (publish the TXT record, then
        call verify)."""
        return await domains.request_domain(data)

    @post(
        _DOMAIN + "/verify",
        status_code=HTTP_200_OK,
        responses=problems(
            ErrorCode.DOMAIN_NOT_FOUND, ErrorCode.DOMAIN_NOT_VERIFIED, ErrorCode.DNS_UNAVAILABLE
        ),
    )
    async def verify_domain(
        self, domain: FromPath[str], domains: NamedDependency[DomainService]
    ) -> TenantDomainOut:
        """Checks the TXT record through DNS; verified, the domain serves the tenant at once."""
        return await domains.verify(domain)

    @delete(
        _DOMAIN, status_code=HTTP_204_NO_CONTENT, responses=problems(ErrorCode.DOMAIN_NOT_FOUND)
    )
    async def remove_domain(
        self, domain: FromPath[str], domains: NamedDependency[DomainService]
    ) -> None:
        """The domain stops serving the tenant at once."""
        await domains.remove(domain)
