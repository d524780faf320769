"""A tenant's people, managed by its admins: the role rules and the last-owner rule live here.

Only an owner makes, changes or removes owners and admins; admins manage editors and viewers.
The tenant always keeps an active owner: the owners' rows are locked (in one order) before the
check, so two owners demoting each other at once cannot both succeed. Every change that should
end a user's sessions (role, disabled, deleted) revokes their live access tokens at once
(`revoke_access_tokens`; a deleted row notifies by itself) and their refresh tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import AdminUserOut, UserCreate, UserCreated, UserPatch
from tenantry.auth.credentials import note_credential_change
from tenantry.auth.one_time import NO_PASSWORD, invite
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.principals import Principal, actor_of
from tenantry.auth.services import end_sessions
from tenantry.db.audit import AuditWriter
from tenantry.db.enums import Role
from tenantry.db.models import User
from tenantry.db.repository import TenantScopedRepository
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.mail import Mailer
from tenantry.lib.schemas import Page, normalize_email

_PRIVILEGED = (Role.OWNER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class UserFilters:
    role: Role | None = None
    disabled: bool | None = None
    # A part of the email, case-insensitive.
    email: str | None = None


def user_out(user: User) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        role=user.role,
        display_name=user.display_name,
        disabled=user.disabled,
        active=user.password_hash != NO_PASSWORD,
        created_at=user.created_at,
    )


def _audited(user: User) -> dict[str, Any]:
    return {"email": user.email, "role": user.role, "disabled": user.disabled}


class UserAdminRepository(TenantScopedRepository[User]):
    model_type = User

    async def page(
        self, filters: UserFilters, *, limit: int, offset: int
    ) -> tuple[list[User], int]:
        conditions = []
        if filters.role is not None:
            conditions.append(User.role == filters.role)
        if filters.disabled is not None:
            conditions.append(User.disabled.is_(filters.disabled))
        if filters.email:
            term = filters.email.strip().lower()
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(User.email.like(f"%{escaped}%", escape="\\"))
        users, total = await self.get_many_and_count(
            *conditions, OrderBy("email", "asc"), LimitOffset(limit=limit, offset=offset)
        )
        return list(users), total

    async def lock_active_owners(self) -> list[uuid.UUID]:
        rows = await self.session.execute(
            select(User.id)
            .where(
                User.tenant_id == self.tenant_id,
                User.role == Role.OWNER,
                User.disabled.is_(False),
            )
            .order_by(User.id)
            .with_for_update()
        )
        return list(rows.scalars())


class UserAdminService:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        caller: Principal,
        *,
        passwords: PasswordHasher,
        mailer: Mailer | None,
        audit: AuditWriter,
    ) -> None:
        self.session = session
        self.tenant = tenant
        self.caller = caller
        self.users = UserAdminRepository(session=session, tenant_id=tenant.id)
        self.passwords = passwords
        self.mailer = mailer
        self.audit = audit

    async def list_users(
        self, filters: UserFilters, *, limit: int, offset: int
    ) -> Page[AdminUserOut]:
        users, total = await self.users.page(filters, limit=limit, offset=offset)
        return Page(items=[user_out(u) for u in users], total=total, limit=limit, offset=offset)

    async def get_user(self, user_id: uuid.UUID) -> AdminUserOut:
        return user_out(await self._user(user_id))

    async def create_user(self, data: UserCreate) -> UserCreated:
        role = data.role
        self._may_manage(role)
        password_hash = (
            await self.passwords.hash(data.password) if data.password is not None else NO_PASSWORD
        )
        user = User(
            tenant_id=self.tenant.id,
            email=normalize_email(data.email),
            password_hash=password_hash,
            role=role,
            display_name=data.display_name,
        )
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise DomainError(
                ErrorCode.EMAIL_TAKEN, "an account with this email exists", field="email"
            ) from exc
        await self.session.refresh(user)
        await self._record("user.created", user, after=_audited(user))
        invitation = None
        if data.password is None:
            invitation = await invite(
                self.session,
                self.mailer,
                tenant_id=self.tenant.id,
                tenant_name=self.tenant.name,
                user_id=user.id,
                email=user.email,
            )
        return UserCreated(user=user_out(user), invitation=invitation)

    async def update_user(self, user_id: uuid.UUID, patch: UserPatch) -> AdminUserOut:
        user = await self._user(user_id, lock=True)
        before = _audited(user)
        self._may_manage(user.role)
        new_role = patch.role if patch.role is not msgspec.UNSET else user.role
        self._may_manage(new_role)
        disabling = patch.disabled is True and not user.disabled
        if user.role == Role.OWNER and (new_role != Role.OWNER or disabling):
            await self._keep_an_owner(user)
        ends_sessions = new_role != user.role or disabling  # (disabled users match no epoch)
        user.role = new_role
        if patch.disabled is not msgspec.UNSET:
            user.disabled = patch.disabled
        if patch.display_name is not msgspec.UNSET:
            user.display_name = patch.display_name
        user.updated_at = datetime.now(UTC)
        await self.session.flush()
        if ends_sessions:
            await end_sessions(self.session, self.tenant.id, user.id)
        await self.session.refresh(user)
        await self._record("user.updated", user, before=before, after=_audited(user))
        return user_out(user)

    async def delete_user(self, user_id: uuid.UUID) -> None:
        user = await self._user(user_id, lock=True)
        self._may_manage(user.role)
        if user.role == Role.OWNER:
            await self._keep_an_owner(user)
        await self._record("user.deleted", user, before=_audited(user))
        await self.session.delete(user)
        await self.session.flush()
        note_credential_change(self.session, "users", self.tenant.id, user.id)

    # -- rules -------------------------------------------------------------------------------

    def _may_manage(self, role: Role) -> None:
        if role in _PRIVILEGED and self.caller.role != Role.OWNER:
            raise DomainError(ErrorCode.OWNER_REQUIRED, f"only an owner manages {role}s")

    async def _keep_an_owner(self, leaving: User) -> None:
        owners = await self.users.lock_active_owners()
        if not leaving.disabled and [o for o in owners if o != leaving.id] == []:
            raise DomainError(ErrorCode.LAST_OWNER, "the tenant needs an active owner")

    async def _user(self, user_id: uuid.UUID, *, lock: bool = False) -> User:
        statement = select(User).where(User.tenant_id == self.tenant.id, User.id == user_id)
        if lock:
            statement = statement.with_for_update()
        user = (await self.session.execute(statement)).scalar_one_or_none()
        if user is None:
            raise DomainError(ErrorCode.USER_NOT_FOUND, f"no user {user_id}")
        return user

    async def _record(
        self,
        action: str,
        user: User,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self.audit.record(
            self.session,
            self.tenant.id,
            actor_of(self.caller),
            action,
            target_type="user",
            target_id=str(user.id),
            before=before,
            after=after,
        )
