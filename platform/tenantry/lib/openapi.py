"""The OpenAPI document told truthfully, from the route table.

Litestar documents what a handler's signature shows. What it cannot see is added here, in one
place, after the document is built:

- `security` per route zone (`tenantBearer`, `platformBearer`, none on public and ops routes);
- `X-Tenant` on tenant_public routes;
- every problem a route can answer with, as `application/problem+json` with the `Problem`
  schema: the generic ones follow from the zone, the guards and whether the route takes
  parameters or a body (`generic_problems`); route-specific ones are declared next to the route
  with `responses=problems(ErrorCode.X, ...)`.

Route handlers whose raw body Litestar cannot see (they read the stream) declare it with
`operation_class=with_request_body(...)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute

from tenantry.lib.errors import PROBLEM_JSON, ErrorCode, Problem
from tenantry.lib.zones import OPS, PLATFORM, PLATFORM_PUBLIC, TENANT, TENANT_PUBLIC

TENANT_BEARER = "tenantBearer"
PLATFORM_BEARER = "platformBearer"

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    TENANT_BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A tenant user's access token (`POST /api/v1/auth/login`), valid only on "
        "its own tenant's host (or a shared host, where its `tid` claim names the tenant).",
    ),
    PLATFORM_BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A platform operator's access token (`POST /platform/v1/auth/login`).",
    ),
}

API_DESCRIPTION = """\
Tenantry serves many tenants from one deployment; every `/api/...` route acts for exactly one.

**Which tenant.** The `Host` header names it: `{slug}.{BASE_DOMAIN}` or one of the tenant's
verified custom domains. On a shared API host (not a tenant's), a tenant user's bearer token
names its tenant (`tid` claim). Only the unauthenticated tenant routes (login, signup, refresh,
branding) also take an `X-Tenant: {slug}` header, used when neither host nor token names a
tenant. A token of one tenant on another tenant's host is 403 `tenant_mismatch`; an unknown
host or slug is 404 `unknown_tenant`; a suspended tenant is 403 `tenant_suspended`.
`/platform/...`, `/health/...`, `/problems/...` and `/schema` need no tenant.

**Errors** are RFC 9457 problem details (`application/problem+json`); each problem's `type` is
`/problems/{code}`, which resolves to the catalogue entry of its `code`.
"""

_PROBLEM_REF = Reference(ref="#/components/schemas/Problem")
_ZONE_SECURITY = {TENANT: TENANT_BEARER, PLATFORM: PLATFORM_BEARER}
_TENANCY = (
    ErrorCode.INVALID_HOST,
    ErrorCode.UNKNOWN_TENANT,
    ErrorCode.TENANT_REQUIRED,
    ErrorCode.TENANT_SUSPENDED,
)
_TOKEN = (ErrorCode.MISSING_TOKEN, ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED)
_OUTAGES = (ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.STORAGE_UNAVAILABLE)
# bad_request: Litestar's own answer to a body it cannot decode at all.
_BODY = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.INVALID_JSON,
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.BODY_TOO_LARGE,
)


@dataclass
class ProblemSpec(ResponseSpec):
    """A route-specific problem response; the codes are what the document lists."""

    codes: tuple[ErrorCode, ...] = field(default=())


def problems(*codes: ErrorCode) -> dict[int, ResponseSpec]:
    """Route-specific problems, for a handler's `responses=`, one entry per status."""
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for code in codes:
        by_status[code.status].append(code)
    return {
        status: ProblemSpec(
            data_container=None,
            description=_describe(group),
            media_type=PROBLEM_JSON,
            codes=tuple(group),
        )
        for status, group in by_status.items()
    }


class OperationWithBody(Operation):
    """Base of the operations `with_request_body` makes; `schemas` go into the components."""

    schemas: tuple[type[msgspec.Struct], ...] = ()


def with_request_body(
    body: RequestBody, *, schemas: tuple[type[msgspec.Struct], ...] = ()
) -> type[Operation]:
    """An `operation_class` for a handler that reads its raw body: documents `body`; the
    Structs it refers to (as `#/components/schemas/{name}`) are listed in `schemas`."""

    @dataclass
    class _Operation(OperationWithBody):
        def __post_init__(self) -> None:
            self.request_body = body

    _Operation.schemas = schemas
    return _Operation


def with_binary_response(description: str, media_types: Iterable[str]) -> type[Operation]:
    """An `operation_class` for a handler that answers 200 with raw bytes of any of
    `media_types` (Litestar documents one media type per handler)."""
    content = {
        media_type: OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        )
        for media_type in media_types
    }

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            answer = OpenAPIResponse(description=description, content=content)
            self.responses = {**(self.responses or {}), "200": answer}

    return _Operation


