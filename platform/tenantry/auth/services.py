"""Tenant and platform authentication rules: signup, login, refresh rotation, logout, me."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.credentials import note_credential_change
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.schemas import MeResponse, TenantSummary, TokenResponse
from tenantry.auth.tokens import TokenIssuer, hash_refresh_token, new_refresh_token
from tenantry.config import Settings
from tenantry.db.enums import Role, UsageKind
from tenantry.db.models import PlatformAdmin, RefreshToken, User
from tenantry.db.reads import TenantFunction, TenantReader
from tenantry.db.repository import TenantScopedRepository
from tenantry.db.tenant_scope import TenantRecord
from tenantry.db.usage import UsageRecorder
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.metrics import login_failures
from tenantry.lib.schemas import normalize_email

_ME = TenantFunction("tenant_me", 2)  # an enabled user's profile, one round trip


class UserRepository(TenantScopedRepository[User]):
    model_type = User


class RefreshTokenRepository(TenantScopedRepository[RefreshToken]):
    model_type = RefreshToken

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.tenant_id == self.tenant_id,
                RefreshToken.family_id == family_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        )


async def revoke_access_tokens(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Every live access token of the user fails from its next request on, on every replica
    (a new epoch; the trigger's NOTIFY tells the others)."""
    await session.execute(
        update(User)
        .where(User.tenant_id == tenant_id, User.id == user_id)
        .values(token_epoch=User.token_epoch + 1)
    )
    note_credential_change(session, "users", tenant_id, user_id)


async def end_sessions(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The user's live access tokens and every refresh token: signed out everywhere."""
    await revoke_access_tokens(session, tenant_id, user_id)
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )


