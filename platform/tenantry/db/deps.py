"""Per-request sessions, injected: one transaction per request, committed when the handler
returns, rolled back when it raises. Handlers never open sessions themselves."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncSession

SessionProvider = Callable[[], AsyncGenerator[AsyncSession, None]]


def session_provider(
    config: SQLAlchemyAsyncConfig, after_commit: Callable[[AsyncSession], None] | None = None
) -> SessionProvider:
    """`after_commit` gets the committed session (its `info` says what the request changed)."""
    maker = config.create_session_maker()

    async def provide() -> AsyncGenerator[AsyncSession, None]:
        session = maker()
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
            after_commit(session)

    return provide
