"""Route zones: which tenancy and authentication a route needs, set as `opt={"zone": ...}`.

The default is a tenant route that needs a tenant user's token, so forgetting the opt fails
closed.
"""

from __future__ import annotations

from typing import Final

from litestar.types import Scope

OPS: Final = "ops"  # health, metrics: no tenant, no token
PLATFORM_PUBLIC: Final = "platform_public"  # operator login
PLATFORM: Final = "platform"  # operator token, no tenant
TENANT_PUBLIC: Final = "tenant_public"  # tenant needed, no token (login, signup, branding)
TENANT: Final = "tenant"  # tenant and a token of that tenant


def route_zone(scope: Scope) -> str:
    handler = scope.get("route_handler")
    zone = handler.opt.get("zone", TENANT) if handler is not None else TENANT
    return str(zone)


def rate_bucket(scope: Scope) -> str:
    """Which of the tenant's rates a route spends: "auth" for what costs a password hash or a
    mail (login, signup, resets), "api" for everything else."""
    handler = scope.get("route_handler")
    return str(handler.opt.get("rate_bucket", "api")) if handler is not None else "api"


def zone_needs_tenant(zone: str) -> bool:
    return zone in (TENANT, TENANT_PUBLIC)
