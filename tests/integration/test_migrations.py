"""Migrations that hold: the models agree with the migrated schema, and a database holding data
at any earlier revision upgrades to head with every derived table agreeing with a scan.

Seed data is plain SQL written here, never the application's services, so these tests do not
change when the application does (a migration is history; so is the data it meets).
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Enum
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.config import Settings
from tenantry.db import bootstrap
from tenantry.db.embedded import with_database
from tenantry.db.engines import admin_url, owner_db_config, platform_db_config, role_url
from tenantry.db.models import Base
from tenantry.db.paths import MIGRATIONS_DIR, find_migrations_dir
from tenantry.usage.rollups import RollupJob
from tests.conftest import connect_as


def _revision_chain() -> list[str]:
    """Revisions from the first to head, read from the version files' source (Alembic would
    execute them; here only their `revision` and `down_revision` matter)."""
    parents: dict[str | None, str] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id in ("revision", "down_revision")
                and node.value is not None
            ):
                values[node.target.id] = ast.literal_eval(node.value)
        assert values["down_revision"] not in parents, f"a branch at {path.name}"
        parents[values["down_revision"]] = values["revision"]
    chain, revision = [], parents.get(None)
    while revision is not None:
        chain.append(revision)
        revision = parents.get(revision)
    assert len(chain) == len(parents), "version files outside the chain"
    return chain


CHAIN = _revision_chain()
HEAD = CHAIN[-1]


def _at_least(revision: str, than: str) -> bool:
    return CHAIN.index(revision) >= CHAIN.index(than)


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


async def _downgrade(settings: Settings, revision: str) -> None:
    commands = AlembicCommands(sqlalchemy_config=owner_db_config(settings))
    await asyncio.to_thread(commands.downgrade, revision)


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


# The event partitions are made at run time by the migrations' function, not modelled (their
# columns and indexes are the parent's; test_rls checks their policies).
PARTITION = re.compile(r"usage_events_[0-9]{4}_[0-9]{2}")


def _modelled(name: str | None, kind: str, parent: dict[str, str | None]) -> bool:
    table = name if kind == "table" else parent.get("table_name")
    return table != "alembic_version" and not PARTITION.fullmatch(table or "")


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "include_name": _modelled},
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
    assert checked == 11  # every enumerated column but usage_events.user_role has a CHECK


# -- data meets the migrations ---------------------------------------------------------------

# (slug, status, categories, audiences, files)
TENANTS = [
    ("alpha", "active", ["Safety", "Onboarding", "Leadership"], ["Mentors", "Mentees"], 14),
    ("beta", "active", ["Guides", "Videos"], ["Everyone", "Staff", "Partners"], 9),
    ("gamma", "suspended", ["Misc"], ["All"], 4),
    ("delta", "deleted", [], [], 0),  # offboarded: its files, domains and stats are gone
]
ROLES = ["owner", "admin", "editor", "viewer"]
CONTENT_TYPES = ["application/pdf", "video/mp4", "image/png", "image/jpeg"]
LANGUAGES = ["en", "de", "fr", None]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def _seed(connection: asyncpg.Connection, revision: str, rng: random.Random) -> int:
    """What a live database at `revision` holds, as plain SQL; returns the ready files made."""
    now = datetime.now(UTC)
    ready_files = 0
    await connection.execute(
        "INSERT INTO platform_admins (email, password_hash) VALUES ($1, $2)",
        "operator@example.com",
        "$2b$12$" + "o" * 53,
    )
    for slug, status, category_names, audience_names, file_count in TENANTS:
        tenant_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO tenants (id, slug, name, status, plan, storage_quota_bytes, "
            "max_file_bytes, settings, branding, created_at, deleted_at) "
            "VALUES ($1, $2, $3, $4, 'standard', $5, $6, $7::jsonb, $8::jsonb, $9, $10)",
            tenant_id,
            slug,
            slug.title(),
            status,
            10 * 2**30,
            2 * 2**30,
            json.dumps({"allow_signup": slug == "beta"}),
            json.dumps({"primary_color": "#123456", "name": slug.title()}),
            now - timedelta(days=30),
            now - timedelta(days=1) if status == "deleted" else None,
        )
        if status != "deleted":
            await connection.executemany(
                "INSERT INTO tenant_domains (domain, tenant_id, is_primary) VALUES ($1, $2, $3)",
                [
                    (f"{slug}.localhost", tenant_id, True),
                    (f"learn.{slug}.example", tenant_id, False),
                ],
            )
        users = {role: uuid.uuid4() for role in ROLES}
        await connection.executemany(
            "INSERT INTO users (tenant_id, id, email, password_hash, role, disabled) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (tenant_id, user_id, f"{role}@{slug}.example", "$2b$12$" + "u" * 53, role, False)
                for role, user_id in users.items()
            ],
        )
        tokens = []
        for role, user_id in users.items():
            family = uuid.uuid4()
            # A rotated token and its live successor; the viewer logged out (family revoked).
            revoked = now if role == "viewer" else None
            tokens.append((tenant_id, user_id, family, _hash(f"{slug}{role}1"), now, revoked))
            tokens.append((tenant_id, user_id, family, _hash(f"{slug}{role}2"), None, revoked))
        await connection.executemany(
            "INSERT INTO refresh_tokens (tenant_id, user_id, family_id, token_hash, expires_at, "
            "rotated_at, revoked_at) VALUES ($1, $2, $3, $4, now() + interval '30 days', $5, $6)",
            tokens,
        )
        if not _at_least(revision, "0002"):
            continue

        categories = [uuid.uuid4() for _ in category_names]
        audiences = [uuid.uuid4() for _ in audience_names]
        await connection.executemany(
            "INSERT INTO categories (tenant_id, id, name) VALUES ($1, $2, $3)",
            [(tenant_id, c, name) for c, name in zip(categories, category_names, strict=True)],
        )
        await connection.executemany(
            "INSERT INTO audiences (tenant_id, id, name) VALUES ($1, $2, $3)",
            [(tenant_id, a, name) for a, name in zip(audiences, audience_names, strict=True)],
        )
        statuses = ["ready", "ready", "ready", "pending", "deleting"]
        if _at_least(revision, "0003"):
            statuses.append("uploading")
        stats: dict[tuple[str, str], list[int]] = {}
        storage, events = 0, []
        for n in range(file_count):
            file_id = uuid.uuid4()
            # The first three are ready, so every tenant with files has some of each kind.
            file_status = statuses[n] if n < len(statuses) else rng.choice(statuses)
            category = rng.choice([*categories, None])
            language = rng.choice(LANGUAGES)
            ready = file_status == "ready"
            content_type = rng.choice(CONTENT_TYPES) if ready or n % 2 else None
            size = rng.randint(1, 50_000_000) if ready else rng.choice([0, rng.randint(1, 9999)])
            chosen = rng.sample(audiences, rng.randint(0, len(audiences)))
            uploader = rng.choice([users["owner"], users["admin"], users["editor"], None])
            await connection.execute(
                "INSERT INTO files (tenant_id, id, title, description, category_id, language, "
                "content_type, size, sha256, original_filename, storage_key, status, "
                "uploaded_by, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                tenant_id,
                file_id,
                f"File {n} of {slug}",
                "" if n % 3 else "A description.",
                category,
                language,
                content_type,
                size,
                _hash(str(file_id)) if ready else None,
                f"file-{n}.bin",
                f"tenants/{tenant_id}/files/{file_id}",
                file_status,
                uploader,
                now - timedelta(hours=file_count - n),
            )
            await connection.executemany(
                "INSERT INTO file_audiences (tenant_id, file_id, audience_id) VALUES ($1, $2, $3)",
                [(tenant_id, file_id, a) for a in chosen],
            )
            if not ready:
                continue
            ready_files += 1
            storage += size
            facets = [
                ("total", ""),
                ("category", str(category) if category else ""),
                ("language", language or ""),
                ("content_type", content_type or ""),
                *(("audience", str(a)) for a in chosen),
            ]
            for facet in facets:
                counted = stats.setdefault(facet, [0, 0])
                counted[0] += 1
                counted[1] += size
            for kind, user_id, nbytes in (
                ("upload", uploader, size),
                ("download", users["viewer"], 0),
            ):
                role = next((r for r, u in users.items() if u == user_id), None)
                facts = (file_id, nbytes, category, language, chosen, content_type)
                events.append((tenant_id, kind, user_id, role, *facts))
        events += [
            (tenant_id, "login", user_id, role, None, 0, None, None, [], None)
            for role, user_id in users.items()
        ]
        events.append(
            (tenant_id, "signup", users["viewer"], "viewer", None, 0, None, None, [], None)
        )
        await connection.executemany(
            "INSERT INTO usage_events (tenant_id, kind, user_id, user_role, file_id, bytes, "
            "category_id, language, audience_ids, content_type) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            events,
        )
        # Provisioning makes the counter; every ready file added to it in its own transaction.
        await connection.execute(
            "INSERT INTO tenant_usage (tenant_id, storage_bytes, file_count) VALUES ($1, $2, $3)",
            tenant_id,
            storage,
            stats.get(("total", ""), [0, 0])[0],
        )
        if _at_least(revision, "0004"):
            # As the app keeps it: every ready file counted, and rows left at zero by files
            # that were deleted or changed.
            stats[("language", "es")] = [0, 0]
            stats[("content_type", "video/webm")] = [0, 0]
            await connection.executemany(
                "INSERT INTO file_stats (tenant_id, dimension, key, files, bytes) "
                "VALUES ($1, $2, $3, $4, $5)",
                [(tenant_id, d, k, files, size) for (d, k), (files, size) in stats.items()],
            )
        if _at_least(revision, "0008"):
            # The limits' live bookkeeping: a bucket mid-refill, an upload slot held.
            await connection.execute(
                "INSERT INTO rate_buckets (tenant_id, bucket, tokens, granted, refreshed_at) "
                "VALUES ($1, 'api', 123.5, 4, $2)",
                tenant_id,
                now,
            )
            await connection.execute(
                "INSERT INTO upload_slots (tenant_id, id, expires_at) VALUES ($1, $2, $3)",
                tenant_id,
                uuid.uuid4(),
                now + timedelta(minutes=1),
            )
        if _at_least(revision, "0009"):
            await _seed_direct_upload(connection, tenant_id, now)
    return ready_files


async def _seed_direct_upload(
    connection: asyncpg.Connection, tenant_id: uuid.UUID, now: datetime
) -> None:
    """A direct upload in flight: its file uploading, its bytes reserved on the counter."""
    declared = 1_000
    file_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO files (tenant_id, id, title, original_filename, storage_key, status, size) "
        "VALUES ($1, $2, 'In flight', 'big.pdf', $3, 'uploading', 0)",
        tenant_id,
        file_id,
        f"tenants/{tenant_id}/files/{file_id}",
    )
    await connection.execute(
        "INSERT INTO upload_sessions (tenant_id, file_id, store_upload_id, declared_size, "
        "declared_type, part_size, reserved_bytes, expires_at) "
        "VALUES ($1, $2, 'multipart-1', $3, 'application/pdf', 8388608, $3, $4)",
        tenant_id,
        file_id,
        declared,
        now + timedelta(hours=1),
    )
    await connection.execute(
        "UPDATE tenant_usage SET reserved_bytes = reserved_bytes + $2 WHERE tenant_id = $1",
        tenant_id,
        declared,
    )


# What the rollup must say, from the files themselves: ready files per tenant, dimension and
# key (tenantry.files.rollup), files without a category, language or type under the key ''.
EXPECTED_STATS = """
    WITH ready AS (SELECT * FROM files WHERE status = 'ready')
    SELECT tenant_id, 'total' AS dimension, '' AS key, count(*) AS files, sum(size)::bigint AS bytes
        FROM ready GROUP BY tenant_id
    UNION ALL SELECT tenant_id, 'category', COALESCE(category_id::text, ''), count(*), sum(size)::bigint
        FROM ready GROUP BY tenant_id, category_id
    UNION ALL SELECT tenant_id, 'language', COALESCE(language, ''), count(*), sum(size)::bigint
        FROM ready GROUP BY tenant_id, language
    UNION ALL SELECT tenant_id, 'content_type', COALESCE(content_type, ''), count(*), sum(size)::bigint
        FROM ready GROUP BY tenant_id, content_type
    UNION ALL SELECT r.tenant_id, 'audience', fa.audience_id::text, count(*), sum(r.size)::bigint
        FROM ready r JOIN file_audiences fa ON fa.tenant_id = r.tenant_id AND fa.file_id = r.id
        GROUP BY r.tenant_id, fa.audience_id
