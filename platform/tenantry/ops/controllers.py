from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from sqlalchemy import text

from tenantry.runtime import AppServices
from tenantry.tenancy.zones import OPS


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class HealthController(Controller):
    path = "/health"
    tags = ["ops"]
    opt = {"zone": OPS}

    @get("/live")
    async def live(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get("/ready")
    async def ready(self, request: Request[Any, Any, Any]) -> Response[HealthStatus]:
        """Ready when the database and the object store answer and the tenant listener runs."""
        services = AppServices.of(request)
        checks: dict[str, str] = {}
        try:
            async with services.tenant_db.get_engine().connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes in the body
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await services.store.check()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {type(exc).__name__}"
        checks["tenant_listener"] = "ok" if services.tenant_cache.listening else "reconnecting"
        ok = all(value == "ok" for value in checks.values())
        return Response(
            HealthStatus(status="ok" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )
