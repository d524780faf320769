"""Who a request is from: the bearer credential a route's zone requires, checked.

The request's one access pass (`tenantry.tenancy.middleware`) asks here once it knows the
tenant, and sets `request.user` to the answer. The token carries what guards need (subject,
role, tenant); a tenant token must name the request's tenant and carry its user's current epoch,
which comes from memory (`tenantry.auth.credentials`), not from a database read per request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

from tenantry.auth.api_keys import ApiKeyHasher, KeyUseRecorder, is_api_key, parse_api_key
from tenantry.auth.credentials import CredentialCache
from tenantry.auth.tokens import AccessClaims, TokenIssuer
from tenantry.db.audit import Actor
from tenantry.db.enums import ActorType
from tenantry.lib.errors import DomainError, ErrorCode


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller: a tenant user or API key (with `tenant_id`), or an operator."""

    id: uuid.UUID
    role: str
    tenant_id: uuid.UUID | None
    kind: Literal["user", "api_key", "operator"] = "user"

    @property
    def user_id(self) -> uuid.UUID | None:
        """The tenant user acting (None for an API key): uploader, usage events."""
        return self.id if self.kind == "user" else None


_ACTORS = {"user": ActorType.USER, "api_key": ActorType.API_KEY, "operator": ActorType.OPERATOR}


def actor_of(principal: Principal) -> Actor:
    """The audit log's name for the caller."""
    return Actor(_ACTORS[principal.kind], principal.id)


class Authenticator:
    def __init__(
        self,
        tokens: TokenIssuer,
        credentials: CredentialCache,
        key_hasher: ApiKeyHasher,
        key_uses: KeyUseRecorder,
    ) -> None:
        self._tokens = tokens
        self._credentials = credentials
        self._key_hasher = key_hasher
        self._key_uses = key_uses

    def operator(self, token: str | None) -> Principal:
        if token is None:
            raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
        claims = self._tokens.verify(token, "platform")
        return Principal(claims.sub, claims.role, None, "operator")

    async def tenant_member(
        self, token: str | None, claims: AccessClaims | None, tenant_id: uuid.UUID | None
    ) -> Principal:
        """The tenant's user or API key; `claims` are the token's when already verified."""
        if claims is None:
            if token is None:
                raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
            if is_api_key(token):
                return await self._key_principal(token, tenant_id)
            claims = self._tokens.verify(token, "tenant")  # raises: why it did not verify
        if claims.tid is None or claims.tid != tenant_id:
            raise DomainError(ErrorCode.INVALID_TOKEN, "the token is not valid for this tenant")
        if await self._credentials.user_epoch(claims.tid, claims.sub) != claims.ep:
            raise DomainError(ErrorCode.INVALID_TOKEN, "the token was revoked")
        return Principal(claims.sub, claims.role, claims.tid)

    async def _key_principal(self, token: str, tenant_id: uuid.UUID | None) -> Principal:
        key = parse_api_key(token)
        record = (
            await self._credentials.api_key(key.tenant_id, key.key_id)
            if key is not None and key.tenant_id == tenant_id
            else None
        )
        if (
            key is None
            or record is None
            or not self._key_hasher.matches(key, record.secret_hash)
            or (record.expires_at is not None and record.expires_at <= datetime.now(UTC))
        ):
            raise DomainError(ErrorCode.INVALID_TOKEN, "the API key is unknown, revoked or expired")
        self._key_uses.used(key.tenant_id, key.key_id)
        return Principal(key.key_id, record.role, key.tenant_id, "api_key")