"""
USAGE_VS_SCAN = """
    SELECT t.slug, u.storage_bytes, u.file_count,
        (SELECT COALESCE(sum(size), 0) FROM files f
            WHERE f.tenant_id = t.id AND f.status = 'ready') AS ready_bytes,
        (SELECT count(*) FROM files f WHERE f.tenant_id = t.id AND f.status = 'ready') AS ready
    FROM tenants t LEFT JOIN tenant_usage u ON u.tenant_id = t.id
"""
TENANT_TABLES = """
    SELECT c.relname, c.relforcerowsecurity FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'tenant_domains'
"""


async def _row_counts(connection: asyncpg.Connection) -> dict[str, int]:
    tables = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT IN ('alembic_version', 'file_stats')"
    )
    return {
        t["tablename"]: await connection.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
        for t in tables
    }


async def _stats(connection: asyncpg.Connection) -> set[tuple[Any, ...]]:
    rows = await connection.fetch("SELECT tenant_id, dimension, key, files, bytes FROM file_stats")
    return {tuple(row) for row in rows}


# The usage rollups against the raw events: per tenant and kind, and storage at the end.
USAGE_ROLLUPS_VS_EVENTS = """
    SELECT t.slug,
        (SELECT count(*) FROM usage_events e WHERE e.tenant_id = t.id AND kind = 'upload')
            AS uploads_scanned,
        (SELECT COALESCE(sum(uploads), 0) FROM usage_daily d
            WHERE d.tenant_id = t.id AND dimension = 'total') AS uploads,
        (SELECT count(*) FROM usage_events e WHERE e.tenant_id = t.id AND kind = 'download')
            AS downloads_scanned,
        (SELECT COALESCE(sum(downloads), 0) FROM usage_daily d
            WHERE d.tenant_id = t.id AND dimension = 'total') AS downloads,
        (SELECT count(*) FROM usage_events e WHERE e.tenant_id = t.id AND kind = 'login')
            AS logins_scanned,
        (SELECT COALESCE(sum(logins), 0) FROM usage_daily d
            WHERE d.tenant_id = t.id AND dimension = 'total') AS logins,
        (SELECT COALESCE(sum(CASE kind WHEN 'upload' THEN bytes ELSE -bytes END), 0)
            FROM usage_events e WHERE e.tenant_id = t.id AND kind IN ('upload', 'delete'))
            AS storage_scanned,
        (SELECT storage_bytes FROM usage_storage_daily s WHERE s.tenant_id = t.id
            ORDER BY day DESC LIMIT 1) AS storage
    FROM tenants t
