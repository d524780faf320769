"""CORS per tenant: a tenant's API answers browsers from its own origins only.

Allowed: the tenant's own host (`{slug}.{base}`, any scheme and port), its verified custom
domains over https, and the exact origins its admins list (`settings.cors_origins`). A preflight
from an allowed origin is answered here, before authentication (browsers send none with it); one
from any other origin is 403 `origin_not_allowed`. An actual request from another origin gets
no CORS headers, so the browser keeps the answer from the page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.types import Message, Scope, Send
from litestar.types.asgi_types import HTTPResponseBodyEvent, HTTPResponseStartEvent

from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import DomainError, ErrorCode

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = frozenset(
    {"authorization", "content-type", "x-request-id", "x-tenant", "if-none-match", "range"}
)
EXPOSED_HEADERS = "X-Request-ID, ETag, Content-Disposition, Content-Range, Next-Cursor"
MAX_AGE_SECONDS = "600"


def origin_allowed(origin: str, tenant: TenantRecord, base_domain: str) -> bool:
    try:  # a client's text: an IPv6 literal left open, a port that is no port
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        return False
    if parts.hostname == f"{tenant.slug}.{base_domain}":
        return True
    if parts.scheme == "https" and port is None and parts.hostname in tenant.domains:
        return True
    listed = tenant.settings.get("cors_origins") or []
    return origin.lower().rstrip("/") in listed


class CorsPolicy:
    """Applied by the request's access pass once it knows the tenant, before authentication."""

    def __init__(self, base_domain: str) -> None:
        self._base_domain = base_domain

    async def apply(
        self, scope: Scope, headers: Headers, tenant: TenantRecord, send: Send
    ) -> Send | None:
        """The `send` to answer with (adding CORS headers for an allowed origin), or None when
        the request was a preflight, answered here."""
        origin = headers.get("origin")
        if origin is None:  # servers, and apps on the tenant's own host
            return send
        allowed = origin_allowed(origin, tenant, self._base_domain)
        if scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:
            requested = {
                name.strip().lower()
                for name in headers.get("access-control-request-headers", "").split(",")
                if name.strip()
            }
            if not allowed or not requested <= ALLOWED_HEADERS:
                raise DomainError(
                    ErrorCode.ORIGIN_NOT_ALLOWED, f"origin '{origin}' may not call this API"
                )
            await _preflight(send, origin, requested)
            return None
        if not allowed:
            return send

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableScopeHeaders.from_message(message)
                response_headers["Access-Control-Allow-Origin"] = origin
                response_headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                response_headers.add("Vary", "Origin")
            await send(message)

        return send_with_cors


async def _preflight(send: Send, origin: str, requested: set[str]) -> None:
    headers = [
        (b"access-control-allow-origin", origin.encode()),
        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
        (b"access-control-allow-headers", ", ".join(sorted(requested)).encode()),
        (b"access-control-max-age", MAX_AGE_SECONDS.encode()),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 204,
        "headers": headers,
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(start)
    await send(body)
