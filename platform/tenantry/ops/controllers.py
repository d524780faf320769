from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry import __version__
from tenantry.auth.tokens import bearer_token
from tenantry.config import Settings
from tenantry.db.reads import TenantReader
from tenantry.lib.errors import PROBLEM_TYPE_PATH, DomainError, ErrorCode, error_code
from tenantry.lib.metrics import METRICS_CONTENT_TYPE, render
from tenantry.lib.openapi import problems
from tenantry.lib.runtime import Drain
from tenantry.lib.zones import OPS
from tenantry.storage import ObjectStore
from tenantry.tenancy.cache import TenantCache


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class ProblemType(msgspec.Struct):
    """A problem `type` resolved: the catalogue entry of one error code."""

    code: str
    status: int
    title: str
    meaning: str


class HealthLinks(msgspec.Struct):
    live: str
    ready: str


class ApiIndex(msgspec.Struct):
    """What `/` on the API host answers: where the docs and the health checks are."""

    name: str
    version: str
    docs: str
    openapi: str
    health: HealthLinks
    metrics: str


class HealthController(Controller):
    path = "/health"
    tags = ["ops"]
    opt = {"zone": OPS}

    @get("/live")
    async def live(self) -> HealthStatus:
        """The process answers (no dependency checked)."""
        return HealthStatus(status="ok")

    @get(
        "/ready",
        responses={
            503: ResponseSpec(HealthStatus, description="Not ready: `checks` names what failed.")
        },
    )
    async def ready(
        self,
        tenant_engine: NamedDependency[AsyncEngine],
        reader: NamedDependency[TenantReader],
        store: NamedDependency[ObjectStore],
        tenant_cache: NamedDependency[TenantCache],
        drain: NamedDependency[Drain],
    ) -> Response[HealthStatus]:
        """Ready when both database pools and the object store answer and the tenant listener
        runs; not ready from SIGTERM on (the server drains, then stops)."""
        if drain.draining:
            return Response(HealthStatus(status="draining"), status_code=503)
        checks: dict[str, str] = {}
        try:
            async with tenant_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes in the body
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await reader.check()
            checks["read_pool"] = "ok"
        except Exception as exc:
            checks["read_pool"] = f"error: {type(exc).__name__}"
        try:
            await store.check()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {type(exc).__name__}"
        checks["tenant_listener"] = "ok" if tenant_cache.is_listening else "reconnecting"
        ok = all(value == "ok" for value in checks.values())
        return Response(
            HealthStatus(status="ok" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )


class MetricsController(Controller):
    path = "/metrics"
    tags = ["ops"]
    opt = {"zone": OPS}

    @get(
        "/",
        media_type=METRICS_CONTENT_TYPE,
        responses={
            200: ResponseSpec(
                str, description="Prometheus text exposition format.", media_type="text/plain"
            ),
            **problems(ErrorCode.MISSING_TOKEN, ErrorCode.INVALID_TOKEN),
        },
    )
    async def metrics(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        """Prometheus metrics of every worker process of this server (bearer token when
        `TENANTRY_METRICS_TOKEN` is set)."""
        if settings.metrics_token is not None:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise DomainError(ErrorCode.MISSING_TOKEN, "a bearer token is required")
            if not hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
                raise DomainError(ErrorCode.INVALID_TOKEN, "not the metrics token")
        return Response(render(), media_type=METRICS_CONTENT_TYPE)


# The OpenAPI paths are the app's (`create_app`'s OpenAPIConfig); ops cannot import the app.
API_INDEX = ApiIndex(
    name="Tenantry",
    version=__version__,
    docs="/schema",
    openapi="/schema/openapi.json",
    health=HealthLinks(
        live=f"{HealthController.path}/live", ready=f"{HealthController.path}/ready"
    ),
    metrics=MetricsController.path,
)


@get("/", tags=["ops"], opt={"zone": OPS})
async def api_index() -> ApiIndex:
    """Where to start: the API docs, the OpenAPI document, the health checks, the metrics."""
    return API_INDEX


class ProblemTypesController(Controller):
    """Every problem's `type` (`/problems/{code}`) resolves here to its catalogue entry."""

    path = PROBLEM_TYPE_PATH
    tags = ["ops"]
    opt = {"zone": OPS}

    @get("/")
    async def list_problem_types(self) -> list[ProblemType]:
        """The whole error catalogue."""
        return [_entry(error) for error in ErrorCode]

    @get("/{code:str}", responses=problems(ErrorCode.NOT_FOUND))
    async def get_problem_type(self, code: FromPath[str]) -> ProblemType:
        """The catalogue entry of one problem code."""
        error = error_code(code)
        if error is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no problem type '{code[:64]}'")
        return _entry(error)


def _entry(error: ErrorCode) -> ProblemType:
    return ProblemType(
        code=error.code, status=error.status, title=error.title, meaning=error.meaning
    )