"""


async def _assert_usage_rolled_up(settings: Settings) -> None:
    """The rollup job's first run after 0006 counts every event the database held."""
    config = platform_db_config(settings)
    try:
        counted = await RollupJob(config, retention_days=400).catch_up()
    finally:
        await config.get_engine().dispose()
    async with connect_as(role_url(settings, "platform")) as platform:
        assert counted == await platform.fetchval("SELECT count(*) FROM usage_events")
        for row in await platform.fetch(USAGE_ROLLUPS_VS_EVENTS):
            assert row["uploads"] == row["uploads_scanned"], row
            assert row["downloads"] == row["downloads_scanned"], row
            assert row["logins"] == row["logins_scanned"], row
            if row["uploads_scanned"]:
                assert row["storage"] == row["storage_scanned"], row


# 0008: what is reserved is what unsettled direct uploads hold.
RESERVED_VS_SESSIONS = """
    SELECT u.tenant_id, u.reserved_bytes,
        (SELECT COALESCE(sum(reserved_bytes), 0) FROM upload_sessions s
            WHERE s.tenant_id = u.tenant_id AND s.state <> 'completed') AS held_bytes
    FROM tenant_usage u
"""


async def _assert_derived_tables_agree_with_scan(connection: asyncpg.Connection) -> None:
    stats = await _stats(connection)
    expected = {tuple(row) for row in await connection.fetch(EXPECTED_STATS)}
    assert {row for row in stats if row[3] != 0} == expected
    assert all(row[4] == 0 for row in stats if row[3] == 0), "a zero row with bytes"
    for row in await connection.fetch(USAGE_VS_SCAN):
        assert row["storage_bytes"] is not None, f"{row['slug']} has no tenant_usage row"
        assert (row["storage_bytes"], row["file_count"]) == (row["ready_bytes"], row["ready"]), row