def schema_ref(struct: type[msgspec.Struct]) -> Reference:
    return Reference(ref=f"#/components/schemas/{struct.__name__}")


def generic_problems(
    zone: str, *, guarded: bool, has_parameters: bool, has_body: bool
) -> list[ErrorCode]:
    """The problems any route of this shape can answer with, whatever it does."""
    codes: list[ErrorCode] = []
    if zone in (TENANT, TENANT_PUBLIC):
        codes += _TENANCY
    if zone in (TENANT, PLATFORM):
        codes += _TOKEN
    if zone == TENANT:
        codes.append(ErrorCode.TENANT_MISMATCH)
        if guarded:
            codes.append(ErrorCode.INSUFFICIENT_ROLE)
    if has_body:
        codes += _BODY
    elif has_parameters:
        codes.append(ErrorCode.VALIDATION_ERROR)
    if zone != OPS:
        if has_body or has_parameters:  # any string may carry what Postgres cannot store (NUL)
            codes.append(ErrorCode.INVALID_VALUE)
        codes += _OUTAGES
        codes.append(ErrorCode.CONCURRENT_CHANGE)  # a transaction may lose to another
    return codes


def document_app(app: Litestar) -> None:
    """Complete the app's OpenAPI document from its route table (call once, after creation)."""
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    components = openapi.components
    components.security_schemes = {**(components.security_schemes or {}), **SECURITY_SCHEMES}
    _add_schemas(components, [Problem])
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or openapi.paths is None:
            continue
        path_item = openapi.paths.get(route.path_format or "/")
        if path_item is None:
            continue
        for method, handler in _handlers(route):
            operation = getattr(path_item, method.lower(), None)
            if isinstance(operation, OperationWithBody):
                _add_schemas(components, list(operation.schemas))
            if isinstance(operation, Operation):
                _document_operation(
                    operation, handler, has_path_parameters=bool(route.path_parameters)
                )


def _handlers(route: HTTPRoute) -> Iterable[tuple[str, HTTPRouteHandler]]:
    for method, (handler, _) in route.route_handler_map.items():
        if method != "OPTIONS":
            yield str(method), handler


def _document_operation(
    operation: Operation, handler: HTTPRouteHandler, *, has_path_parameters: bool
) -> None:
    zone = str(handler.opt.get("zone", TENANT))
    if zone in _ZONE_SECURITY:
        operation.security = [{_ZONE_SECURITY[zone]: []}]
    elif zone in (TENANT_PUBLIC, PLATFORM_PUBLIC, OPS):
        operation.security = []
    if zone == TENANT_PUBLIC:
        operation.parameters = [*(operation.parameters or []), _X_TENANT]
    codes = generic_problems(
        zone,
        guarded=bool(handler.resolve_guards()),
        has_parameters=has_path_parameters or bool(operation.parameters),
        has_body=operation.request_body is not None,
    )
    for spec in (handler.responses or {}).values():
        if isinstance(spec, ProblemSpec):
            codes += spec.codes
    responses = operation.responses if operation.responses is not None else {}
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for code in dict.fromkeys(codes):  # de-duplicated, in order
        by_status[code.status].append(code)
    for status, group in sorted(by_status.items()):
        responses[str(status)] = OpenAPIResponse(
            description=_describe(group),
            content={PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM_REF)},
        )
    operation.responses = dict(sorted(responses.items()))


def _describe(codes: Iterable[ErrorCode]) -> str:
    return "\n".join(f"- `{code.code}`: {code.meaning}" for code in codes)


_X_TENANT = Parameter(
    name="X-Tenant",
    param_in="header",
    required=False,
    description="The tenant's slug. Used only when neither the Host (a tenant host or a "
    "tenant's custom domain) nor a bearer token names the tenant, e.g. on a shared API host.",
    schema=Schema(type=OpenAPIType.STRING),
)


def _add_schemas(components: Components, types: list[type[msgspec.Struct]]) -> None:
    _, definitions = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schemas: Mapping[str, Any] = components.schemas or {}
    components.schemas = {**schemas, **definitions}
