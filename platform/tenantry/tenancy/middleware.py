"""TenancyMiddleware: find the request's tenant before anything else runs.

Order: the host (`{slug}.{base_domain}` or a verified custom domain); else the bearer token's
`tid`; else `X-Tenant`, only on public tenant routes. Host and token naming different tenants is
403 `tenant_mismatch`; an unknown host or tenant is 404 `unknown_tenant`; a suspended tenant is
403 `tenant_suspended`. Routes opt out with `opt={"zone": ...}` (see `tenantry.tenancy.zones`).
"""

from __future__ import annotations

import structlog
from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tenantry.auth.tokens import AccessClaims, bearer_token, verified_tenant_claims
from tenantry.lib.errors import Forbidden, NotFound
from tenantry.runtime import AppServices
from tenantry.tenancy.context import TenantRecord, current_tenant
from tenantry.tenancy.zones import TENANT_PUBLIC, route_zone, zone_needs_tenant


class UnknownTenant(NotFound):
    code = "unknown_tenant"
    title = "Unknown tenant"


class TenantMismatch(Forbidden):
    code = "tenant_mismatch"
    title = "Token belongs to another tenant"


class TenantSuspended(Forbidden):
    code = "tenant_suspended"
    title = "Tenant suspended"


class TenancyMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        zone = route_zone(scope)
        if not zone_needs_tenant(zone):
            await next_app(scope, receive, send)
            return
        services = AppServices.of(scope)
        headers = Headers.from_scope(scope)
        token = bearer_token(headers.get("authorization"))
        claims = services.tokens.try_verify(token, "tenant") if token else None
        tenant = await resolve_tenant(
            scope, headers, services, claims, public=zone == TENANT_PUBLIC
        )
        if tenant is not None and tenant.status == "suspended":
            raise TenantSuspended(f"tenant '{tenant.slug}' is suspended")
        tenant_token = current_tenant.set(tenant)
        claims_token = verified_tenant_claims.set(claims)
        if tenant is not None:
            structlog.contextvars.bind_contextvars(tenant_id=str(tenant.id))
        try:
            await next_app(scope, receive, send)
        finally:
            verified_tenant_claims.reset(claims_token)
            current_tenant.reset(tenant_token)


async def resolve_tenant(
    scope: Scope,
    headers: Headers,
    services: AppServices,
    claims: AccessClaims | None,
    *,
    public: bool,
) -> TenantRecord | None:
    """The tenant of the host, else of the verified token, else (public routes) `X-Tenant`."""
    settings = services.settings
    host = request_host(scope, headers, settings.trusted_proxies)
    cache = services.tenant_cache

    host_tenant: TenantRecord | None = None
    if host and host not in settings.shared_hosts and host != settings.base_domain:
        suffix = "." + settings.base_domain
        if host.endswith(suffix) and "." not in host[: -len(suffix)]:
            host_tenant = await cache.by_slug(host[: -len(suffix)])
        else:
            host_tenant = await cache.by_domain(host)
        if host_tenant is None:
            raise UnknownTenant(f"no tenant serves host '{host}'")

    token_tenant_id = claims.tid if claims else None
    if host_tenant is not None:
        if token_tenant_id is not None and token_tenant_id != host_tenant.id:
            raise TenantMismatch("the token was issued by another tenant than this host's")
        return host_tenant
    if token_tenant_id is not None:
        tenant = await cache.by_id(token_tenant_id)
        if tenant is None:
            raise UnknownTenant("the token's tenant no longer exists")
        return tenant
    slug = headers.get("x-tenant")
    if public and slug:
        tenant = await cache.by_slug(slug.strip().lower())
        if tenant is None:
            raise UnknownTenant(f"no tenant '{slug}'")
        return tenant
    if public:
        raise UnknownTenant(
            "no tenant: call the tenant's host, or send X-Tenant on a shared host",
            code="tenant_required",
        )
    return None  # a protected route: authentication answers 401


def request_host(scope: Scope, headers: Headers, trusted_proxies: tuple[str, ...]) -> str:
    """The Host (or X-Forwarded-Host from a trusted proxy), lowercased, without port or dot."""
    host = headers.get("host", "")
    forwarded = headers.get("x-forwarded-host")
    client = scope.get("client")
    if forwarded and client and client[0] in trusted_proxies:
        host = forwarded.split(",")[0]
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, keep the brackets
        return host.split("]")[0] + "]"
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".")