async def _assert_tenant_functions_read_what_tables_hold(settings: Settings) -> None:
    """0011: on the data the older schema held, the one-round-trip functions read, as the app,
    what the tables hold, and only under their own tenant's setting."""
    async with (
        connect_as(role_url(settings, "platform")) as platform,
        connect_as(role_url(settings, "app")) as app,
    ):
        tenants = [row["id"] for row in await platform.fetch("SELECT id FROM tenants")]
        assert len(tenants) >= 2
        for tenant in tenants:
            setting, other = str(tenant), str(next(t for t in tenants if t != tenant))
            expected = await platform.fetch(
                "SELECT f.id, (SELECT coalesce(array_agg(a.audience_id), '{}') FROM"
                " file_audiences a WHERE a.file_id = f.id) AS audiences FROM files f"
                " WHERE f.tenant_id = $1 AND f.status = 'ready'"
                " ORDER BY f.created_at DESC, f.id DESC LIMIT 50",
                tenant,
            )
            total = await platform.fetchval(
                "SELECT file_count FROM tenant_usage WHERE tenant_id = $1", tenant
            )
            page = await app.fetch(
                "SELECT * FROM tenant_file_page($1, $2, '-created_at', 50, 0)", setting, tenant
            )
            assert page[0]["total"] == total
            got = [
                (uuid.UUID(item["id"]), {uuid.UUID(a) for a in item["audiences"]})
                for item in json.loads(page[0]["items"])
            ]
            assert got == [(row["id"], set(row["audiences"])) for row in expected]
            assert not await app.fetch(
                "SELECT * FROM tenant_file_page($1, $2, '-created_at', 50, 0)", other, tenant
            )
            for file_id, _ in got[:3]:
                one = await app.fetch(
                    "SELECT * FROM tenant_file($1, $2, $3)", setting, tenant, file_id
                )
                assert [row["id"] for row in one] == [file_id]
                assert not await app.fetch(
                    "SELECT * FROM tenant_file($1, $2, $3)", other, tenant, file_id
                )
            users = await platform.fetch(
                "SELECT id, email FROM users WHERE tenant_id = $1 AND NOT disabled", tenant
            )
            for user in users:
                me = await app.fetch(
                    "SELECT * FROM tenant_me($1, $2, $3)", setting, tenant, user["id"]
                )
                assert [row["email"] for row in me] == [user["email"]]
                assert not await app.fetch(
                    "SELECT * FROM tenant_me($1, $2, $3)", "", tenant, user["id"]
                )
            # The setting ended with the statement: the connection sees no tenant after it.
            assert await app.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)


