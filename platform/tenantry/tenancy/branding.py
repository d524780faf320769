"""A tenant's brand as the public sees it: the document white-label front ends read, and the
uploaded logo (its object, its URL and how both are cached).

Both answers are public and cacheable, yet differ per tenant: on a tenant's host the URL says
which tenant, on a shared host `X-Tenant` or the bearer token does, hence `Vary`. The logo's URL
carries its version (`?v=`, from its sha256), so caches may keep a versioned logo for a day; an
old or missing version gets the current bytes with a short lifetime.
"""

from __future__ import annotations

import base64
import uuid

import msgspec
from litestar import Response

from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.http import etag_matches, strong_etag
from tenantry.storage import ObjectStore, branding_key
from tenantry.storage.protocol import MiB
from tenantry.tenancy.schemas import SVG, LogoInfo, StoredBranding, ThemeOut, stored_branding

LOGO_PATH = "/api/v1/branding/logo"
MAX_LOGO_BYTES = 1 * MiB
BRANDING_MAX_AGE = 60
LOGO_MAX_AGE = 86_400
STALE_LOGO_MAX_AGE = 60
VARY = "X-Tenant, Authorization"
# An SVG opened by itself is a document: it may run nothing and load nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


class PublicBranding(msgspec.Struct):
    slug: str
    name: str
    display_name: str
    primary_color: str
    accent_color: str
    # Absolute: the uploaded logo on the origin the client called, else the operator's URL.
    logo_url: str | None
    support_email: str | None
    theme: ThemeOut
    allow_signup: bool


def logo_key(tenant_id: uuid.UUID) -> str:
    return branding_key(tenant_id, "logo")


def logo_url(origin: str, logo: LogoInfo) -> str:
    return f"{origin}{LOGO_PATH}?v={logo.version}"


def public_branding(tenant: TenantRecord, origin: str) -> tuple[bytes, dict[str, str]]:
    """The branding document as JSON, with its caching headers (a strong ETag over it)."""
    branding = stored_branding(tenant.branding)
    document = PublicBranding(
        slug=tenant.slug,
        name=tenant.name,
        display_name=branding.display_name or tenant.name,
        primary_color=branding.primary_color,
        accent_color=branding.accent_color,
        logo_url=logo_url(origin, branding.logo) if branding.logo else branding.logo_url,
        support_email=branding.support_email,
        theme=branding.theme,
        allow_signup=bool(tenant.settings.get("allow_signup", False)),
    )
    body = msgspec.json.encode(document)
    headers = {
        "ETag": strong_etag(body),
        "Cache-Control": f"public, max-age={BRANDING_MAX_AGE}",
        "Vary": VARY,
    }
    return body, headers


def current_logo(tenant: TenantRecord) -> LogoInfo:
    logo = stored_branding(tenant.branding).logo
    if logo is None:
        raise DomainError(ErrorCode.LOGO_NOT_FOUND, "the tenant has no uploaded logo")
    return logo


def logo_headers(logo: LogoInfo, version: str | None) -> dict[str, str]:
    max_age = LOGO_MAX_AGE if version == logo.version else STALE_LOGO_MAX_AGE
    headers = {
        "ETag": f'"{logo.sha256}"',
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": VARY,
        "X-Content-Type-Options": "nosniff",
    }
    if logo.content_type == SVG:
        headers["Content-Security-Policy"] = SVG_POLICY
    return headers


def not_modified(if_none_match: str | None, headers: dict[str, str]) -> Response[bytes] | None:
    """304 with the representation's headers when the client holds the current one."""
    if etag_matches(if_none_match, headers["ETag"]):
        return Response(b"", status_code=304, headers=headers)
    return None


async def logo_bytes(store: ObjectStore, tenant_id: uuid.UUID) -> bytes:
    data = await _read_logo(store, tenant_id)
    if data is None:  # recorded, but its object is gone: there is no logo to show
        raise DomainError(ErrorCode.LOGO_NOT_FOUND, "the tenant's logo is missing from the store")
    return data


async def logo_data_uri(
    store: ObjectStore, tenant_id: uuid.UUID, branding: StoredBranding
) -> str | None:
    """The uploaded logo inlined (`data:`), for pages that load nothing; None without one."""
    data = await _read_logo(store, tenant_id) if branding.logo else None
    if branding.logo is None or data is None:
        return None
    return f"data:{branding.logo.content_type};base64,{base64.b64encode(data).decode('ascii')}"


async def _read_logo(store: ObjectStore, tenant_id: uuid.UUID) -> bytes | None:
    return await store.read(logo_key(tenant_id), max_bytes=MAX_LOGO_BYTES)
