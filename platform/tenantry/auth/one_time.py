"""One-time tokens sent to users: invitations (7 days) and password resets (1 hour).

The token is random (256 bits) and only its SHA-256 is stored, per tenant: a token redeemed on
another tenant's host finds nothing, exactly like one that never existed. Issuing a new token
of a purpose retires the user's earlier unused ones; redeeming locks the row, so a token is
used once even by two concurrent requests.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.enums import UserTokenPurpose
from tenantry.db.models import UserToken
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.mail import Mail, Mailer, MailUnavailable

LIFETIMES = {
    UserTokenPurpose.INVITATION: timedelta(days=7),
    UserTokenPurpose.PASSWORD_RESET: timedelta(hours=1),
}
# No password set yet (an invited user): no password matches it.
NO_PASSWORD = ""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_user_token(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, purpose: UserTokenPurpose
) -> str:
    now = datetime.now(UTC)
    await session.execute(
        update(UserToken)
        .where(
            UserToken.tenant_id == tenant_id,
            UserToken.user_id == user_id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserToken(
            tenant_id=tenant_id,
            user_id=user_id,
            purpose=purpose,
            token_hash=_hash(token),
            expires_at=now + LIFETIMES[purpose],
        )
    )
    await session.flush()
    return token


async def redeem_user_token(
    session: AsyncSession, tenant_id: uuid.UUID, token: str, purpose: UserTokenPurpose
) -> uuid.UUID:
    """The user the token was for; the token is spent. Unknown, used, expired, another
    purpose's or another tenant's: 404 `token_not_found`, all alike."""
    found = await _valid_token(session, tenant_id, token, purpose, lock=True)
    found.used_at = datetime.now(UTC)
    return found.user_id


async def check_user_token(
    session: AsyncSession, tenant_id: uuid.UUID, token: str, purpose: UserTokenPurpose
) -> None:
    """What `redeem_user_token` would refuse, refused now, with nothing locked or spent."""
    await _valid_token(session, tenant_id, token, purpose, lock=False)


async def _valid_token(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    token: str,
    purpose: UserTokenPurpose,
    *,
    lock: bool,
) -> UserToken:
    query = select(UserToken).where(
        UserToken.tenant_id == tenant_id,
        UserToken.token_hash == _hash(token),
        UserToken.purpose == purpose,
    )
    found = (
        await session.execute(
            query.with_for_update().execution_options(populate_existing=True) if lock else query
        )
    ).scalar_one_or_none()
    if found is None or found.used_at is not None or found.expires_at <= datetime.now(UTC):
        raise DomainError(ErrorCode.TOKEN_NOT_FOUND, "unknown, used or expired token")
    return found


class Invitation(msgspec.Struct, kw_only=True, omit_defaults=True):
    expires_at: datetime
    mailed: bool
    # Only when no mail went out: shown this once, never stored in clear.
    token: str | None = None


async def invite(
    session: AsyncSession,
    mailer: Mailer | None,
    *,
    tenant_id: uuid.UUID,
    tenant_name: str,
    user_id: uuid.UUID,
    email: str,
) -> Invitation:
    """A new invitation for the user: mailed when there is a mailer (a mail server that fails
    is 503 and the caller's transaction rolls back), otherwise handed back once."""
    token = await issue_user_token(session, tenant_id, user_id, UserTokenPurpose.INVITATION)
    expires_at = datetime.now(UTC) + LIFETIMES[UserTokenPurpose.INVITATION]
    if mailer is None:
        return Invitation(expires_at=expires_at, mailed=False, token=token)
    await send_or_unavailable(
        mailer,
        Mail(
            to=email,
            subject=f"You are invited to {tenant_name}",
            text=(
                f"You have been invited to {tenant_name}.\n\n"
                f"Your invitation token (valid for 7 days, once):\n\n    {token}\n\n"
                "Set your password with it: POST /api/v1/auth/accept-invite "
                '{"token": ..., "password": ...}\n'
            ),
        ),
    )
    return Invitation(expires_at=expires_at, mailed=True)


async def send_or_unavailable(mailer: Mailer, mail: Mail) -> None:
    try:
        await mailer.send(mail)
    except MailUnavailable as exc:
        raise DomainError(ErrorCode.MAIL_UNAVAILABLE, "the mail server did not take it") from exc