@pytest.mark.parametrize("revision", CHAIN[:-1])
async def test_upgrade_from_revision_with_data(blank_database: Settings, revision: str) -> None:
    await _upgrade(blank_database, revision)
    async with connect_as(role_url(blank_database, "platform")) as platform:
        ready_files = await _seed(platform, revision, random.Random(revision))
        counts = await _row_counts(platform)
    assert ready_files > 0 or not _at_least(revision, "0002")

    await _upgrade(blank_database, "head")

    async with connect_as(role_url(blank_database, "platform")) as platform:
        now = await _row_counts(platform)
        assert {table: now[table] for table in counts} == counts, "rows lost or made"
        await _assert_derived_tables_agree_with_scan(platform)
        reserved = await platform.fetch(RESERVED_VS_SESSIONS)
        assert reserved
        assert all(row["reserved_bytes"] == row["held_bytes"] for row in reserved), reserved
        if ready_files:
            assert await platform.fetchval("SELECT count(*) FROM file_stats WHERE files > 0")
        # 0007's backfill: the domains the operator had added are verified since they were made.
        domains = await platform.fetch(
            "SELECT verified, verified_at, created_at FROM tenant_domains"
        )
        assert domains, "the seed made domains"
        if not _at_least(revision, "0007"):
            assert all(d["verified"] and d["verified_at"] == d["created_at"] for d in domains)
        assert await platform.fetchval("SELECT count(*) FROM users WHERE token_epoch <> 0") == 0
        # 0008: every tenant keeps its plan's limits (no overrides).
        assert await platform.fetchval("SELECT count(*) FROM tenants WHERE limits <> '{}'") == 0
        # 0010: the direct uploads in flight stay direct, nothing received through tus.
        assert not await platform.fetchval(
            "SELECT count(*) FROM upload_sessions WHERE protocol <> 'direct' OR received_bytes <> 0"
        )
        if _at_least(revision, "0009"):
            assert await platform.fetchval("SELECT count(*) FROM upload_sessions")
    if _at_least(revision, "0002"):
        await _assert_usage_rolled_up(blank_database)
    await _assert_tenant_functions_read_what_tables_hold(blank_database)
    async with connect_as(role_url(blank_database, "owner")) as owner:
        assert await owner.fetchval("SELECT version_num FROM alembic_version") == HEAD
        # Whatever the migrations did to read tenant rows, it is undone: RLS is forced on
        # every tenant table again, no policy names the owner, and the owner reads nothing.
        tables = await owner.fetch(TENANT_TABLES)
        assert tables
        assert all(t["relforcerowsecurity"] for t in tables), tables
        assert not await owner.fetchval(
            "SELECT count(*) FROM pg_policies WHERE 'tenantry_owner' = ANY(roles)"
        )
        assert await owner.fetchval("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("with_data", [True, False], ids=["files", "empty"])
async def test_stats_recount_is_idempotent(blank_database: Settings, with_data: bool) -> None:
    """0005 rebuilds the rollup whatever it finds: run twice, same rollup; nothing from nothing."""
    await _upgrade(blank_database, "0003")
    if with_data:
        async with connect_as(role_url(blank_database, "platform")) as platform:
            await _seed(platform, "0003", random.Random(3))
    await _upgrade(blank_database, "0005")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        first = await _stats(platform)
        # Counts left wrong behind the rollup's back are put right by the next run.
        await platform.execute("UPDATE file_stats SET files = files + 7")
    await _downgrade(blank_database, "0004")
    await _upgrade(blank_database, "0005")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        assert await _stats(platform) == first
        await _assert_derived_tables_agree_with_scan(platform)
    assert bool(first) == with_data


async def test_usage_partitioning_round_trips(blank_database: Settings) -> None:
    """0006 down and up again keeps every event (but the `serve` kind 0005 cannot hold)."""
    await _upgrade(blank_database, "0005")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        await _seed(platform, "0005", random.Random(6))
        events = "SELECT id, tenant_id, occurred_at, kind, bytes FROM usage_events ORDER BY id"
        before = [tuple(row) for row in await platform.fetch(events)]
    assert before
    await _upgrade(blank_database, "head")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        assert [tuple(row) for row in await platform.fetch(events)] == before
        # Each event sits in the partition of its month.
        misplaced = await platform.fetchval(
            "SELECT count(*) FROM usage_events WHERE tableoid::regclass::text "
            "<> 'usage_events_' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY_MM')"
        )
        assert misplaced == 0
    await _downgrade(blank_database, "0005")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        assert [tuple(row) for row in await platform.fetch(events)] == before
    await _upgrade(blank_database, "head")
    async with connect_as(role_url(blank_database, "platform")) as platform:
        assert [tuple(row) for row in await platform.fetch(events)] == before


# -- the migrations ship inside the wheel ----------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    uv = shutil.which("uv")
    assert uv is not None, "uv is needed to build the wheel"
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [uv, "build", "--wheel", "-o", str(out), "-q"], cwd=project_root, check=True, timeout=300
    )
    (built,) = out.glob("tenantry-*.whl")
    return built


