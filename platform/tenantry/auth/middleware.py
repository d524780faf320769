"""AuthMiddleware: checks the bearer token a route's zone requires and sets `request.user`.

Runs after TenancyMiddleware. The token carries what guards need (subject, role, tenant); a
tenant token must name the request's tenant and carry its user's current epoch, which comes from
memory (`tenantry.auth.credentials`), not from a database read per request.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tenantry.auth.credentials import CredentialCache
from tenantry.auth.tokens import TokenIssuer, bearer_token, verified_tenant_claims
from tenantry.db.audit import Actor
from tenantry.db.enums import ActorType
from tenantry.db.tenant_scope import current_tenant_id
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.zones import PLATFORM, TENANT, route_zone


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller: a tenant user (with `tenant_id`) or a platform admin."""

    id: uuid.UUID
    role: str
    tenant_id: uuid.UUID | None


def actor_of(principal: Principal) -> Actor:
    """The audit log's name for the caller."""
    kind = ActorType.OPERATOR if principal.tenant_id is None else ActorType.USER
    return Actor(kind, principal.id)


class AuthMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    def __init__(self, tokens: TokenIssuer, credentials: CredentialCache) -> None:
        self._tokens = tokens
        self._credentials = credentials

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        zone = route_zone(scope)
        if zone in (TENANT, PLATFORM):
            claims = verified_tenant_claims.get() if zone == TENANT else None
            if claims is None:
                token = bearer_token(Headers.from_scope(scope).get("authorization"))
                if token is None:
                    raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
                claims = self._tokens.verify(token, "tenant" if zone == TENANT else "platform")
            if zone == TENANT:
                if claims.tid is None or claims.tid != current_tenant_id():
                    raise DomainError(
                        ErrorCode.INVALID_TOKEN, "the token is not valid for this tenant"
                    )
                if await self._credentials.user_epoch(claims.tid, claims.sub) != claims.ep:
                    raise DomainError(ErrorCode.INVALID_TOKEN, "the token was revoked")
            scope["user"] = Principal(id=claims.sub, role=claims.role, tenant_id=claims.tid)
            scope["auth"] = claims
        await next_app(scope, receive, send)
