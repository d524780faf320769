"""A tenant's admins manage its brand: the plain values (names, colours, support email, theme)
and the uploaded logo.

The app role may only read `tenants`, so changes go through the platform engine, always with
`WHERE id = <the request's tenant>`, in one transaction with their audit row; committing it
clears this replica's tenant cache and the `tenants` trigger's NOTIFY clears the others'.
Every change first locks the tenant's row (`FOR NO KEY UPDATE`, which inserts into the tenant's
tables referencing it do not wait for), so concurrent changes apply one after the other. The
logo's object is written or removed under that lock, before the commit: two uploads cannot
leave one's bytes under the other's record.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.status_codes import HTTP_204_NO_CONTENT
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.logo import LOGO_TYPES, accept_logo
from tenantry.auth.guards import requires_role
from tenantry.auth.principals import Principal, actor_of
from tenantry.db.audit import Actor, AuditWriter
from tenantry.db.enums import Role, TenantStatus
from tenantry.db.models import Tenant
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.openapi import problems, schema_ref, with_request_body
from tenantry.lib.schemas import Email, convert_or_invalid, decode_json_or_invalid
from tenantry.storage import ObjectStore
from tenantry.tenancy.branding import MAX_LOGO_BYTES, logo_key, logo_url
from tenantry.tenancy.cache import note_tenant_changed
from tenantry.tenancy.deps import provide_origin
from tenantry.tenancy.schemas import (
    LOGO_FIELD,
    Color,
    DisplayName,
    Theme,
    ThemeOut,
    check_theme,
    edit_branding,
    plain_branding,
    stored_branding,
)

MAX_PATCH_BYTES = 64 * 1024


# -- wire types ---------------------------------------------------------------------------------


class BrandingPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields given change; `null` clears `display_name` (the tenant's name shows) or
    `support_email`; `theme` replaces the whole theme."""

    display_name: DisplayName | msgspec.UnsetType | None = msgspec.UNSET
    primary_color: Color | msgspec.UnsetType = msgspec.UNSET
    accent_color: Color | msgspec.UnsetType = msgspec.UNSET
    support_email: Email | msgspec.UnsetType | None = msgspec.UNSET
    theme: Theme | msgspec.UnsetType = msgspec.UNSET


class LogoOut(msgspec.Struct, kw_only=True):
    content_type: str
    size: int
    sha256: str
    url: str


class BrandingOut(msgspec.Struct, kw_only=True):
    display_name: str | None
    primary_color: str
    accent_color: str
    support_email: str | None
    theme: ThemeOut
    logo: LogoOut | None


def branding_out(raw: dict[str, Any], origin: str) -> BrandingOut:
    branding = stored_branding(raw)
    logo = branding.logo
    return BrandingOut(
        display_name=branding.display_name,
        primary_color=branding.primary_color,
        accent_color=branding.accent_color,
        support_email=branding.support_email,
        theme=branding.theme,
        logo=LogoOut(
            content_type=logo.content_type,
            size=logo.size,
            sha256=logo.sha256,
            url=logo_url(origin, logo),
        )
        if logo
        else None,
    )


def parse_patch(body: bytes) -> dict[str, Any]:
    """The changes a PATCH body asks for (400 for malformed JSON, 422 naming a bad field)."""
    raw = decode_json_or_invalid(body, dict[str, Any])
    check_theme(raw.get("theme"))
    changes: dict[str, Any] = msgspec.to_builtins(convert_or_invalid(raw, BrandingPatch))
    return changes  # the fields not given (UNSET) are left out


# -- rules --------------------------------------------------------------------------------------