def test_wheel_carries_the_migrations(wheel: Path, project_root: Path) -> None:
    source = project_root / "migrations"
    expected = {
        "tenantry/migrations/" + path.relative_to(source).as_posix(): path.read_bytes()
        for path in [
            source / "env.py",
            source / "rls_v1.py",
            source / "script.py.mako",
            *sorted((source / "versions").glob("*.py")),
        ]
    }
    assert len(expected) == 3 + len(CHAIN)
    with zipfile.ZipFile(wheel) as archive:
        packaged = {
            name: archive.read(name)
            for name in archive.namelist()
            if name.startswith("tenantry/migrations/")
        }
    # The same files, byte for byte, and nothing else (no bytecode, no stray files).
    assert packaged.keys() == expected.keys()
    assert packaged == expected


def test_paths_prefer_the_checkout_then_the_package(tmp_path: Path) -> None:
    checkout, package = tmp_path / "checkout", tmp_path / "site-packages" / "tenantry"
    for migrations in (checkout / "migrations", package / "migrations"):
        migrations.mkdir(parents=True)
        (migrations / "env.py").write_text("")
    assert find_migrations_dir(checkout, package) == checkout / "migrations"
    # Installed: site-packages' parent has no migrations of its own (or an unrelated folder).
    assert find_migrations_dir(tmp_path / "nowhere", package) == package / "migrations"
    (checkout / "migrations" / "env.py").unlink()
    assert find_migrations_dir(checkout, package) == package / "migrations"


