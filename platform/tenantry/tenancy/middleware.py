"""AccessMiddleware: the request's one pass before its handler: tenant, rate, CORS, caller.

1. The tenant. Order: the host (`{slug}.{base_domain}` or a verified custom domain); else the
   bearer token's `tid`; else `X-Tenant`, only on public tenant routes. Host and token naming
   different tenants is 403 `tenant_mismatch`; an unknown host or tenant is 404
   `unknown_tenant`; a suspended tenant is 403 `tenant_suspended`. Routes opt out with
   `opt={"zone": ...}` (see `tenantry.lib.zones`).
2. The tenant's request rate is spent (429 `rate_limited` beyond its plan's: tenancy.limits),
   before any handler or guard does work for it.
3. CORS (`tenancy.cors`): a preflight is answered here, before authentication.
4. The caller (`auth.principals`), as the route's zone requires, into `request.user`.

One middleware rather than one per step: each layer of Litestar's costs a call chain and a
headers parse per request, and the steps share what they read (the headers, the token verified
once to find the tenant).
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tenantry.auth.api_keys import is_api_key, parse_api_key
from tenantry.auth.principals import Authenticator
from tenantry.auth.tokens import TokenIssuer, bearer_token
from tenantry.db.enums import TenantStatus
from tenantry.db.tenant_scope import TenantRecord, current_tenant
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.http import is_valid_host, request_host
from tenantry.lib.logging import bind_request_context
from tenantry.lib.zones import (
    PLATFORM,
    TENANT,
    TENANT_PUBLIC,
    rate_bucket,
    route_zone,
    zone_needs_tenant,
)
from tenantry.tenancy.cache import TenantCache
from tenantry.tenancy.cors import CorsPolicy
from tenantry.tenancy.limits import RateLimiter, RequestBucket

MAX_SLUG_HEADER = 63


def bind_log_tenant(tenant: TenantRecord) -> None:
    """Every later log line of the request (its access line too) names the tenant."""
    bind_request_context(tenant_id=str(tenant.id), tenant=tenant.slug)


class TenantResolver:
    """Which tenant a request is for, from its host, its verified token or `X-Tenant`."""

    def __init__(
        self,
        cache: TenantCache,
        *,
        base_domain: str,
        shared_hosts: tuple[str, ...],
        trusted_proxies: tuple[str, ...],
    ) -> None:
        self._cache = cache
        self._base_domain = base_domain
        self._suffix = "." + base_domain
        self._shared_hosts = shared_hosts
        self._trusted_proxies = trusted_proxies

    async def host_tenant(self, scope: Scope, headers: Headers) -> TenantRecord | None:
        """The tenant the host names; None on a shared host. Unknown hosts are 404."""
        host = request_host(scope, headers, self._trusted_proxies)
        if not host or host in self._shared_hosts or host == self._base_domain:
            return None
        if not is_valid_host(host):
            raise DomainError(ErrorCode.INVALID_HOST, "the Host header is not a host name")
        if host.endswith(self._suffix) and "." not in host[: -len(self._suffix)]:
            tenant = await self._cache.by_slug(host[: -len(self._suffix)])
        else:
            tenant = await self._cache.by_domain(host)
        if tenant is None:
            raise DomainError(ErrorCode.UNKNOWN_TENANT, f"no tenant serves host '{host}'")
        return tenant

    async def resolve(
        self, scope: Scope, headers: Headers, token_tenant_id: uuid.UUID | None, *, public: bool
    ) -> TenantRecord | None:
        """The tenant of the host, else of the credential (a verified token's, or the one an API
        key names, which authentication then checks), else (public routes) `X-Tenant`."""
        host_tenant = await self.host_tenant(scope, headers)
        if host_tenant is not None:
            if token_tenant_id is not None and token_tenant_id != host_tenant.id:
                bind_log_tenant(host_tenant)  # the refusal's log line names the host's tenant
                raise DomainError(
                    ErrorCode.TENANT_MISMATCH,
                    "the token was issued by another tenant than this host's",
                )
            return host_tenant
        if token_tenant_id is not None:
            tenant = await self._cache.by_id(token_tenant_id)
            if tenant is None:
                raise DomainError(ErrorCode.UNKNOWN_TENANT, "the token's tenant no longer exists")
            return tenant
        slug = (headers.get("x-tenant") or "").strip().lower()
        if public and slug:
            tenant = await self._cache.by_slug(slug) if len(slug) <= MAX_SLUG_HEADER else None
            if tenant is None:
                raise DomainError(ErrorCode.UNKNOWN_TENANT, f"no tenant '{slug[:MAX_SLUG_HEADER]}'")
            return tenant
        if public:
            raise DomainError(
                ErrorCode.TENANT_REQUIRED,
                "no tenant: call the tenant's host, or send X-Tenant on a shared host",
            )
        return None  # a protected route: authentication answers 401

    async def serves(
        self, connection: ASGIConnection[Any, Any, Any, Any], tenant_id: uuid.UUID
    ) -> bool:
        """Whether this request may open an object of `tenant_id`: the tenant is active, and the
        host is a shared one or that tenant's own (the gate of signed links)."""
        try:
            host_tenant = await self.host_tenant(connection.scope, connection.headers)
        except DomainError:
            return False
        if host_tenant is not None and host_tenant.id != tenant_id:
            return False
        tenant = host_tenant or await self._cache.by_id(tenant_id)
        return tenant is not None and tenant.status == TenantStatus.ACTIVE


class AccessMiddleware(ASGIMiddleware):
    """Stateless: what it asks is fixed at start-up; the tenant of a request lives in its
    ContextVar only while the request runs."""

    scopes = ("http",)  # type: ignore[assignment]

    def __init__(
        self,
        resolver: TenantResolver,
        tokens: TokenIssuer,
        limiter: RateLimiter,
        cors: CorsPolicy,
        authenticator: Authenticator,
    ) -> None:
        self._resolver = resolver
        self._tokens = tokens
        self._limiter = limiter
        self._cors = cors
        self._authenticator = authenticator

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        zone = route_zone(scope)
        if not zone_needs_tenant(zone):
            if zone == PLATFORM:
                token = bearer_token(Headers.from_scope(scope).get("authorization"))
                scope["user"] = self._authenticator.operator(token)
            await next_app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        token = bearer_token(headers.get("authorization"))
        claims, credential_tenant = None, None
        if token and is_api_key(token):
            key = parse_api_key(token)
            credential_tenant = key.tenant_id if key else None
        elif token:
            claims = self._tokens.try_verify(token, "tenant")
            credential_tenant = claims.tid if claims else None
        tenant = await self._resolver.resolve(
            scope, headers, credential_tenant, public=zone == TENANT_PUBLIC
        )
        if tenant is not None and tenant.status == TenantStatus.SUSPENDED:
            raise DomainError(ErrorCode.TENANT_SUSPENDED, f"tenant '{tenant.slug}' is suspended")
        tenant_token = current_tenant.set(tenant)
        try:
            if tenant is not None:
                bind_log_tenant(tenant)
                await self._limiter.admit(tenant, cast("RequestBucket", rate_bucket(scope)))
                answer = await self._cors.apply(scope, headers, tenant, send)
                if answer is None:  # a preflight, answered
                    return
                send = answer
            if zone == TENANT:
                tenant_id = tenant.id if tenant is not None else None
                scope["user"] = await self._authenticator.tenant_member(token, claims, tenant_id)
            await next_app(scope, receive, send)
        finally:
            current_tenant.reset(tenant_token)
