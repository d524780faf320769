"""Role guards. Roles are ordered: viewer < editor < admin < owner."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from tenantry.db.enums import Role
from tenantry.lib.errors import DomainError, ErrorCode

_RANK = {role: role.rank for role in Role}


def role_rank(role: str) -> int:
    """The rank of a role name; -1 for anything that is not a tenant role."""
    try:
        return _RANK[Role(role)]
    except ValueError:
        return -1


def requires_role(minimum: Role) -> Guard:
    needed = _RANK[minimum]

    # Async, so Litestar calls it on the loop (a sync guard would hop to a thread).
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if role_rank(connection.user.role) < needed:
            raise DomainError(ErrorCode.INSUFFICIENT_ROLE, f"requires role {minimum} or higher")

    return guard


async def requires_user(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A person's own account routes (me, password, logout): not for API keys."""
    if getattr(connection.user, "kind", "user") != "user":
        raise DomainError(ErrorCode.USER_REQUIRED, "this route is for a user, not an API key")
