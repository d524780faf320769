"""Database URLs per role, the tenant and platform engines, and the RLS session hook.

The tenant engine connects as `tenantry_app` (NOBYPASSRLS, owns nothing). Every transaction it
begins first runs `SET_TENANT`, so RLS sees the request's tenant, and a pooled connection
never carries a tenant into the next transaction. Behind a transaction-mode pooler (PgBouncer)
the pooled engines connect to it instead (`pooled_role_url`), with no prepared statements kept
(`statement_cache_args`); migrations and the LISTEN connection still go to the database.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from tenantry.config import Settings
from tenantry.db.paths import MIGRATIONS_DIR
from tenantry.db.tenant_scope import SET_TENANT, current_tenant_id, tenant_setting
from tenantry.lib.metrics import PoolUse

Role = Literal["owner", "app", "platform"]
ROLE_NAMES: dict[Role, str] = {
    "owner": "tenantry_owner",
    "app": "tenantry_app",
    "platform": "tenantry_platform",
}


def pool_use(engine: AsyncEngine) -> PoolUse:
    pool = cast("QueuePool", engine.pool)
    return PoolUse(pool.checkedout(), pool.checkedin(), pool.size())


def admin_url(settings: Settings) -> URL:
    if settings.database_url is None:
        raise RuntimeError("no database configured: DATABASE_URL is unset")
    return make_url(settings.database_url).set(drivername="postgresql+asyncpg")


def role_url(settings: Settings, role: Role) -> URL:
    """The admin URL with the role's own name and password (same host, port and database)."""
    password: str = getattr(settings, f"db_{role}_password")
    return admin_url(settings).set(username=ROLE_NAMES[role], password=password)


def pooled_role_url(settings: Settings, role: Role) -> URL:
    """Where the role's pooled connections go: the pooler's host, port and database (its own
    name for the database, or the admin URL's) when `db_pooler_url` is set, else `role_url`.
    The LISTEN connection, bootstrap and migrations never take this path."""
    direct = role_url(settings, role)
    if settings.db_pooler_url is None:
        return direct
    pooler = make_url(settings.db_pooler_url)
    return direct.set(
        host=pooler.host,
        port=pooler.port,
        database=pooler.database or direct.database,
        query=pooler.query,  # not the admin URL's (its `host=` may name a unix socket)
    )


def statement_cache_args(settings: Settings) -> dict[str, int]:
    """asyncpg's arguments for a pooled connection. Without prepared statements kept, every
    statement is asyncpg's unnamed one: parsed and executed in one exchange (Parse, Describe,
    Flush; Bind, Execute, Sync), so a transaction-mode pooler cannot move it between server
    connections, and nothing is left on the server for the next client to trip over."""
    return {} if settings.keeps_prepared_statements else {"statement_cache_size": 0}


def asyncpg_dsn(url: URL) -> str:
    """A plain libpq-style DSN for asyncpg.connect (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _set_tenant_on_begin(
    _session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    connection.execute(SET_TENANT, {"tenant_id": tenant_setting(current_tenant_id())})


def _refuse_closed_connection(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any
) -> None:
    """A connection Postgres or a proxy closed while it sat in the pool is replaced on checkout
    (the pool retries on DisconnectionError), at no round trip: asyncpg notices a closed socket
    by itself, so asking it is enough."""
    driver_connection = getattr(dbapi_connection, "driver_connection", None)
    if driver_connection is not None and driver_connection.is_closed():
        raise DisconnectionError("connection closed while idle in the pool")


def _config(url: URL, *, pool_size: int, connect_args: dict[str, int]) -> SQLAlchemyAsyncConfig:
    config = SQLAlchemyAsyncConfig(
        connection_string=url.render_as_string(hide_password=False),
        # A hard budget per worker (README: connection budget): no overflow beyond the pool.
        engine_config=EngineConfig(
            pool_size=pool_size, max_overflow=0, pool_pre_ping=False, connect_args=connect_args
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        create_all=False,
    )
    event.listen(config.get_engine().sync_engine, "checkout", _refuse_closed_connection)
    return config


def _pooled_config(settings: Settings, role: Role, *, pool_size: int) -> SQLAlchemyAsyncConfig:
    connect_args = statement_cache_args(settings)
    if connect_args:
        # SQLAlchemy's own cache holds asyncpg statements by SQL text; an unnamed one cached
        # would name whatever the connection parsed last, so it goes with asyncpg's.
        connect_args["prepared_statement_cache_size"] = 0
    return _config(pooled_role_url(settings, role), pool_size=pool_size, connect_args=connect_args)


def tenant_db_config(settings: Settings, *, pool_size: int | None = None) -> SQLAlchemyAsyncConfig:
    config = _pooled_config(settings, "app", pool_size=pool_size or settings.db_pool_size)
    # advanced-alchemy replaces a Session subclass passed in config, so the hook goes on the
    # sync session class of the maker it builds.
    maker = cast("async_sessionmaker[AsyncSession]", config.create_session_maker())
    sync_maker = maker.kw["sync_session_class"]
    event.listen(sync_maker, "after_begin", _set_tenant_on_begin)
    return config


def platform_db_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    return _pooled_config(settings, "platform", pool_size=settings.db_platform_pool_size)


def owner_db_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    # Migrations go straight to the database (DDL and Alembic's session, never the pooler).
    config = _config(role_url(settings, "owner"), pool_size=1, connect_args={})
    config.alembic_config = AlembicAsyncConfig(
        script_location=str(MIGRATIONS_DIR), version_table_name="alembic_version"
    )
    return config
