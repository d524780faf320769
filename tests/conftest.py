"""Test services, started by the tests themselves.

Postgres: `DATABASE_URL` (an admin connection) when set; a testcontainers Postgres when
`TENANTRY_TEST_DOCKER=1`; otherwise an ephemeral embedded Postgres (pgserver). Each test session
gets a fresh database, bootstrapped with the design's roles and migrated to head.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tenantry.config import Settings
from tenantry.db import bootstrap
from tenantry.db.embedded import start_embedded_postgres, with_database
from tenantry.db.engines import admin_url, asyncpg_dsn, role_url

pytest_plugins = ["tests.fixtures.s3"]

DOCKER = os.environ.get("TENANTRY_TEST_DOCKER") == "1"


@pytest.fixture(scope="session")
def admin_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin URL to a Postgres server (not yet to the test database)."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
    elif DOCKER:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        server, url = start_embedded_postgres(tmp_path_factory.mktemp("pg"))
        try:
            yield url
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def settings(
    admin_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for a fresh, migrated database of this test session."""
    database = f"tenantry_test_{uuid.uuid4().hex[:8]}"
    server = Settings(database_url=admin_database_url)
    asyncio.run(bootstrap.create_database_if_missing(server, database))
    settings = Settings(
        env="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=with_database(admin_database_url, database),
        db_owner_password="owner-test-password",
        db_app_password="app-test-password",
        db_platform_password="platform-test-password",
        jwt_secret="test-secret-" + "x" * 32,
        bcrypt_rounds=4,
        db_pool_size=5,
        log_level="WARNING",
        reconcile_interval_seconds=0,  # tests run the reconciler themselves
    )
    asyncio.run(bootstrap.bootstrap_roles(settings))
    bootstrap.upgrade(settings)
    yield settings
    asyncio.run(_drop_database(server, database))


@asynccontextmanager
async def connect_as(url: URL) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield connection
    finally:
        await connection.close()


async def _drop_database(server: Settings, database: str) -> None:
    async with connect_as(admin_url(server)) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
async def owner_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """As `tenantry_owner`: owns the tables, reads the catalog (and no tenant rows)."""
    async with connect_as(role_url(settings, "owner")) as connection:
        yield connection


@pytest.fixture
async def platform_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """As `tenantry_platform`, which sees every tenant through explicit policies."""
    async with connect_as(role_url(settings, "platform")) as connection:
        yield connection


@pytest.fixture
async def app_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """As `tenantry_app`, the role of the tenant API: RLS applies."""
    async with connect_as(role_url(settings, "app")) as connection:
        yield connection


@pytest.fixture
async def clean_database(settings: Settings) -> AsyncIterator[None]:
    """Every test that writes leaves empty tables (TRUNCATE) and an empty local store."""
    yield
    async with connect_as(role_url(settings, "owner")) as connection:
        await connection.execute("TRUNCATE tenants, platform_admins CASCADE")
    shutil.rmtree(settings.data_dir / "objects", ignore_errors=True)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
