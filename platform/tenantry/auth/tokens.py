"""Access tokens (JWT, HS256, pinned) and opaque refresh tokens (only their hash is stored).

PyJWT issues the tokens. They are verified here, on every request: the HMAC key is prepared
once (each check copies its state), the header and the claims decode straight into Structs, and
only what we issue is accepted (HS256 in the header, every claim we set present and typed, one
audience). PyJWT re-reads the key and decodes the JSON twice per token; on the hottest path of
every request that was about a seventh of the work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Literal

import jwt
import msgspec

from tenantry.lib.errors import DomainError, ErrorCode

Audience = Literal["tenant", "platform"]
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
_BASE64URL = str.maketrans("-_", "+/")


class AccessClaims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    role: str
    aud: Audience
    tid: uuid.UUID | None = None
    # The user's token epoch when issued (tenant tokens; see tenantry.auth.credentials).
    ep: int = 0


class _Header(msgspec.Struct):
    alg: str


class _Payload(msgspec.Struct, frozen=True):
    """What a token we issued carries: every claim required, with its type."""

    iss: str
    aud: str
    sub: uuid.UUID
    exp: int
    iat: int
    jti: str
    role: str
    tid: uuid.UUID | None = None
    ep: int = 0
    nbf: int | None = None


_HEADER = msgspec.json.Decoder(_Header)
_PAYLOAD = msgspec.json.Decoder(_Payload)


def _base64url(text: str) -> bytes:
    """Strict: a character outside the alphabet is an error, not skipped."""
    return base64.b64decode(text.translate(_BASE64URL) + "=" * (-len(text) % 4), validate=True)


class TokenIssuer:
    def __init__(self, *, secret: str, issuer: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
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
            header, payload, signature = token.encode("ascii").split(b".")
            mac = self._mac.copy()
            mac.update(header + b"." + payload)
            if not hmac.compare_digest(mac.digest(), _base64url(signature.decode())):
                raise _invalid()
            if _HEADER.decode(_base64url(header.decode())).alg != ALGORITHM:
                raise _invalid()
            claims = _PAYLOAD.decode(_base64url(payload.decode()))
        except (ValueError, binascii.Error, msgspec.DecodeError) as exc:  # malformed
            raise _invalid() from exc
        now = time.time()
        if claims.exp <= now - LEEWAY_SECONDS:
            raise DomainError(ErrorCode.TOKEN_EXPIRED, "access token expired")
        if (
            claims.iss != self._issuer
            or claims.aud != audience
            or claims.iat > now + LEEWAY_SECONDS
            or (claims.nbf is not None and claims.nbf > now + LEEWAY_SECONDS)
            or (audience == "tenant") != (claims.tid is not None)
        ):
            raise _invalid()
        return AccessClaims(claims.sub, claims.role, audience, claims.tid, claims.ep)

    def try_verify(self, token: str, audience: Audience) -> AccessClaims | None:
        """The claims of a valid token, or None for any token that would not verify."""
        try:
            return self.verify(token, audience)
        except DomainError:
            return None


def _invalid() -> DomainError:
    return DomainError(ErrorCode.INVALID_TOKEN, "invalid access token")


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
