"""Database URLs per role, the tenant and platform engines, and the RLS session hook.

The tenant engine connects as `tenantry_app` (NOBYPASSRLS, owns nothing). Every transaction it
begins first runs `set_config('app.tenant_id', <tenant or ''>, true)`, so RLS sees the request's
tenant, and a pooled connection never carries a tenant into the next transaction.
"""

from __future__ import annotations

from typing import Literal, cast

from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from tenantry.config import Settings
from tenantry.db.paths import MIGRATIONS_DIR
from tenantry.tenancy.context import current_tenant_id

Role = Literal["owner", "app", "platform"]
ROLE_NAMES: dict[Role, str] = {
    "owner": "tenantry_owner",
    "app": "tenantry_app",
    "platform": "tenantry_platform",
}
_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")


def admin_url(settings: Settings) -> URL:
    if settings.database_url is None:
        raise RuntimeError("no database configured: DATABASE_URL is unset")
    return make_url(settings.database_url).set(drivername="postgresql+asyncpg")


def role_url(settings: Settings, role: Role) -> URL:
    """The admin URL with the role's own name and password (same host, port and database)."""
    password: str = getattr(settings, f"db_{role}_password")
    return admin_url(settings).set(username=ROLE_NAMES[role], password=password)


def asyncpg_dsn(url: URL) -> str:
    """A plain libpq-style DSN for asyncpg.connect (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _set_tenant_on_begin(
    _session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    tenant_id = current_tenant_id()
    connection.execute(_SET_TENANT, {"tenant_id": str(tenant_id) if tenant_id else ""})


def _config(url: URL, *, pool_size: int, max_overflow: int | None = None) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        connection_string=url.render_as_string(hide_password=False),
        engine_config=EngineConfig(
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_pre_ping=False,
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        create_all=False,
    )


def tenant_db_config(
    settings: Settings, *, pool_size: int | None = None, max_overflow: int | None = None
) -> SQLAlchemyAsyncConfig:
    config = _config(
        role_url(settings, "app"),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=max_overflow,
    )
    # advanced-alchemy replaces a Session subclass passed in config, so the hook goes on the
    # sync session class of the maker it builds.
    maker = cast("async_sessionmaker[AsyncSession]", config.create_session_maker())
    sync_maker = maker.kw["sync_session_class"]
    event.listen(sync_maker, "after_begin", _set_tenant_on_begin)
    return config


def platform_db_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    return _config(role_url(settings, "platform"), pool_size=max(2, settings.db_pool_size // 4))


def owner_db_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    config = _config(role_url(settings, "owner"), pool_size=1)
    config.alembic_config = AlembicAsyncConfig(
        script_location=str(MIGRATIONS_DIR), version_table_name="alembic_version"
    )
    return config
