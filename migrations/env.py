"""Alembic environment: runs migrations as `tenantry_owner` on the engine advanced-alchemy gives."""

import asyncio
from typing import TYPE_CHECKING, cast

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.db.models import Base

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig

config = cast("AlembicCommandConfig", context.config)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=config.version_table_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = cast(AsyncEngine, config.engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        # The engine's connections belong to this short-lived loop; none may outlive it.
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.db_url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