# Runs in a child process on the unpacked wheel, as an installed package would.
_UPGRADE_FROM_WHEEL = """
import sys
sys.path.insert(0, sys.argv[1])
import msgspec
import tenantry
from tenantry.config import Settings
from tenantry.db import bootstrap
from tenantry.db.paths import MIGRATIONS_DIR
print(tenantry.__file__)
print(MIGRATIONS_DIR)
settings = msgspec.json.decode(sys.argv[2], type=Settings, dec_hook=lambda kind, v: kind(v))
bootstrap.upgrade(settings)
"""


async def test_installed_package_runs_its_own_migrations(
    wheel: Path, blank_database: Settings, tmp_path: Path
) -> None:
    site = tmp_path / "site-packages"  # its parent, tmp_path, has no `migrations/`
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    settings = msgspec.json.encode(blank_database, enc_hook=str).decode()
    child = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _UPGRADE_FROM_WHEEL, str(site), settings],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    package_file, migrations_dir = child.stdout.split()[:2]
    assert Path(package_file).is_relative_to(site)
    assert Path(migrations_dir) == site / "tenantry" / "migrations"
    async with connect_as(role_url(blank_database, "owner")) as owner:
        assert await owner.fetchval("SELECT version_num FROM alembic_version") == HEAD
        assert await owner.fetchval("SELECT to_regclass('file_stats') IS NOT NULL")
