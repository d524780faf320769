"""`tenantry db bootstrap` and `tenantry db upgrade`: roles, grants, migrations.

Bootstrap needs an admin connection and is idempotent: it creates missing roles, (re)sets their
passwords and attributes, and grants what the design gives each role. Upgrade runs Alembic as
`tenantry_owner`, so the owner owns every table and the app role owns none.
"""

from __future__ import annotations

import contextlib

import asyncpg
from advanced_alchemy.alembic.commands import AlembicCommands

from tenantry.config import Settings
from tenantry.db.engines import ROLE_NAMES, admin_url, asyncpg_dsn, owner_db_config

# Attributes every role must have, whatever state a previous run or an operator left it in.
_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


async def create_database_if_missing(settings: Settings, name: str) -> None:
    """Create `name` on the admin connection's server (used by the embedded Postgres)."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_url(settings)))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def bootstrap_roles(settings: Settings) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url(settings)))
    try:
        database = await connection.fetchval("SELECT current_database()")
        for role, name in ROLE_NAMES.items():
            password: str = getattr(settings, f"db_{role}_password")
            # Two concurrent bootstraps may both see the role missing; the loser just carries on.
            exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            if not exists:
                with contextlib.suppress(asyncpg.DuplicateObjectError):
                    await connection.execute(f"CREATE ROLE {name}")
            statement = await connection.fetchval(
                f"SELECT format('ALTER ROLE %I WITH {_ROLE_ATTRIBUTES} PASSWORD %L', $1::text, $2::text)",
                name,
                password,
            )
            await connection.execute(statement)
            await connection.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {name}')
        await connection.execute("GRANT USAGE, CREATE ON SCHEMA public TO tenantry_owner")
        await connection.execute("GRANT USAGE ON SCHEMA public TO tenantry_app, tenantry_platform")
    finally:
        await connection.close()


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Run migrations (sync: Alembic drives its own event loop in env.py)."""
    AlembicCommands(sqlalchemy_config=owner_db_config(settings)).upgrade(revision)
