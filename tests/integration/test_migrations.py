"""Migrations that hold: they import no application code, and the models agree with the
migrated schema."""

from __future__ import annotations

import ast
import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Enum
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.config import Settings
from tenantry.db import bootstrap
from tenantry.db.embedded import with_database
from tenantry.db.engines import admin_url, role_url
from tenantry.db.models import Base
from tenantry.db.paths import MIGRATIONS_DIR
from tests.conftest import connect_as


@pytest.fixture
async def blank_database(settings: Settings, admin_database_url: str) -> AsyncIterator[Settings]:
    """Settings for a new database of its own: roles bootstrapped, nothing migrated yet."""
    name = f"tenantry_migrations_{uuid.uuid4().hex[:8]}"
    server = Settings(database_url=admin_database_url)
    await bootstrap.create_database_if_missing(server, name)
    fresh = msgspec.structs.replace(settings, database_url=with_database(admin_database_url, name))
    await bootstrap.bootstrap_roles(fresh)
    try:
        yield fresh
    finally:
        async with connect_as(admin_url(server)) as connection:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _upgrade(settings: Settings, revision: str) -> None:
    # Alembic's env.py runs its own event loop: off this one.
    await asyncio.to_thread(bootstrap.upgrade, settings, revision)


# -- the models describe the migrated schema -------------------------------------------------


def test_migrations_import_no_application_code() -> None:
    files = sorted(MIGRATIONS_DIR.rglob("*.py"))
    assert MIGRATIONS_DIR / "env.py" in files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] != "tenantry", (path.name, module)


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": lambda name, kind, _parent: (
                not (kind == "table" and name == "alembic_version")
            ),
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def _index_predicates(connection: asyncpg.Connection) -> dict[str, tuple[Any, Any]]:
    """Per model index: (the model's WHERE, the database's), both as Postgres prints them.
    Alembic compares index columns but not a partial index's predicate."""
    predicates = {}
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            assert index.name is not None
            actual = await connection.fetchval(
                "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = $1::regclass",
                index.name,
            )
            where = index.dialect_options["postgresql"]["where"]
            expected = None
            if where is not None:
                # Postgres normalises the model's predicate on a scratch index, rolled back.
                sql = str(where.compile(dialect=postgresql.dialect()))
                scratch = connection.transaction()
                await scratch.start()
                try:
                    await connection.execute(
                        f"CREATE INDEX scratch ON {table.name} (tenant_id) WHERE {sql}"
                    )
                    expected = await connection.fetchval(
                        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                        "WHERE indexrelid = 'scratch'::regclass"
                    )
                finally:
                    await scratch.rollback()
            predicates[index.name] = (expected, actual)
    return predicates


async def test_models_match_migrated_schema(blank_database: Settings) -> None:
    await _upgrade(blank_database, "head")
    engine = create_async_engine(role_url(blank_database, "owner"))
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_schema_diff)
    finally:
        await engine.dispose()
    assert diff == [], "models and migrations disagree:\n" + "\n".join(map(str, diff))
    async with connect_as(role_url(blank_database, "owner")) as owner:
        predicates = await _index_predicates(owner)
    assert predicates["ix_files_tenant_id_created_at_ready"][1] is not None
    assert {name: p for name, p in predicates.items() if p[0] != p[1]} == {}


async def test_enums_match_check_constraints(owner_connection: asyncpg.Connection) -> None:
    """Alembic does not compare CHECK constraints; the enumerations and the migrations' CHECKs
    on the same columns must allow exactly the same values."""
    checked = 0
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, Enum):
                continue
            definitions = await owner_connection.fetch(
                "SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
                "WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND a.attname = $2",
                table.name,
                column.name,
            )
            for row in definitions:
                allowed = set(re.findall(r"'([^']*)'", row["definition"]))
                assert allowed == set(column.type.enums), (table.name, column.name)
                checked += 1
    assert checked == 5  # every enumerated column but usage_events.user_role has a CHECK
