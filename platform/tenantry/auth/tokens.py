"""Access tokens (JWT, HS256, pinned) and opaque refresh tokens (only their hash is stored)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from contextvars import ContextVar
from typing import Literal

import jwt
import msgspec

from tenantry.lib.errors import DomainError, ErrorCode

Audience = Literal["tenant", "platform"]
ALGORITHM = "HS256"
_REQUIRED = ["iss", "aud", "sub", "exp", "iat", "jti", "role"]


class AccessClaims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    role: str
    aud: Audience
    tid: uuid.UUID | None = None
    # The user's token epoch when issued (tenant tokens; see tenantry.auth.credentials).
    ep: int = 0


class TokenIssuer:
    def __init__(self, *, secret: str, issuer: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._issuer = issuer
        self.ttl_seconds = ttl_seconds

    def issue(
        self,
        *,
        subject: uuid.UUID,
        role: str,
        audience: Audience,
        tenant_id: uuid.UUID | None,
        epoch: int = 0,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self._issuer,
            "aud": audience,
            "sub": str(subject),
            "role": role,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if tenant_id is not None:
            claims["tid"] = str(tenant_id)
            claims["ep"] = epoch
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, audience: Audience) -> AccessClaims:
        """Signature, algorithm, issuer, audience and expiry; any failure is a 401."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self._issuer,
                options={"require": _REQUIRED},
                leeway=5,
            )
            claims = msgspec.convert(payload, AccessClaims, strict=False)
        except jwt.ExpiredSignatureError as exc:
            raise DomainError(ErrorCode.TOKEN_EXPIRED, "access token expired") from exc
        except (jwt.PyJWTError, msgspec.ValidationError) as exc:
            raise DomainError(ErrorCode.INVALID_TOKEN, "invalid access token") from exc
        if (audience == "tenant") != (claims.tid is not None):
            raise DomainError(ErrorCode.INVALID_TOKEN, "invalid access token")
        return claims

    def try_verify(self, token: str, audience: Audience) -> AccessClaims | None:
        """The claims of a valid token, or None for any token that would not verify."""
        try:
            return self.verify(token, audience)
        except DomainError:
            return None


# A tenant token verified once per request (by TenancyMiddleware, which needs its tenant);
# AuthMiddleware reuses it instead of checking the signature a second time.
verified_tenant_claims: ContextVar[AccessClaims | None] = ContextVar(
    "verified_tenant_claims", default=None
)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
