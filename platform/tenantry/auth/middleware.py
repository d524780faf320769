"""AuthMiddleware: checks the bearer token a route's zone requires and sets `request.user`.

Runs after TenancyMiddleware. The token carries what guards need (subject, role, tenant); a
tenant token must name the request's tenant and carry its user's current epoch, which comes from
memory (`tenantry.auth.credentials`), not from a database read per request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec
from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tenantry.auth.api_keys import ApiKeyHasher, KeyUseRecorder, is_api_key, parse_api_key
from tenantry.auth.credentials import CredentialCache
from tenantry.auth.tokens import TokenIssuer, bearer_token, verified_tenant_claims
from tenantry.db.audit import Actor
from tenantry.db.enums import ActorType
from tenantry.db.tenant_scope import current_tenant_id
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.zones import PLATFORM, TENANT, route_zone


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


class AuthMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

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

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        zone = route_zone(scope)
        if zone == TENANT:
            scope["user"] = await self._tenant_principal(scope)
        elif zone == PLATFORM:
            token = bearer_token(Headers.from_scope(scope).get("authorization"))
            if token is None:
                raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
            claims = self._tokens.verify(token, "platform")
            scope["user"] = Principal(claims.sub, claims.role, None, "operator")
        await next_app(scope, receive, send)

    async def _tenant_principal(self, scope: Scope) -> Principal:
        tenant_id = current_tenant_id()
        claims = verified_tenant_claims.get()
        if claims is None:
            token = bearer_token(Headers.from_scope(scope).get("authorization"))
            if token is None:
                raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
            if is_api_key(token):
                return await self._key_principal(token, tenant_id)
            claims = self._tokens.verify(token, "tenant")
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
