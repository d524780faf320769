"""A user's own account: accepting an invitation, a forgotten password, a new password, the
display name. Each of these that changes credentials ends the user's other sessions."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import func, select

from tenantry.auth.one_time import (
    NO_PASSWORD,
    check_user_token,
    issue_user_token,
    redeem_user_token,
)
from tenantry.auth.schemas import MeResponse, TokenResponse
from tenantry.auth.services import TenantAuthService, end_sessions
from tenantry.db.enums import UsageKind, UserTokenPurpose
from tenantry.db.models import User
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.mail import Mail, Mailer, MailUnavailable
from tenantry.lib.schemas import normalize_email

logger = structlog.get_logger("tenantry.auth")


class AccountService:
    def __init__(self, auth: TenantAuthService, mailer: Mailer | None) -> None:
        self.auth = auth
        self.session = auth.session
        self.tenant = auth.tenant
        self.mailer = mailer

    async def accept_invitation(self, token: str, password: str) -> TokenResponse:
        """Sets the invited user's password and signs them in."""
        password_hash = await self._hash_for(token, UserTokenPurpose.INVITATION, password)
        user = await self._user(
            await redeem_user_token(
                self.session, self.tenant.id, token, UserTokenPurpose.INVITATION
            )
        )
        user.password_hash = password_hash
        await self.auth.record(user, UsageKind.LOGIN)
        return await self.auth.start_session(user)

    async def forgot_password(self, email: str) -> None:
        """Mails a reset token to an active user; the answer is the same for every email."""
        user = (
            await self.session.execute(
                select(User).where(
                    User.tenant_id == self.tenant.id,
                    User.email == normalize_email(email),
                    User.disabled.is_(False),
                    User.password_hash != NO_PASSWORD,
                )
            )
        ).scalar_one_or_none()
        if user is None:
            return
        if self.mailer is None:
            # A token handed to whoever asked would be the account: without mail, admins
            # reset passwords (or invite again) instead.
            logger.warning("password_reset_without_mail", user_id=str(user.id))
            return
        token = await issue_user_token(
            self.session, self.tenant.id, user.id, UserTokenPurpose.PASSWORD_RESET
        )
        try:
            await self.mailer.send(
                Mail(
                    to=user.email,
                    subject=f"Reset your {self.tenant.name} password",
                    text=(
                        "Someone (hopefully you) asked to reset your password.\n\n"
                        f"Your reset token (valid for one hour, once):\n\n    {token}\n\n"
                        "Use it: POST /api/v1/auth/reset-password "
                        '{"token": ..., "password": ...}\n'
                        "If it was not you, ignore this message.\n"
                    ),
                )
            )
        except MailUnavailable:
            # Saying so would tell who has an account; the user can ask again.
            logger.exception("password_reset_mail_failed", user_id=str(user.id))

    async def reset_password(self, token: str, password: str) -> None:
        password_hash = await self._hash_for(token, UserTokenPurpose.PASSWORD_RESET, password)
        user = await self._user(
            await redeem_user_token(
                self.session, self.tenant.id, token, UserTokenPurpose.PASSWORD_RESET
            )
        )
        user.password_hash = password_hash
        await end_sessions(self.session, self.tenant.id, user.id)

    async def change_password(self, user_id: uuid.UUID, current: str, new: str) -> TokenResponse:
        """Needs the current password; every other session ends, this one gets new tokens."""
        current_hash = (await self._user(user_id, lock=False)).password_hash
        await self.session.commit()  # no transaction open while the hashes wait: see login
        if not await self.auth.passwords.verify(current, current_hash or None):
            raise DomainError(ErrorCode.INVALID_PASSWORD, field="current_password")
        new_hash = await self.auth.passwords.hash(new, "new_password")
        user = await self._user(user_id)
        if user.password_hash != current_hash:
            raise DomainError(ErrorCode.CONCURRENT_CHANGE, "the password changed meanwhile")
        user.password_hash = new_hash
        await end_sessions(self.session, self.tenant.id, user.id)
        await self.session.refresh(user)
        return await self.auth.start_session(user)

    async def rename(self, user_id: uuid.UUID, display_name: str | None) -> MeResponse:
        user = await self._user(user_id)
        user.display_name = display_name
        user.updated_at = func.now()
        await self.session.flush()
        return await self.auth.me_from_session(user)

    async def _hash_for(self, token: str, purpose: UserTokenPurpose, password: str) -> str:
        """The new password's hash, made once the token is known good and with no transaction
        open: a hash waits its turn for a bcrypt thread, and must hold no connection meanwhile
        (TenantAuthService.login). The token is spent after, with the new hash."""
        await check_user_token(self.session, self.tenant.id, token, purpose)
        await self.session.commit()
        return await self.auth.passwords.hash(password)

    async def _user(self, user_id: uuid.UUID, *, lock: bool = True) -> User:
        """The enabled user, read fresh; locked for this transaction unless told not to."""
        query = select(User).where(
            User.tenant_id == self.tenant.id, User.id == user_id, User.disabled.is_(False)
        )
        user = (
            await self.session.execute(
                query.with_for_update() if lock else query,
                execution_options={"populate_existing": True},
            )
        ).scalar_one_or_none()
        if user is None:  # disabled or deleted since the token or link was made
            raise DomainError(ErrorCode.TOKEN_NOT_FOUND, "no such account")
        return user
