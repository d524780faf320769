"""The database keeps tenants apart by itself: RLS matrix, catalog rules, pooled connections.

These tests talk to Postgres as `tenantry_app`, the role the API uses, with no application code
in between: whatever a buggy repository might send, this is what the database lets through.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select, text

from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, role_url, tenant_db_config
from tenantry.db.models import User
from tenantry.db.reads import PreparedRead, TenantReader
from tenantry.db.tenant_scope import TenantRecord, current_tenant

# One row per tenant table, as the owner would insert it for `tenant_id`. A tenant table
# missing here fails `test_matrix_covers_every_tenant_table`, so new tables join the matrix.
RowFactory = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[dict[str, object]]]


async def _user_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "id": uuid.uuid4(),
        "email": f"{uuid.uuid4().hex[:8]}@example.com",
        "password_hash": "x" * 60,
        "role": "viewer",
    }


async def _refresh_token_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    user_id = await connection.fetchval(
        "SELECT id FROM users WHERE tenant_id = $1 LIMIT 1", tenant_id
    )
    return {
        "tenant_id": tenant_id,
        "id": uuid.uuid4(),
        "user_id": user_id,
        "family_id": uuid.uuid4(),
        "token_hash": uuid.uuid4().hex,
        "expires_at": datetime.now(UTC),
    }


async def _named_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    return {"tenant_id": tenant_id, "id": uuid.uuid4(), "name": uuid.uuid4().hex[:12]}


async def _file_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    file_id = uuid.uuid4()
    return {
        "tenant_id": tenant_id,
        "id": file_id,
        "title": "t",
        "original_filename": "t.pdf",
        "storage_key": f"tenants/{tenant_id}/files/{file_id}",
    }


async def _file_audience_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    file = await _file_row(connection, tenant_id)
    audience = await _named_row(connection, tenant_id)
    if await connection.fetchval("SELECT current_user") == "tenantry_platform":
        await _insert(connection, "files", file)
        await _insert(connection, "audiences", audience)
    return {"tenant_id": tenant_id, "file_id": file["id"], "audience_id": audience["id"]}


async def _upload_session_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    file = await _file_row(connection, tenant_id)
    if await connection.fetchval("SELECT current_user") == "tenantry_platform":
        await _insert(connection, "files", file)
    return {
        "tenant_id": tenant_id,
        "id": uuid.uuid4(),
        "file_id": file["id"],
        "declared_size": 10,
        "declared_type": "application/pdf",
        "part_size": 10,
        "reserved_bytes": 10,
        "expires_at": datetime.now(UTC),
    }


async def _usage_event_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    return {"tenant_id": tenant_id, "id": uuid.uuid4(), "kind": "download", "bytes": 1}


async def _tenant_usage_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    # One row per tenant; inserting another is refused by RLS before the key is even checked.
    return {"tenant_id": tenant_id, "storage_bytes": 1, "file_count": 1}


async def _file_stat_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "dimension": "language",
        "key": uuid.uuid4().hex[:2],
        "files": 1,
    }


async def _usage_daily_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "day": datetime.now(UTC).date(),
        "dimension": "language",
        "key": uuid.uuid4().hex[:2],
        "downloads": 1,
    }


async def _usage_daily_user_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    return {"tenant_id": tenant_id, "day": datetime.now(UTC).date(), "user_id": uuid.uuid4()}


async def _usage_storage_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    day = datetime.now(UTC).date() - timedelta(days=random.randint(1, 10_000))
    return {"tenant_id": tenant_id, "day": day, "storage_bytes": 1, "file_count": 1}


async def _user_token_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    user = await _refresh_token_row(connection, tenant_id)
    return {
        "tenant_id": tenant_id,
        "user_id": user["user_id"],
        "purpose": "invitation",
        "token_hash": uuid.uuid4().hex * 2,
        "expires_at": datetime.now(UTC),
    }


async def _api_key_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "name": "ci",
        "role": "viewer",
        "secret_hash": uuid.uuid4().hex * 2,
    }


async def _audit_row(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, object]:
    return {"tenant_id": tenant_id, "actor_type": "system", "action": "test"}


# Rollups are the job's (platform role): the app may only read them.
APPEND_ONLY = {"usage_events", "audit_log"}
READ_ONLY = {"usage_daily", "usage_daily_users", "usage_storage_daily"}


async def _rate_bucket_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "bucket": "api",
        "tokens": 10.0,
        "granted": 1,
        "refreshed_at": datetime.now(UTC),
    }


async def _upload_slot_row(
    connection: asyncpg.Connection, tenant_id: uuid.UUID
) -> dict[str, object]:
    return {"tenant_id": tenant_id, "id": uuid.uuid4(), "expires_at": datetime.now(UTC)}


ROW_FACTORIES: dict[str, RowFactory] = {
    "users": _user_row,
    "refresh_tokens": _refresh_token_row,
    "categories": _named_row,
    "audiences": _named_row,
    "files": _file_row,
    "file_audiences": _file_audience_row,
    "upload_sessions": _upload_session_row,
    "usage_events": _usage_event_row,
    "tenant_usage": _tenant_usage_row,
    "file_stats": _file_stat_row,
    "usage_daily": _usage_daily_row,
    "usage_daily_users": _usage_daily_user_row,
    "usage_storage_daily": _usage_storage_row,
    "user_tokens": _user_token_row,
    "api_keys": _api_key_row,
    "audit_log": _audit_row,
    "rate_buckets": _rate_bucket_row,
    "upload_slots": _upload_slot_row,
}


async def _insert(connection: asyncpg.Connection, table: str, row: dict[str, object]) -> str:
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return await connection.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", *row.values()
    )


async def _tenant_tables(connection: asyncpg.Connection, *, partitions: bool = False) -> list[str]:
    """Tables with a tenant_id; with `partitions`, the event partitions too (tables of their
    own, which can be queried directly)."""
    rows = await connection.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'tenant_domains' "
        "AND ($1 OR NOT c.relispartition) ORDER BY c.relname",
        partitions,
    )
    return [row["relname"] for row in rows]


# This month's partition of the events, attacked directly like any table.
CURRENT_PARTITION = "usage_events_" + datetime.now(UTC).strftime("%Y_%m")


@pytest.fixture
async def two_tenants(
    platform_connection: asyncpg.Connection, clean_database: None
) -> AsyncIterator[tuple[uuid.UUID, uuid.UUID]]:
    """Tenants A and B, each with one row in every tenant table (seeded by the platform role)."""
    ids = []
    for slug in ("tenant-a", "tenant-b"):
        tenant_id = await platform_connection.fetchval(
            "INSERT INTO tenants (slug, name, storage_quota_bytes, max_file_bytes) "
            "VALUES ($1, $1, 1024, 1024) RETURNING id",
            slug,
        )
        for table, factory in ROW_FACTORIES.items():
            await _insert(platform_connection, table, await factory(platform_connection, tenant_id))
        ids.append(tenant_id)
    return ids[0], ids[1]


async def test_matrix_covers_every_tenant_table(owner_connection: asyncpg.Connection) -> None:
    assert sorted(ROW_FACTORIES) == await _tenant_tables(owner_connection)


@pytest.mark.parametrize("table", [*sorted(ROW_FACTORIES), CURRENT_PARTITION])
async def test_rls_matrix(
    table: str,
    two_tenants: tuple[uuid.UUID, uuid.UUID],
    app_connection: asyncpg.Connection,
    platform_connection: asyncpg.Connection,
) -> None:
    tenant_a, tenant_b = two_tenants
    connection = app_connection
    factory = ROW_FACTORIES["usage_events" if table == CURRENT_PARTITION else table]
    count_for = f"SELECT count(*) FROM {table} WHERE tenant_id = $1"
    rows_of_a = await platform_connection.fetchval(count_for, tenant_a)
    rows_of_b = await platform_connection.fetchval(count_for, tenant_b)
    assert rows_of_a >= 1
    assert rows_of_b >= 1
    async with connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_a))
        # A sees its own rows only, even when a query names B's id.
        assert await connection.fetchval(f"SELECT count(*) FROM {table}") == rows_of_a
        assert await connection.fetchval(count_for, tenant_b) == 0
        if table in APPEND_ONLY | READ_ONLY or table == CURRENT_PARTITION:
            # Not even A's own rows may be changed: the app role has no UPDATE or DELETE.
            for statement in (f"UPDATE {table} SET tenant_id = tenant_id", f"DELETE FROM {table}"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with connection.transaction():
                        await connection.execute(statement)
        else:
            # Updates and deletes of B's rows touch nothing.
            update_b = f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = $1"
            assert await connection.execute(update_b, tenant_b) == "UPDATE 0"
            delete_b = f"DELETE FROM {table} WHERE tenant_id = $1"
            assert await connection.execute(delete_b, tenant_b) == "DELETE 0"
            # Moving A's rows into B is refused by WITH CHECK.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with connection.transaction():
                    await connection.execute(f"UPDATE {table} SET tenant_id = $1", tenant_b)
        # Inserting a row for B is refused.
        row_for_b = await factory(platform_connection, tenant_b)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with connection.transaction():
                await _insert(connection, table, row_for_b)

    # No tenant set: nothing is visible and nothing can be written.
    row_for_a = await factory(platform_connection, tenant_a)
    async with connection.transaction():
        assert await connection.fetchval(f"SELECT count(*) FROM {table}") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _insert(connection, table, row_for_a)
    if table in READ_ONLY:
        # Rollups are the job's: the app cannot add to its own tenant's either.
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_a))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _insert(connection, table, await factory(platform_connection, tenant_a))
    # Once the pooled connection has carried a tenant, "unset" reads back as '' (NULLIF case).
    async with connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', '', true)")
        assert await connection.fetchval(f"SELECT count(*) FROM {table}") == 0
    # B's rows are all still there.
    assert await platform_connection.fetchval(count_for, tenant_b) >= rows_of_b


# The order the rollup job and the billing export read events in is across tenants by nature
# (one total order of commits); only the platform role uses it.
CROSS_TENANT_INDEXES = re.compile(r"(ix_usage_events|usage_events_[0-9_]+)_txid_seq(_idx)?")


async def test_catalog_rules_for_tenant_tables(owner_connection: asyncpg.Connection) -> None:
    await _assert_catalog_rules(owner_connection)


async def test_future_partitions_carry_the_same_rules(
    owner_connection: asyncpg.Connection, platform_connection: asyncpg.Connection
) -> None:
    before = set(await _tenant_tables(owner_connection, partitions=True))
    made = await platform_connection.fetchval(
        "SELECT usage_events_ensure_partitions(now() + interval '5 years', "
        "now() + interval '5 years 2 months')"
    )
    try:
        future = set(await _tenant_tables(owner_connection, partitions=True)) - before
        assert made == 3 and len(future) == 3, future
        await _assert_catalog_rules(owner_connection)
    finally:
        for name in future:
            await owner_connection.execute(f"DROP TABLE {name}")


async def _assert_catalog_rules(owner_connection: asyncpg.Connection) -> None:
    tables = await _tenant_tables(owner_connection, partitions=True)
    assert CURRENT_PARTITION in tables, "this month has no event partition"
    for table in tables:
        flags = await owner_connection.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1", table
        )
        assert flags["relrowsecurity"] and flags["relforcerowsecurity"], table
        policies = await owner_connection.fetch(
            "SELECT policyname, roles::text[] AS roles, qual, with_check FROM pg_policies WHERE tablename = $1",
            table,
        )
        app_policies = [p for p in policies if "tenantry_app" in p["roles"]]
        assert len(app_policies) == 1, table
        for clause in (app_policies[0]["qual"], app_policies[0]["with_check"]):
            assert "NULLIF(current_setting('app.tenant_id'::text, true), ''::text)" in clause, table
        # Citus readiness: every key and foreign key includes tenant_id.
        constraints = await owner_connection.fetch(
            "SELECT conname, contype::text AS contype, ARRAY(SELECT attname FROM pg_attribute "
            "WHERE attrelid = conrelid AND attnum = ANY(conkey))::text[] AS columns "
            "FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'f')",
            table,
        )
        assert any(c["contype"] == "p" for c in constraints), table
        for constraint in constraints:
            if constraint["contype"] == "f" and constraint["columns"] == ["tenant_id"]:
                continue  # the reference to the global `tenants` table (a Citus reference table)
            assert "tenant_id" in constraint["columns"], (table, constraint["conname"])
        # Indexes lead with tenant_id.
        indexes = await owner_connection.fetch(
            "SELECT indexrelid::regclass::text AS name, "
            "(SELECT attname FROM pg_attribute WHERE attrelid = indrelid AND attnum = indkey[0]) AS first "
            "FROM pg_index WHERE indrelid = $1::regclass",
            table,
        )
        for index in indexes:
            if CROSS_TENANT_INDEXES.fullmatch(index["name"]):
                continue
            assert index["first"] == "tenant_id", (table, index["name"])
        if table.startswith("usage_events_"):
            # A partition carries exactly its parent's grants.
            assert await _grants(owner_connection, table) == await _grants(
                owner_connection, "usage_events"
            ), table


# -- the Citus plan (docs/scale-out.md): what it relies on, checked on the migrated schema -----

SCALE_OUT_PLAN = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
_PLAN_ROW = re.compile(r"^\| `(\w+)` \| (distributed|reference|local) \|", re.MULTILINE)
# The plan's one sequence: the events' commit order (bigint, so Citus can give each node a range).
SEQUENCE_COLUMNS = {("usage_events", "seq", "bigint")}


def _plan() -> tuple[str, dict[str, str]]:
    text = SCALE_OUT_PLAN.read_text()
    return text, dict(_PLAN_ROW.findall(text))


async def test_every_table_has_its_place_in_the_scale_out_plan(
    owner_connection: asyncpg.Connection,
) -> None:
    """A new table must be placed in the plan: tenant tables distributed, the rest not."""
    _, kinds = _plan()
    tables = await owner_connection.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    tenant_tables = set(await _tenant_tables(owner_connection))
    assert set(kinds) == {t["relname"] for t in tables}
    for table, kind in kinds.items():
        assert (kind == "distributed") == (table in tenant_tables), (table, kind)


async def test_the_distribution_plan_holds(owner_connection: asyncpg.Connection) -> None:
    """What co-location by `tenant_id` needs beyond the keys checked above."""
    text, kinds = _plan()
    tenant_tables = set(await _tenant_tables(owner_connection))
    # One distribution column of one type everywhere (co-location needs the same type).
    columns = await owner_connection.fetch(
        "SELECT c.relname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE a.attname = 'tenant_id' AND c.relname = ANY($1::text[])",
        list(tenant_tables),
    )
    assert {(c["relname"], c["type"], c["attnotnull"]) for c in columns} == {
        (table, "uuid", True) for table in tenant_tables
    }
    # Foreign keys: between tenant tables, tenant_id matches tenant_id (same position on both
    # sides); out of a tenant table only to `tenants (id)` (a reference table), by tenant_id;
    # never from a table that is not distributed into one that is.
    keys = await owner_connection.fetch(
        "SELECT conname, conrelid::regclass::text AS source, confrelid::regclass::text AS target, "
        "ARRAY(SELECT attname FROM unnest(conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute "
        "ON attrelid = conrelid AND attnum = k.n ORDER BY i)::text[] AS columns, "
        "ARRAY(SELECT attname FROM unnest(confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute "
        "ON attrelid = confrelid AND attnum = k.n ORDER BY i)::text[] AS referenced "
        "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
    )
    assert keys
    for key in keys:
        where = (key["source"], key["conname"])
        if key["target"] in tenant_tables:
            assert key["source"] in tenant_tables, where
            position = key["columns"].index("tenant_id")
            assert key["referenced"][position] == "tenant_id", where
        elif key["source"] in tenant_tables:
            assert (key["target"], key["columns"], key["referenced"]) == (
                "tenants",
                ["tenant_id"],
                ["id"],
            ), where
            assert kinds["tenants"] == "reference"
    # Unique indexes include tenant_id (Citus cannot enforce one across shards otherwise).
    unique = await owner_connection.fetch(
        "SELECT indexrelid::regclass::text AS name, indrelid::regclass::text AS table_name, "
        "ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = indrelid "
        "AND attnum = ANY(indkey))::text[] AS columns FROM pg_index "
        "WHERE indisunique AND indrelid::regclass::text = ANY($1::text[])",
        list(tenant_tables),
    )
    for index in unique:
        assert "tenant_id" in index["columns"], (index["table_name"], index["name"])
    # No identity columns, and no sequence-backed column but the plan's (each node draws from
    # its own range: unique, not ordered across nodes).
    generated = await owner_connection.fetch(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, "
        "a.attidentity <> '' AS identity FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE c.relname = ANY($1::text[]) AND a.attnum > 0 AND NOT a.attisdropped "
        "AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')",
        list(tenant_tables),
    )
    assert not [g for g in generated if g["identity"]]
    assert {(g["relname"], g["attname"], g["type"]) for g in generated} == SEQUENCE_COLUMNS
    for table, column, _ in SEQUENCE_COLUMNS:
        assert f"`{table}.{column}`" in text
    # Triggers on distributed tables fire on the worker holding the shard (a NOTIFY there
    # reaches no listener of the coordinator): each one is named in the plan, with what
    # replaces it.
    triggers = await owner_connection.fetch(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid::regclass::text = ANY($1::text[])",
        list(tenant_tables),
    )
    assert triggers
    for trigger in triggers:
        assert f"`{trigger['tgname']}`" in text, trigger["tgname"]


async def _grants(connection: asyncpg.Connection, table: str) -> set[tuple[str, str]]:
    rows = await connection.fetch(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = $1 AND grantee LIKE 'tenantry_%' AND grantee <> 'tenantry_owner'",
        table,
    )
    return {(row["grantee"], row["privilege_type"]) for row in rows}


async def test_app_role_owns_nothing_and_cannot_bypass_rls(
    owner_connection: asyncpg.Connection,
) -> None:
    role = await owner_connection.fetchrow(
        "SELECT rolbypassrls, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'tenantry_app'"
    )
    assert role is not None
    assert not role["rolbypassrls"] and not role["rolsuper"] and not role["rolcreaterole"]
    owned = await owner_connection.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'tenantry_app'"
    )
    assert owned == 0
    platform = await owner_connection.fetchrow(
        "SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'tenantry_platform'"
    )
    assert not platform["rolbypassrls"] and not platform["rolsuper"]
    # The app role may read tenants for resolution but never change them.
    grants = await owner_connection.fetch(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = 'tenantry_app' AND table_name = 'tenants'"
    )
    assert {g["privilege_type"] for g in grants} == {"SELECT"}


async def test_pooled_connection_does_not_carry_a_tenant(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    tenant_a, _ = two_tenants
    config = tenant_db_config(settings, pool_size=1)
    maker = config.create_session_maker()
    record = TenantRecord(tenant_a, "tenant-a", "A", "active", "standard", 1, 1, {}, {})
    try:
        token = current_tenant.set(record)
        try:
            async with maker() as session:
                count_a = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
                pid_a = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        finally:
            current_tenant.reset(token)
        assert count_a == 1
        # The next "request" has no tenant and gets the very same connection back.
        async with maker() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
            setting = (
                await session.execute(text("SELECT current_setting('app.tenant_id', true)"))
            ).scalar_one()
        assert pid == pid_a
        assert count == 0
        assert setting == ""
    finally:
        await config.get_engine().dispose()


async def test_fast_read_path_does_not_carry_a_tenant(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    tenant_a, _ = two_tenants
    reader = TenantReader(asyncpg_dsn(role_url(settings, "app")), max_size=1)
    await reader.start()
    count = PreparedRead(select(func.count()).select_from(User))
    record = TenantRecord(tenant_a, "tenant-a", "A", "active", "standard", 1, 1, {}, {})
    try:
        token = current_tenant.set(record)
        try:
            assert (await reader.fetch_one(count))[0] == 1
        finally:
            current_tenant.reset(token)
        # Same single pooled connection, no tenant: nothing visible, and no writes allowed.
        assert (await reader.fetch_one(count))[0] == 0
        async with reader.transaction() as connection:
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await connection.execute("DELETE FROM users")
    finally:
        await reader.close()
