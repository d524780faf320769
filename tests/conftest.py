"""Test services, started by the tests themselves.

Postgres: `DATABASE_URL` (an admin connection) when set; a testcontainers Postgres when
`TENANTRY_TEST_DOCKER=1`; otherwise an ephemeral embedded Postgres (pgserver). Each test session
(each pytest-xdist worker) gets a fresh database, bootstrapped with the design's roles and
migrated to head.

Under pytest-xdist the workers share one embedded server: the controller hands every worker the
same directory, the first worker to need Postgres starts the server there, the others attach to
it, and pgserver stops it when the last one lets go. The controller stops a server that is still
running at the end (a worker that crashed never lets go) and removes the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from filelock import FileLock
from sqlalchemy.engine import URL

from tenantry.config import Settings
from tenantry.db import bootstrap
from tenantry.db.embedded import start_embedded_postgres, with_database
from tenantry.db.engines import admin_url, asyncpg_dsn, role_url

pytest_plugins = ["tests.fixtures.s3"]

DOCKER = os.environ.get("TENANTRY_TEST_DOCKER") == "1"

# -- one directory shared by the xdist workers ----------------------------------------------------

SHARED_DIR = "tenantry_shared_dir"  # the key in each worker's `workerinput`
_shared_dir_key = pytest.StashKey[Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker gets the same directory (embedded Postgres, locks)."""
    config: pytest.Config = node.config
    if _shared_dir_key not in config.stash:
        config.stash[_shared_dir_key] = Path(tempfile.mkdtemp(prefix="tenantry-tests-")).resolve()
    node.workerinput[SHARED_DIR] = str(config.stash[_shared_dir_key])


def pytest_unconfigure(config: pytest.Config) -> None:
    """xdist controller, after every worker has exited: no Postgres survives the run."""
    shared = config.stash.get(_shared_dir_key, None)
    if shared is not None:
        _stop_postgres_left_running(shared / "pg")
        shutil.rmtree(shared, ignore_errors=True)


def _shared_dir(config: pytest.Config) -> Path | None:
    """The directory shared with the other workers, or None outside xdist."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    shared = workerinput.get(SHARED_DIR)
    return Path(shared) if shared else None


def _workers_lock(config: pytest.Config, name: str) -> contextlib.AbstractContextManager[object]:
    """Serializes a step between the xdist workers (a no-op outside xdist)."""
    shared = _shared_dir(config)
    return FileLock(shared / f"{name}.lock") if shared else contextlib.nullcontext()


def _stop_postgres_left_running(pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    import psutil  # comes with pgserver, like the server it looks for

    try:
        process = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        if process.name() != "postgres" or str(pgdata.resolve()) not in " ".join(process.cmdline()):
            return  # a stale pid file; that pid now belongs to another process
        process.send_signal(signal.SIGINT)  # Postgres's "fast" shutdown
        try:
            process.wait(timeout=30)
        except psutil.TimeoutExpired:
            process.kill()
    except psutil.NoSuchProcess:
        pass


# -- Postgres -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An admin URL to a Postgres server (not yet to the test database)."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
    elif DOCKER:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        shared = _shared_dir(request.config)
        pgdata = shared / "pg" if shared else tmp_path_factory.mktemp("pg")
        with _workers_lock(request.config, "postgres"):
            server, url = start_embedded_postgres(pgdata)  # starts it, or attaches to it
        try:
            yield url
        finally:
            with _workers_lock(request.config, "postgres"):
                server.cleanup()  # stops it if no other worker still holds it


@pytest.fixture(scope="session")
def settings(
    request: pytest.FixtureRequest,
    admin_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Settings]:
    """Settings for a fresh, migrated database of this test session (of this xdist worker)."""
    database = f"tenantry_test_{uuid.uuid4().hex[:8]}"
    server = Settings(database_url=admin_database_url)
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
        usage_rollup_interval_seconds=0,  # and the usage rollup job (`usage_rollups`)
        rate_limits=False,  # tests of the limits turn them on (test_limits.py)
    )
    # Roles belong to the server, not to a database: workers sharing a server take turns (two
    # concurrent ALTER ROLEs of one role can fail with "tuple concurrently updated").
    with _workers_lock(request.config, "bootstrap"):
        asyncio.run(bootstrap.create_database_if_missing(server, database))
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


# Every public table but the bookkeeping ones (the schema version, the rollup job's watermark,
# which stays valid when events go: newer ones always come after it), and whether `tenantry_platform` sees all of its rows (no RLS, or its
# `USING (true)` policy), so that an empty answer from that role means an empty table.
_TABLES = """
SELECT c.relname AS name, NOT c.relrowsecurity OR EXISTS (
    SELECT FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname
    AND 'tenantry_platform' = ANY (p.roles) AND p.qual = 'true'
) AS platform_sees_all
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    AND c.relname NOT IN ('alembic_version', 'usage_rollup_state')
"""
# Every tenant table hangs off `tenants` (ON DELETE CASCADE); `platform_admins` stands alone.
_DELETE_ALL = "DELETE FROM tenants; DELETE FROM platform_admins"


async def empty_database(settings: Settings) -> None:
    """Leave every table empty, and the local store too.

    A DELETE of the few rows a test writes (cascading from `tenants`) takes a few milliseconds,
    a TRUNCATE of every table tens. Every table is then checked to be empty; if one is not (no
    cascade reaches it) or cannot be checked, every table is truncated as before.
    """
    async with connect_as(role_url(settings, "platform")) as connection:
        tables = await connection.fetch(_TABLES)
        any_rows = " UNION ALL ".join(
            f"(SELECT '{table['name']}' FROM \"{table['name']}\" LIMIT 1)" for table in tables
        )
        emptied = False
        if all(table["platform_sees_all"] for table in tables):
            with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                async with connection.transaction():
                    await connection.execute(_DELETE_ALL)
                    emptied = not await connection.fetch(any_rows)
    if not emptied:
        async with connect_as(role_url(settings, "owner")) as connection:
            names = ", ".join(f'"{table["name"]}"' for table in tables)
            await connection.execute(f"TRUNCATE {names} CASCADE")
    shutil.rmtree(settings.data_dir / "objects", ignore_errors=True)


@pytest.fixture
async def clean_database(settings: Settings) -> AsyncIterator[None]:
    """Every test that writes leaves empty tables and an empty local store."""
    yield
    await empty_database(settings)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
