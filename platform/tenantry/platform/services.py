"""Tenant provisioning rules: create with its owner, change, suspend, offboard, domains."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from tenantry.auth.one_time import NO_PASSWORD, invite
from tenantry.auth.passwords import PasswordHasher
from tenantry.config import Settings
from tenantry.db.audit import SYSTEM, Actor, AuditEntryOut, AuditRepository, AuditWriter
from tenantry.db.enums import Role, TenantStatus
from tenantry.db.models import Tenant, TenantDomain, TenantUsage, User
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.mail import Mailer
from tenantry.lib.schemas import Page, convert_or_invalid, normalize_email
from tenantry.platform.schemas import (
    DomainCreate,
    DomainOut,
    Quotas,
    TenantCreate,
    TenantOut,
    TenantPatch,
)
from tenantry.storage import ObjectStore, tenant_prefix
from tenantry.tenancy.cache import note_tenant_changed
from tenantry.tenancy.domains import DnsVerifier, normalize_domain, verify_domain
from tenantry.tenancy.limits import effective_limits, merged_limits
from tenantry.tenancy.schemas import Branding, TenantSettings, edit_branding, plain_branding

# What another domain does when a tenant is offboarded (e.g. the files domain removes its
# files), in the offboarding transaction. The app passes the domains' purges in.
TenantPurge = Callable[
    [AsyncSession | async_scoped_session[AsyncSession], uuid.UUID], Awaitable[None]
]

logger = structlog.get_logger("tenantry.platform")
RESERVED_SLUGS = frozenset(
    {
        "www",
        "api",
        "app",
        "admin",
        "platform",
        "static",
        "assets",
        "cdn",
        "mail",
        "status",
        "health",
    }
)


class TenantRepository(SQLAlchemyAsyncRepository[Tenant]):
    model_type = Tenant

    async def domains_of(self, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        rows = await self.session.execute(
            select(TenantDomain.tenant_id, TenantDomain.domain)
            .where(TenantDomain.tenant_id.in_(tenant_ids))
            .order_by(TenantDomain.is_primary.desc(), TenantDomain.domain)
        )
        domains: dict[uuid.UUID, list[str]] = {tenant_id: [] for tenant_id in tenant_ids}
        for tenant_id, domain in rows:
            domains[tenant_id].append(domain)
        return domains


def _audited(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "plan": tenant.plan,
        "storage_quota_bytes": tenant.storage_quota_bytes,
        "max_file_bytes": tenant.max_file_bytes,
        "settings": dict(tenant.settings),
        "branding": dict(tenant.branding),
        "limits": dict(tenant.limits),
    }


class TenantService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        passwords: PasswordHasher,
        store: ObjectStore | None = None,
        purges: Sequence[TenantPurge] = (),
        audit: AuditWriter | None = None,
        actor: Actor = SYSTEM,
        mailer: Mailer | None = None,
    ) -> None:
        self.session = session
        self.repository = TenantRepository(session=session)
        self.settings = settings
        self.passwords = passwords
        self.store = store
        self.purges = purges
        self.audit = audit or AuditWriter()
        self.actor = actor
        self.mailer = mailer

    # -- reads ---------------------------------------------------------------------------

    async def get_tenant(self, tenant_id: uuid.UUID) -> TenantOut:
        return (await self._render([await self._load(tenant_id)]))[0]

    async def list_tenants(self, *, status: str | None, limit: int, offset: int) -> Page[TenantOut]:
        condition = Tenant.status == status if status else Tenant.status != TenantStatus.DELETED
        tenants, total = await self.repository.get_many_and_count(
            condition, OrderBy("created_at", "asc"), LimitOffset(limit=limit, offset=offset)
        )
        return Page(
            items=await self._render(list(tenants)), total=total, limit=limit, offset=offset
        )

    async def existing_slugs(self, slugs: Sequence[str]) -> set[str]:
        """Which of `slugs` are taken (deleted tenants keep theirs)."""
        return set(await self.session.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs))))

    # -- writes --------------------------------------------------------------------------

    async def create_tenant(self, data: TenantCreate) -> TenantOut:
        self._check_slug(data.slug)
        domains = [self.normalize_domain(domain) for domain in data.domains]
        password_hash = (
            await self.passwords.hash(data.admin.password, field="admin.password")
            if data.admin.password is not None
            else NO_PASSWORD
        )
        quotas = data.quotas or Quotas()
        tenant = Tenant(
            slug=data.slug,
            name=data.name,
            plan=data.plan,
            storage_quota_bytes=quotas.storage_bytes,
            max_file_bytes=quotas.max_file_bytes,
            settings=msgspec.to_builtins(data.settings or TenantSettings()),
            branding=msgspec.to_builtins(data.branding or Branding()),
        )
        self.repository.session.add(tenant)
        await self._flush_unique(f"slug '{data.slug}' is taken", ErrorCode.SLUG_TAKEN, "slug")
        for index, domain in enumerate(dict.fromkeys(domains)):
            self.repository.session.add(
                TenantDomain(domain=domain, tenant_id=tenant.id, is_primary=index == 0)
            )
        await self._flush_unique("a domain is already in use", ErrorCode.DOMAIN_TAKEN, "domains")
        self.repository.session.add(TenantUsage(tenant_id=tenant.id))
        owner = User(
            tenant_id=tenant.id,
            email=normalize_email(data.admin.email),
            password_hash=password_hash,
            role=Role.OWNER,
        )
        self.repository.session.add(owner)
        await self.repository.session.flush()
        await self._record(
            tenant.id, "tenant.created", after={"slug": tenant.slug, "plan": tenant.plan}
        )
        rendered = await self.get_tenant(tenant.id)
        if data.admin.password is None:
            rendered.owner_invitation = await invite(
                self.session,
                self.mailer,
                tenant_id=tenant.id,
                tenant_name=tenant.name,
                user_id=owner.id,
                email=owner.email,
            )
        return rendered

    async def update_tenant(self, tenant_id: uuid.UUID, patch: TenantPatch) -> TenantOut:
        tenant = await self._load(tenant_id, live=True)
        before = _audited(tenant)
        if patch.name is not None:
            tenant.name = patch.name
        if patch.plan is not None:
            tenant.plan = patch.plan
        if patch.quotas is not None:
            if patch.quotas.storage_bytes is not None:
                tenant.storage_quota_bytes = patch.quotas.storage_bytes
            if patch.quotas.max_file_bytes is not None:
                tenant.max_file_bytes = patch.quotas.max_file_bytes
        if patch.settings is not None:
            merged = {**tenant.settings, **patch.settings}
            tenant.settings = msgspec.to_builtins(
                convert_or_invalid(merged, TenantSettings, prefix="settings")
            )
        if patch.branding is not None:
            tenant.branding = edit_branding(tenant.branding, patch.branding, prefix="branding")
        if patch.limits is not None:
            tenant.limits = merged_limits(tenant.limits, patch.limits)
        await self.repository.session.flush()
        after = _audited(tenant)
        if after != before:  # manifests re-applied unchanged leave no trace
            await self._record(tenant_id, "tenant.updated", before=before, after=after)
        return await self.get_tenant(tenant_id)

    async def set_status(self, tenant_id: uuid.UUID, status: TenantStatus) -> TenantOut:
        tenant = await self._load(tenant_id, live=True)
        before = {"status": tenant.status}
        tenant.status = status
        await self.repository.session.flush()
        await self._record(tenant_id, f"tenant.{status}", before=before, after={"status": status})
        return await self.get_tenant(tenant_id)

    async def offboard(self, tenant_id: uuid.UUID) -> None:
        """Soft delete: the tenant stops resolving at once, its domains are freed, its files
        and their objects are removed (the objects after the commit; the reconciler finishes
        the job if the store fails now)."""
        tenant = await self._load(tenant_id, live=True)
        tenant.status = TenantStatus.DELETED
        tenant.deleted_at = datetime.now(UTC)
        await self._record(tenant_id, "tenant.offboarded", after={"status": tenant.status})
        session = self.repository.session
        await session.execute(delete(TenantDomain).where(TenantDomain.tenant_id == tenant_id))
        for purge in self.purges:
            await purge(session, tenant_id)
        await session.commit()
        if self.store is not None:
            try:
                removed = await self.store.delete_prefix(tenant_prefix(tenant_id))
                logger.info("tenant_objects_removed", tenant_id=str(tenant_id), count=removed)
            except Exception:
                logger.exception("tenant_objects_remove_failed", tenant_id=str(tenant_id))

    async def add_domain(self, tenant_id: uuid.UUID, data: DomainCreate) -> DomainOut:
        await self._load(tenant_id, live=True)
        domain = TenantDomain(
            domain=self.normalize_domain(data.domain),
            tenant_id=tenant_id,
            is_primary=data.is_primary,
        )
        self.repository.session.add(domain)
        await self._flush_unique(
            f"domain '{domain.domain}' is already in use", ErrorCode.DOMAIN_TAKEN, "domain"
        )
        await self.repository.session.refresh(domain)
        await self._record(tenant_id, "domain.added", target=("domain", domain.domain))
        return DomainOut(
            domain=domain.domain,
            tenant_id=domain.tenant_id,
            verified=domain.verified,
            is_primary=domain.is_primary,
            created_at=domain.created_at,
        )

    async def remove_domain(self, tenant_id: uuid.UUID, domain: str) -> None:
        result = await self.repository.session.execute(
            delete(TenantDomain).where(
                TenantDomain.tenant_id == tenant_id,
                TenantDomain.domain == domain.strip().lower().rstrip("."),
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise DomainError(ErrorCode.DOMAIN_NOT_FOUND, f"tenant has no domain '{domain}'")
        note_tenant_changed(self.repository.session, tenant_id)
        await self._record(tenant_id, "domain.removed", target=("domain", domain))

    async def verify_domain(
        self, tenant_id: uuid.UUID, domain: str, verifier: DnsVerifier
    ) -> DomainOut:
        await self._load(tenant_id, live=True)
        name = domain.strip().lower().rstrip(".")
        row = await verify_domain(self.session, tenant_id, name, verifier)
        await self._record(tenant_id, "domain.verified", target=("domain", row.domain))
        return DomainOut(
            domain=row.domain,
            tenant_id=row.tenant_id,
            verified=row.verified,
            is_primary=row.is_primary,
            created_at=row.created_at,
        )

    async def audit_log(
        self, tenant_id: uuid.UUID, *, limit: int, offset: int
    ) -> Page[AuditEntryOut]:
        await self._load(tenant_id)
        entries = AuditRepository(session=self.session, tenant_id=tenant_id)
        return await entries.page(action=None, actor_type=None, limit=limit, offset=offset)

    # -- rules ---------------------------------------------------------------------------

    async def _record(
        self,
        tenant_id: uuid.UUID,
        action: str,
        *,
        target: tuple[str, str] | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        target_type, target_id = target or ("tenant", str(tenant_id))
        await self.audit.record(
            self.repository.session,
            tenant_id,
            self.actor,
            action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
        )

    def normalize_domain(self, domain: str) -> str:
        return normalize_domain(domain, self.settings)

    def _check_slug(self, slug: str) -> None:
        if slug in RESERVED_SLUGS:
            raise DomainError(ErrorCode.SLUG_RESERVED, f"slug '{slug}' is reserved", field="slug")

    async def _flush_unique(self, detail: str, error: ErrorCode, field: str) -> None:
        try:
            await self.repository.session.flush()
        except IntegrityError as exc:
            raise DomainError(error, detail, field=field) from exc

    async def _load(self, tenant_id: uuid.UUID, *, live: bool = False) -> Tenant:
        tenant = await self.repository.get_one_or_none(Tenant.id == tenant_id)
        if tenant is None or (live and tenant.status == TenantStatus.DELETED):
            raise DomainError(ErrorCode.TENANT_NOT_FOUND, f"no tenant {tenant_id}")
        return tenant

    async def _render(self, tenants: list[Tenant]) -> list[TenantOut]:
        domains = await self.repository.domains_of([tenant.id for tenant in tenants])
        return [
            TenantOut(
                id=tenant.id,
                slug=tenant.slug,
                name=tenant.name,
                status=TenantStatus(tenant.status),
                plan=tenant.plan,
                host=f"{tenant.slug}.{self.settings.base_domain}",
                domains=domains[tenant.id],
                quotas=Quotas(
                    storage_bytes=tenant.storage_quota_bytes, max_file_bytes=tenant.max_file_bytes
                ),
                limits=effective_limits(tenant.plan, tenant.limits),
                settings=msgspec.convert(tenant.settings, TenantSettings),
                branding=plain_branding(tenant.branding),
                created_at=tenant.created_at,
                updated_at=tenant.updated_at,
                deleted_at=tenant.deleted_at,
            )
            for tenant in tenants
        ]