class TenantAuthService:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        *,
        settings: Settings,
        tokens: TokenIssuer,
        passwords: PasswordHasher,
        reader: TenantReader,
        recorder: UsageRecorder,
    ) -> None:
        self.session = session
        self.reader = reader
        self.recorder = recorder
        self.tenant = tenant
        self.settings = settings
        self.tokens = tokens
        self.passwords = passwords
        self.users = UserRepository(session=session, tenant_id=tenant.id)
        self.refresh_tokens = RefreshTokenRepository(session=session, tenant_id=tenant.id)

    async def signup(self, email: str, password: str) -> None:
        """Makes the account unless the email has one; the caller answers alike either way (and
        the password is hashed either way), so signup never tells who is registered."""
        if not self.tenant.settings.get("allow_signup", False):
            raise DomainError(ErrorCode.SIGNUP_DISABLED, "this tenant does not allow self-signup")
        password_hash = await self.passwords.hash(password)
        role = Role(self.tenant.settings.get("signup_role", Role.VIEWER))
        created = await self.session.execute(
            insert(User)
            .values(
                tenant_id=self.tenant.id,
                email=normalize_email(email),
                password_hash=password_hash,
                role=role,
            )
            .on_conflict_do_nothing(index_elements=[User.tenant_id, User.email])
            .returning(User.id)
        )
        user_id = created.scalar_one_or_none()
        if user_id is not None:
            await self.recorder.record(
                self.session, self.tenant.id, UsageKind.SIGNUP, user_id=user_id, role=role
            )

    async def login(self, email: str, password: str) -> TokenResponse:
        user = await self.users.get_one_or_none(
            User.tenant_id == self.tenant.id, User.email == normalize_email(email)
        )
        # Ends the read (nothing is written yet): in a login storm a hash waits its turn for a
        # bcrypt thread for seconds, and must not hold one of the pool's few connections
        # while it waits (other tenants' requests need them).
        await self.session.commit()
        known = user is not None and not user.disabled
        if not await self.passwords.verify(
            password, user.password_hash if known and user else None
        ):
            login_failures.labels("tenant").inc()
            raise DomainError(ErrorCode.INVALID_CREDENTIALS)
        assert user is not None
        await self.record(user, UsageKind.LOGIN)
        return await self.start_session(user)

    async def refresh(self, refresh_token: str) -> TokenResponse:
        stored = (
            await self.session.execute(
                select(RefreshToken)
                .where(
                    RefreshToken.tenant_id == self.tenant.id,
                    RefreshToken.token_hash == hash_refresh_token(refresh_token),
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        now = datetime.now(UTC)
        if stored is None:
            raise DomainError(ErrorCode.INVALID_REFRESH_TOKEN, "unknown refresh token")
        if stored.rotated_at is not None or stored.revoked_at is not None:
            # A rotated token used again means it leaked: end every session of that family.
            await self.refresh_tokens.revoke_family(stored.family_id)
            await self.session.commit()
            raise DomainError(
                ErrorCode.REFRESH_TOKEN_REUSED, "refresh token reused; its sessions are revoked"
            )
        if stored.expires_at <= now:
            raise DomainError(ErrorCode.INVALID_REFRESH_TOKEN, "refresh token expired")
        user = await self.users.get_one_or_none(
            User.tenant_id == self.tenant.id, User.id == stored.user_id
        )
        if user is None or user.disabled:
            raise DomainError(ErrorCode.INVALID_REFRESH_TOKEN, "account disabled")
        stored.rotated_at = now
        return await self._issue(user, family_id=stored.family_id)

    async def logout(self, user_id: uuid.UUID, refresh_token: str | None) -> None:
        """Revoke the refresh token's family, or every session of the user without one (and
        then the user's live access tokens too: a new epoch)."""
        if refresh_token is None:
            await end_sessions(self.session, self.tenant.id, user_id)
            return
        family = select(RefreshToken.family_id).where(
            RefreshToken.tenant_id == self.tenant.id,
            RefreshToken.token_hash == hash_refresh_token(refresh_token),
        )
        await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.tenant_id == self.tenant.id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.family_id.in_(family.scalar_subquery()),
            )
            .values(revoked_at=datetime.now(UTC))
        )

    async def me(self, user_id: uuid.UUID) -> MeResponse:
        rows = await self.reader.call(_ME, self.tenant.id, user_id)
        if not rows:
            raise DomainError(ErrorCode.INVALID_TOKEN, "account not found or disabled")
        row = rows[0]
        tenant = TenantSummary(id=self.tenant.id, slug=self.tenant.slug, name=self.tenant.name)
        return MeResponse(
            id=row["id"],
            email=row["email"],
            role=row["role"],
            display_name=row["display_name"],
            tenant=tenant,
        )

    async def record(self, user: User, kind: UsageKind) -> None:
        """The usage event, written in the same transaction as the action."""
        await self.recorder.record(
            self.session, self.tenant.id, kind, user_id=user.id, role=user.role
        )

    async def start_session(self, user: User) -> TokenResponse:
        return await self._issue(user, family_id=uuid.uuid4())

    async def me_from_session(self, user: User) -> MeResponse:
        """The caller as this transaction sees them (their own changes included)."""
        tenant = TenantSummary(id=self.tenant.id, slug=self.tenant.slug, name=self.tenant.name)
        return MeResponse(
            id=user.id,
            email=user.email,
            role=user.role,
            display_name=user.display_name,
            tenant=tenant,
        )

    async def _issue(self, user: User, *, family_id: uuid.UUID) -> TokenResponse:
        refresh_token = new_refresh_token()
        self.session.add(
            RefreshToken(
                tenant_id=self.tenant.id,
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_refresh_token(refresh_token),
                expires_at=datetime.now(UTC)
                + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            )
        )
        await self.session.flush()
        access = self.tokens.issue(
            subject=user.id,
            role=user.role,
            audience="tenant",
            tenant_id=self.tenant.id,
            epoch=user.token_epoch,
        )
        return TokenResponse(
            access_token=access,
            token_type="bearer",
            expires_in=self.tokens.ttl_seconds,
            refresh_token=refresh_token,
        )


class PlatformAuthService:
    def __init__(
        self, session: AsyncSession, *, tokens: TokenIssuer, passwords: PasswordHasher
    ) -> None:
        self.session = session
        self.tokens = tokens
        self.passwords = passwords

    async def login(self, email: str, password: str) -> TokenResponse:
        admin = (
            await self.session.execute(
                select(PlatformAdmin).where(PlatformAdmin.email == normalize_email(email))
            )
        ).scalar_one_or_none()
        await self.session.commit()  # the read ends before the hash, as in the tenant login
        known = admin is not None and not admin.disabled
        if not await self.passwords.verify(
            password, admin.password_hash if known and admin else None
        ):
            login_failures.labels("platform").inc()
            raise DomainError(ErrorCode.INVALID_CREDENTIALS)
        assert admin is not None
        access = self.tokens.issue(
            subject=admin.id, role="platform_admin", audience="platform", tenant_id=None
        )
        return TokenResponse(
            access_token=access, token_type="bearer", expires_in=self.tokens.ttl_seconds
        )


async def upsert_platform_admin(
    session: AsyncSession, passwords: PasswordHasher, email: str, password: str
) -> bool:
    """Create the operator, or reset its password and enable it; True when it was created."""
    password_hash = await passwords.hash(password)
    email = normalize_email(email)
    admin = (
        await session.execute(select(PlatformAdmin).where(PlatformAdmin.email == email))
    ).scalar_one_or_none()
    if admin is None:
        session.add(PlatformAdmin(email=email, password_hash=password_hash))
        await session.flush()
        return True
    admin.password_hash = password_hash
    admin.disabled = False
    return False
