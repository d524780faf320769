"""A tenant's API keys, managed by its admins: a key's role is at most its creator's, its secret
is shown once, and revoking it takes effect on every replica at once (NOTIFY)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from tenantry.auth.api_keys import ApiKeyHasher
from tenantry.auth.credentials import note_credential_change
from tenantry.auth.guards import role_rank
from tenantry.auth.principals import Principal, actor_of
from tenantry.db.audit import AuditWriter
from tenantry.db.models import ApiKey
from tenantry.db.repository import TenantScopedRepository
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import Page

# Keys that never expire are allowed; one that expires must do so within five years.
MAX_LIFETIME = timedelta(days=5 * 365)


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        role=key.role,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


class ApiKeyRepository(TenantScopedRepository[ApiKey]):
    model_type = ApiKey


class ApiKeyService:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        caller: Principal,
        *,
        hasher: ApiKeyHasher,
        audit: AuditWriter,
    ) -> None:
        self.session = session
        self.tenant = tenant
        self.caller = caller
        self.keys = ApiKeyRepository(session=session, tenant_id=tenant.id)
        self.hasher = hasher
        self.audit = audit

    async def list_keys(self, *, limit: int, offset: int) -> Page[ApiKeyOut]:
        keys, total = await self.keys.get_many_and_count(
            OrderBy("created_at", "desc"), LimitOffset(limit=limit, offset=offset)
        )
        return Page(items=[key_out(k) for k in keys], total=total, limit=limit, offset=offset)

    async def create_key(self, data: ApiKeyCreate) -> ApiKeyCreated:
        if role_rank(data.role) > role_rank(self.caller.role):
            raise DomainError(
                ErrorCode.ROLE_TOO_HIGH, "a key's role is at most its creator's", field="role"
            )
        now = datetime.now(UTC)
        if data.expires_at is not None and not now < data.expires_at <= now + MAX_LIFETIME:
            raise DomainError(
                ErrorCode.INVALID_FIELD,
                "expires_at: in the future, within five years",
                field="expires_at",
            )
        key_id = uuid.uuid4()
        secret, secret_hash = self.hasher.new_key(self.tenant.id, key_id)
        key = ApiKey(
            tenant_id=self.tenant.id,
            id=key_id,
            name=data.name.strip(),
            role=data.role,
            secret_hash=secret_hash,
            created_by=self.caller.id if self.caller.kind == "user" else None,
            expires_at=data.expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        await self._record("api_key.created", key)
        return ApiKeyCreated(api_key=key_out(key), key=secret)

    async def revoke_key(self, key_id: uuid.UUID) -> None:
        key = (
            await self.session.execute(
                select(ApiKey)
                .where(ApiKey.tenant_id == self.tenant.id, ApiKey.id == key_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if key is None:
            raise DomainError(ErrorCode.API_KEY_NOT_FOUND, f"no API key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
            await self.session.flush()
            note_credential_change(self.session, "api_keys", self.tenant.id, key.id)
            await self._record("api_key.revoked", key)

    async def _record(self, action: str, key: ApiKey) -> None:
        await self.audit.record(
            self.session,
            self.tenant.id,
            actor_of(self.caller),
            action,
            target_type="api_key",
            target_id=str(key.id),
            after={"name": key.name, "role": key.role, "revoked": key.revoked_at is not None},
        )
