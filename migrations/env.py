"""Alembic environment: runs migrations as `tenantry_owner` on the engine advanced-alchemy gives.

It imports no application code: migrations are history and must not change when the code does.
So there is no `target_metadata` here; autogenerate is not used (migrations are written as SQL),
and tests/integration/test_migrations.py compares the models with a migrated database instead.
"""

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig

# Alembic loads env.py and the versions by file path, not as a package: the versions' own
# helpers (the frozen `rls_v1`) are importable only with this directory on the path.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

config = cast("AlembicCommandConfig", context.config)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, version_table=config.version_table_name)
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
    context.configure(
        url=config.db_url, version_table=config.version_table_name, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
