"""Per-request sessions, injected: one transaction per request, committed when the handler
returns, rolled back when it raises. Handlers never open sessions themselves."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.runtime import AppServices

SessionProvider = Callable[[Request[Any, Any, Any]], AsyncGenerator[AsyncSession, None]]


def _session_provider(
    pick: Callable[[AppServices], SQLAlchemyAsyncConfig],
    after_commit: Callable[[AppServices], None] | None = None,
) -> SessionProvider:
    async def provide(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
        services = AppServices.of(request)
        session = pick(services).create_session_maker()()
        # A session that never began a transaction holds no connection: read routes that
        # answer from the fast read path pay nothing for it (no commit, no close).
        try:
            yield session
        except Exception:
            if session.in_transaction():
                await session.rollback()
            raise
        if session.in_transaction():
            await session.commit()
        if after_commit is not None:
            after_commit(services)

    return provide


# The tenant engine: RLS limits every statement to the request's tenant.
provide_tenant_session = _session_provider(lambda services: services.tenant_db)
# The platform engine, `/platform` routes only. Its writes change tenants: this replica drops its
# tenant cache at once (others hear NOTIFY), so the very next request sees a suspension.
provide_platform_session = _session_provider(
    lambda services: services.platform_db,
    after_commit=lambda services: services.tenant_cache.invalidate(),
)
