from __future__ import annotations

from typing import Annotated, get_args

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, HeaderParameter

from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import ErrorCode
from tenantry.lib.openapi import problems, with_binary_response
from tenantry.lib.zones import TENANT_PUBLIC
from tenantry.storage import ObjectStore
from tenantry.tenancy.branding import (
    PublicBranding,
    current_logo,
    logo_bytes,
    logo_headers,
    not_modified,
    public_branding,
)
from tenantry.tenancy.deps import provide_origin
from tenantry.tenancy.schemas import LogoType

IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="ETags of earlier answers: 304 if current"),
]
NOT_MODIFIED = ResponseSpec(None, description="The ETag sent in `If-None-Match` is current.")


class BrandingController(Controller):
    path = "/api/v1/branding"
    tags = ["branding"]
    opt = {"zone": TENANT_PUBLIC}
    dependencies = {"origin": Provide(provide_origin, sync_to_thread=False)}

    @get(
        "/",
        responses={
            200: ResponseSpec(PublicBranding, description="The tenant's brand."),
            304: NOT_MODIFIED,
        },
    )
    async def get_branding(
        self,
        tenant: NamedDependency[TenantRecord],
        origin: NamedDependency[str],
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        """What a white-label front end needs to look like its tenant; no login required.
        Cacheable for a minute (`ETag`, `If-None-Match`)."""
        body, headers = public_branding(tenant, origin)
        return not_modified(if_none_match, headers) or Response(
            body, media_type="application/json", headers=headers
        )

    @get(
        "/logo",
        operation_class=with_binary_response("The logo's bytes.", get_args(LogoType)),
        responses={304: NOT_MODIFIED, **problems(ErrorCode.LOGO_NOT_FOUND)},
    )
    async def get_logo(
        self,
        tenant: NamedDependency[TenantRecord],
        store: NamedDependency[ObjectStore],
        v: FromQuery[str | None] = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        """The uploaded logo. With `v` naming its current version (as `logo_url` does) it is
        cacheable for a day, otherwise for a minute."""
        logo = current_logo(tenant)
        headers = logo_headers(logo, v)
        return not_modified(if_none_match, headers) or Response(
            await logo_bytes(store, tenant.id), media_type=logo.content_type, headers=headers
        )