class TenantBrandingRow:
    """The request's tenant's `branding` column, on the platform engine: every statement names
    the tenant (the platform role's policies would let it reach any other)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def lock(self) -> dict[str, Any]:
        branding = await self.session.scalar(
            select(Tenant.branding)
            .where(Tenant.id == self.tenant_id, Tenant.status == TenantStatus.ACTIVE)
            .with_for_update(key_share=True)
        )
        if branding is None:
            raise DomainError(ErrorCode.UNKNOWN_TENANT, "the tenant is no longer active")
        return dict(branding)

    async def save(self, branding: dict[str, Any]) -> None:
        await self.session.execute(
            update(Tenant)
            .where(Tenant.id == self.tenant_id)
            .values(branding=branding, updated_at=func.now())
        )
        note_tenant_changed(self.session, self.tenant_id)


class BrandingService:
    def __init__(
        self,
        row: TenantBrandingRow,
        tenant: TenantRecord,
        actor: Actor,
        *,
        store: ObjectStore,
        audit: AuditWriter,
        origin: str,
    ) -> None:
        self.row = row
        self.tenant = tenant
        self.actor = actor
        self.store = store
        self.audit = audit
        self.origin = origin

    async def update(self, changes: dict[str, Any]) -> BrandingOut:
        stored = await self.row.lock()
        edited = edit_branding(stored, changes)
        before = msgspec.to_builtins(plain_branding(stored))
        after = msgspec.to_builtins(plain_branding(edited))
        changed = [name for name in after if after[name] != before[name]]
        if changed:
            await self.row.save(edited)
            await self._record(
                "branding.updated",
                before={name: before[name] for name in changed},
                after={name: after[name] for name in changed},
            )
        return branding_out(edited, self.origin)

    async def set_logo(self, declared_type: str | None, body: bytes) -> BrandingOut:
        logo = accept_logo(declared_type, body)  # refused before anything is locked or stored
        stored = await self.row.lock()
        await self.store.put_stream(
            logo_key(self.tenant.id), _once(logo.data), content_type=logo.content_type
        )
        record = msgspec.to_builtins(logo.info())
        edited = {**stored, LOGO_FIELD: record}
        await self.row.save(edited)
        await self._record(
            "branding.logo_set",
            before={LOGO_FIELD: stored.get(LOGO_FIELD)},
            after={LOGO_FIELD: record},
        )
        return branding_out(edited, self.origin)

    async def remove_logo(self) -> None:
        """Idempotent: without a logo there is nothing to remove, or to audit."""
        stored = await self.row.lock()
        if stored.get(LOGO_FIELD) is None:
            return
        await self.store.delete(logo_key(self.tenant.id))
        await self.row.save({key: value for key, value in stored.items() if key != LOGO_FIELD})
        await self._record(
            "branding.logo_removed",
            before={LOGO_FIELD: stored[LOGO_FIELD]},
            after={LOGO_FIELD: None},
        )

    async def _record(self, action: str, *, before: dict[str, Any], after: dict[str, Any]) -> None:
        await self.audit.record(
            self.row.session,
            self.tenant.id,
            self.actor,
            action,
            target_type="branding",
            target_id=str(self.tenant.id),
            before=before,
            after=after,
        )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- HTTP ---------------------------------------------------------------------------------------


def provide_branding_service(
    request: Request[Principal, Any, Any],
    platform_db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    store: NamedDependency[ObjectStore],
    audit: NamedDependency[AuditWriter],
    origin: NamedDependency[str],
) -> BrandingService:
    return BrandingService(
        TenantBrandingRow(platform_db_session, tenant.id),
        tenant,
        actor_of(request.user),
        store=store,
        audit=audit,
        origin=origin,
    )


PATCH_BODY = RequestBody(
    required=True,
    content={"application/json": OpenAPIMediaType(schema=schema_ref(BrandingPatch))},
)
LOGO_BODY = RequestBody(
    required=True,
    description=f"The logo's raw bytes, at most {MAX_LOGO_BYTES} (1 MiB); `Content-Type` must "
    "be the type the bytes are. An SVG is stored as what is left once sanitised.",
    content={
        content_type: OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        )
        for content_type in LOGO_TYPES
    },
)


class AdminBrandingController(Controller):
    path = "/api/v1/admin/branding"
    tags = ["admin"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {
        "branding": Provide(provide_branding_service, sync_to_thread=False),
        "origin": Provide(provide_origin, sync_to_thread=False),
    }

    @get("/")
    async def get_branding(
        self, tenant: NamedDependency[TenantRecord], origin: NamedDependency[str]
    ) -> BrandingOut:
        """The tenant's brand as its admins set it, with the uploaded logo's record (as this
        replica's tenant cache holds it: every change clears the cache)."""
        return branding_out(tenant.branding, origin)

    @patch(
        "/",
        request_max_body_size=MAX_PATCH_BYTES,
        operation_class=with_request_body(PATCH_BODY, schemas=(BrandingPatch,)),
        responses=problems(ErrorCode.INVALID_FIELD),
    )
    async def update_branding(
        self, request: Request[Principal, Any, Any], branding: NamedDependency[BrandingService]
    ) -> BrandingOut:
        """Change the display name, colours (`#rrggbb`), support email or theme (plain values,
        no CSS: at most 32 keys, each a number, a boolean or text of at most 200 characters)."""
        return await branding.update(parse_patch(await request.body()))

    @put(
        "/logo",
        request_max_body_size=MAX_LOGO_BYTES,
        operation_class=with_request_body(LOGO_BODY),
        responses=problems(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            ErrorCode.CONTENT_TYPE_MISMATCH,
            ErrorCode.EMPTY_FILE,
            ErrorCode.INVALID_SVG,
        ),
    )
    async def put_logo(
        self, request: Request[Principal, Any, Any], branding: NamedDependency[BrandingService]
    ) -> BrandingOut:
        """Upload the logo (PNG, JPEG, WebP or SVG, at most 1 MiB), replacing any earlier one;
        `GET /api/v1/branding/logo` serves it."""
        return await branding.set_logo(request.headers.get("content-type"), await request.body())

    @delete("/logo", status_code=HTTP_204_NO_CONTENT)
    async def delete_logo(self, branding: NamedDependency[BrandingService]) -> None:
        """Remove the uploaded logo (the operator's external `logo_url`, if any, shows again);
        removing no logo changes nothing."""
        await branding.remove_logo()
