from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.zones import TENANT_PUBLIC
from tenantry.tenancy.schemas import Branding


class PublicBranding(msgspec.Struct):
    slug: str
    name: str
    display_name: str
    primary_color: str
    accent_color: str
    logo_url: str | None
    support_email: str | None
    allow_signup: bool


class BrandingController(Controller):
    path = "/api/v1/branding"
    tags = ["branding"]
    opt = {"zone": TENANT_PUBLIC}

    @get("/")
    async def get_branding(self, tenant: NamedDependency[TenantRecord]) -> PublicBranding:
        """What a white-label front end needs to look like its tenant; no login required."""
        branding = msgspec.convert(tenant.branding, Branding)
        return PublicBranding(
            slug=tenant.slug,
            name=tenant.name,
            display_name=branding.display_name or tenant.name,
            primary_color=branding.primary_color,
            accent_color=branding.accent_color,
            logo_url=branding.logo_url,
            support_email=branding.support_email,
            allow_signup=bool(tenant.settings.get("allow_signup", False)),
        )
