"""Role guards. Roles are ordered: viewer < editor < admin < owner."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from tenantry.lib.errors import Forbidden

ROLES = ("viewer", "editor", "admin", "owner")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def requires_role(minimum: str) -> Guard:
    needed = _RANK[minimum]

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if _RANK.get(connection.user.role, -1) < needed:
            raise Forbidden(f"requires role {minimum} or higher", code="insufficient_role")

    return guard
