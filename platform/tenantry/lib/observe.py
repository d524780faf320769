"""The outermost layer of every HTTP request: request id, trace context, metrics, access line.

It wraps Litestar's whole ASGI handler rather than sitting in its middleware list: Litestar
runs middleware per route handler, so a 404 or 405 from the router would pass unseen (no
request id, no log line, no metric). It keeps no state between requests: the request's own
values live in the request's log context (`lib.logging`), which every line of the request (and the problem
details of an error) reads.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Protocol

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from tenantry.lib.logging import request_context, start_request_context
from tenantry.lib.metrics import (
    OTHER_TENANT,
    UNMATCHED_ROUTE,
    http_in_flight,
    http_request_seconds,
    http_requests,
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# W3C Trace Context: version-traceid-parentid-flags (a future version may append fields).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16

access_logger = structlog.get_logger("tenantry.access")
# A route's `opt` key: headers every answer of the route carries, whichever layer answers (a
# protocol's version header on a refusal from authentication, say).
ANSWER_HEADERS = "answer_headers"


class RequestTracing(Protocol):
    """Tracing as this layer sees it (tenantry.lib.tracing, when an OTLP endpoint is set)."""

    def log_context(self, traceparent: str | None) -> dict[str, str]:
        """The trace id and span id for the request's log lines (its server span's)."""
        ...

    def name_span(self, method: str, route: str) -> None:
        """Names the server span by route template once the router has chosen one."""
        ...


class _Principal(Protocol):
    id: uuid.UUID
    kind: str


def incoming_trace(traceparent: str | None) -> dict[str, str]:
    """The caller's trace id and span (as `parent_span_id`) when its header is well formed."""
    match = _TRACEPARENT.fullmatch(traceparent) if traceparent else None
    if match is None:
        return {}
    version, trace_id, parent_id, rest = match.groups()
    if (
        version == "ff"
        or (version == "00" and rest)
        or trace_id == _INVALID_TRACE_ID
        or parent_id == _INVALID_SPAN_ID
    ):
        return {}
    return {"trace_id": trace_id, "parent_span_id": parent_id}


class ObservedApp:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics_tenants: frozenset[str] = frozenset(),
        tracing: RequestTracing | None = None,
    ) -> None:
        self._app = app
        self._metrics_tenants = metrics_tenants
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        request_id, traceparent = None, None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID.fullmatch(candidate) else None
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        request_id = request_id or uuid.uuid4().hex
        client = scope.get("client")
        start_request_context(
            request_id=request_id,
            client_address=client[0] if client else None,
            **(
                self._tracing.log_context(traceparent)
                if self._tracing
                else incoming_trace(traceparent)
            ),
        )
        request_id_header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()
        http_in_flight.inc()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                handler = scope.get("route_handler")
                route_headers = handler.opt.get(ANSWER_HEADERS, ()) if handler else ()
                message["headers"] = [
                    *message.get("headers", ()),
                    request_id_header,
                    *route_headers,
                ]
                if self._tracing is not None:  # the span ends with the body: name it now
                    self._tracing.name_span(scope["method"], _route(scope))
            await send(message)

        # The context stays bound after this returns: each request runs in its own task, so
        # nothing leaks into the next one.
        try:
            await self._app(scope, receive, send_observed)
        finally:
            http_in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: HTTPScope, status: int, seconds: float) -> None:
        method = scope["method"]
        route = _route(scope)
        tenant = request_context().get("tenant")
        http_requests.labels(method, route, str(status), self._tenant_label(tenant)).inc()
        http_request_seconds.labels(method, route).observe(seconds)
        principal: _Principal | None = scope.get("user")
        access_logger.info(
            "request",
            pid=os.getpid(),  # which worker process answered
            method=method,
            path=scope["path"],
            route=scope.get("path_template"),
            status=status,
            duration_ms=round(seconds * 1000, 2),
            principal=principal.kind if principal else None,
            principal_id=str(principal.id) if principal else None,
        )

    def _tenant_label(self, tenant: str | None) -> str:
        if tenant is None:
            return ""
        return tenant if tenant in self._metrics_tenants else OTHER_TENANT


def _route(scope: HTTPScope) -> str:
    """The route template the router chose (bounded), or what it refused."""
    return scope.get("path_template") or UNMATCHED_ROUTE
