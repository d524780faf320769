"""A tenant's domains, as its admins see them: ask for one (pending until DNS proves it),
verify it, remove it. `tenant_domains` lets the app role write its own tenant's rows only
(RLS, migration 0007); every statement here also names the tenant."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principals import Principal, actor_of
from tenantry.config import Settings
from tenantry.db.audit import AuditWriter
from tenantry.db.models import TenantDomain
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.tenancy.cache import note_tenant_changed
from tenantry.tenancy.domains import (
    DnsVerifier,
    challenge_name,
    challenge_value,
    new_verification_token,
    normalize_domain,
    verify_domain,
)


class DnsRecord(msgspec.Struct, kw_only=True):
    name: str
    type: str = "TXT"
    value: str


class TenantDomainOut(msgspec.Struct, kw_only=True):
    domain: str
    verified: bool
    is_primary: bool
    created_at: datetime
    verified_at: datetime | None
    # What to publish in DNS, while the domain waits for verification.
    verification: DnsRecord | None


class DomainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    domain: str


def domain_out(row: TenantDomain) -> TenantDomainOut:
    pending = not row.verified and row.verification_token is not None
    return TenantDomainOut(
        domain=row.domain,
        verified=row.verified,
        is_primary=row.is_primary,
        created_at=row.created_at,
        verified_at=row.verified_at,
        verification=DnsRecord(
            name=challenge_name(row.domain), value=challenge_value(row.verification_token)
        )
        if pending and row.verification_token
        else None,
    )


class DomainService:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        caller: Principal,
        *,
        settings: Settings,
        verifier: DnsVerifier,
        audit: AuditWriter,
    ) -> None:
        self.session = session
        self.tenant = tenant
        self.caller = caller
        self.settings = settings
        self.verifier = verifier
        self.audit = audit

    async def list_domains(self) -> list[TenantDomainOut]:
        rows = await self.session.scalars(
            select(TenantDomain)
            .where(TenantDomain.tenant_id == self.tenant.id)
            .order_by(TenantDomain.domain)
        )
        return [domain_out(row) for row in rows]

    async def request_domain(self, data: DomainRequest) -> TenantDomainOut:
        row = TenantDomain(
            domain=normalize_domain(data.domain, self.settings),
            tenant_id=self.tenant.id,
            verified=False,
            verification_token=new_verification_token(),
        )
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise DomainError(
                ErrorCode.DOMAIN_TAKEN, f"'{row.domain}' is already in use", field="domain"
            ) from exc
        await self.session.refresh(row)
        await self._record("domain.requested", row.domain)
        return domain_out(row)

    async def verify(self, domain: str) -> TenantDomainOut:
        row = await verify_domain(
            self.session, self.tenant.id, domain.strip().lower().rstrip("."), self.verifier
        )
        await self._record("domain.verified", row.domain)
        return domain_out(row)

    async def remove(self, domain: str) -> None:
        name = domain.strip().lower().rstrip(".")
        result = await self.session.execute(
            delete(TenantDomain).where(
                TenantDomain.tenant_id == self.tenant.id, TenantDomain.domain == name
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise DomainError(ErrorCode.DOMAIN_NOT_FOUND, f"the tenant has no domain '{name}'")
        note_tenant_changed(self.session, self.tenant.id)
        await self._record("domain.removed", name)

    async def _record(self, action: str, domain: str) -> None:
        await self.audit.record(
            self.session,
            self.tenant.id,
            actor_of(self.caller),
            action,
            target_type="domain",
            target_id=domain,
        )
