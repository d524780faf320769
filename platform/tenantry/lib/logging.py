"""structlog setup and the request-context middleware binding `request_id` to every line."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

import structlog
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_logger = structlog.get_logger("tenantry.access")


def configure_logging(*, json: bool, level_name: str) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = logging.getLevelNamesMapping().get(level_name.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


class RequestContextMiddleware(ASGIMiddleware):
    """Binds `request_id` (from `X-Request-ID` when well formed) and writes one access line.

    Responses carry it back as `X-Request-ID` (see `add_request_id_header`).
    """

    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        client = scope.get("client")
        structlog.contextvars.bind_contextvars(
            request_id=request_id, client_address=client[0] if client else None
        )
        started = time.perf_counter()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # The context stays bound after this returns: an error raised by a later middleware is
        # rendered by Litestar's outer handler, and its problem details still carry request_id.
        # Each request runs in its own task, so nothing leaks into the next one.
        try:
            await next_app(scope, receive, send_with_request_id)
        except Exception as exc:
            status = getattr(exc, "status", getattr(exc, "status_code", 500))
            raise
        finally:
            access_logger.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


async def add_request_id_header(message: Message, _: object) -> None:
    """App-level before_send hook: every response, error responses included, names its id."""
    if message["type"] == "http.response.start":
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            message["headers"] = [
                *message.get("headers", []),
                (b"x-request-id", request_id.encode()),
            ]


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None
