"""A tenant-scoped repository cannot reach another tenant, whatever method is called, even on the
platform engine (which sees every tenant, so RLS is no net here: only the scoping is)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tenantry.db.models import Category
from tenantry.db.repository import CrossTenantWrite, TenantScopedRepository

# Every public method of advanced-alchemy's repository, and how it is covered below. A method a
# new release adds fails `test_every_method_is_covered` until someone checks it here.
READS = {"get", "get_one", "get_one_or_none", "get_many", "list", "count", "exists"}
READS |= {"get_many_and_count", "list_and_count", "get_and_update", "get_or_upsert"}
WRITES = {"add", "add_many", "update", "update_many", "upsert", "upsert_many"}
DELETES = {"delete", "delete_many", "delete_where"}
NO_DATABASE = {  # pure helpers on instances, or a health probe: nothing to scope
    "check_health",
    "check_not_found",
    "get_id_attribute_value",
    "set_id_attribute_value",
    "get_primary_key_value",
    "has_primary_key_values",
}


class CategoryRepository(TenantScopedRepository[Category]):
    model_type = Category


def test_every_method_is_covered() -> None:
    public = {
        name
        for name, member in inspect.getmembers(SQLAlchemyAsyncRepository)
        if not name.startswith("_") and callable(member)
    }
    assert public == READS | WRITES | DELETES | NO_DATABASE


@pytest.fixture
async def world(
    settings: Settings, platform_connection: asyncpg.Connection, clean_database: None
) -> AsyncIterator[tuple[AsyncSession, uuid.UUID, uuid.UUID, uuid.UUID]]:
    """A platform session, tenants A and B, and B's category "Secret"."""
    ids = []
    for slug in ("scope-a", "scope-b"):
        ids.append(
            await platform_connection.fetchval(
                "INSERT INTO tenants (slug, name, storage_quota_bytes, max_file_bytes) "
                "VALUES ($1, $1, 1, 1) RETURNING id",
                slug,
            )
        )
    tenant_a, tenant_b = ids
    await platform_connection.execute(
        "INSERT INTO categories (tenant_id, name) VALUES ($1, 'Mine')", tenant_a
    )
    b_category = await platform_connection.fetchval(
        "INSERT INTO categories (tenant_id, name) VALUES ($1, 'Secret') RETURNING id", tenant_b
    )
    config = platform_db_config(settings)
    try:
        async with config.get_session() as session:
            yield session, tenant_a, tenant_b, b_category
    finally:
        await config.get_engine().dispose()


async def _b_names(platform: asyncpg.Connection, tenant_b: uuid.UUID) -> list[str]:
    rows = await platform.fetch("SELECT name FROM categories WHERE tenant_id = $1", tenant_b)
    return sorted(row["name"] for row in rows)


async def test_reads_see_one_tenant(
    world: tuple[AsyncSession, uuid.UUID, uuid.UUID, uuid.UUID],
) -> None:
    session, tenant_a, tenant_b, b_category = world
    repo = CategoryRepository(session=session, tenant_id=tenant_a)
    secret = Category.name == "Secret"
    with pytest.raises(NotFoundError):
        await repo.get((tenant_b, b_category))
    with pytest.raises(NotFoundError):
        await repo.get_one(secret)
    assert await repo.get_one_or_none(Category.id == b_category) is None
    assert [c.name for c in await repo.get_many()] == ["Mine"]
    assert [c.name for c in await repo.list()] == ["Mine"]
    assert await repo.count() == 1
    assert await repo.count(secret) == 0
    assert not await repo.exists(secret)
    items, total = await repo.get_many_and_count()
    assert ([c.name for c in items], total) == (["Mine"], 1)
    items, total = await repo.list_and_count()
    assert ([c.name for c in items], total) == (["Mine"], 1)
    # A caller's own statement is scoped too.
    from sqlalchemy import select

    assert await repo.get_one_or_none(statement=select(Category).where(secret)) is None
    with pytest.raises(NotFoundError):
        await repo.get_and_update(match_fields=["name"], name="Secret")
    created, was_created = await repo.get_or_upsert(match_fields=["name"], name="Secret")
    assert was_created
    assert created.tenant_id == tenant_a  # A gets its own "Secret"; B's is untouched


async def test_writes_refuse_another_tenants_rows(
    world: tuple[AsyncSession, uuid.UUID, uuid.UUID, uuid.UUID],
    platform_connection: asyncpg.Connection,
) -> None:
    session, tenant_a, tenant_b, b_category = world
    repo = CategoryRepository(session=session, tenant_id=tenant_a)
    intruder = Category(tenant_id=tenant_b, id=b_category, name="Hijacked")
    for write in (repo.add, repo.update, repo.upsert):
        with pytest.raises(CrossTenantWrite):
            await write(intruder)
    for write_many in (repo.add_many, repo.update_many, repo.upsert_many):
        with pytest.raises(CrossTenantWrite):
            await write_many([Category(tenant_id=tenant_b, name="Hijacked")])
    with pytest.raises(CrossTenantWrite):
        await repo.update_many([{"tenant_id": tenant_b, "id": b_category, "name": "Hijacked"}])
    # A new row without a tenant becomes the repository's tenant's.
    own = await repo.add(Category(name="Fresh"))
    assert own.tenant_id == tenant_a
    await session.commit()
    assert await _b_names(platform_connection, tenant_b) == ["Secret"]


async def test_deletes_never_reach_another_tenant(
    world: tuple[AsyncSession, uuid.UUID, uuid.UUID, uuid.UUID],
    platform_connection: asyncpg.Connection,
) -> None:
    session, tenant_a, tenant_b, b_category = world
    repo = CategoryRepository(session=session, tenant_id=tenant_a)
    with pytest.raises(NotFoundError):
        await repo.delete((tenant_b, b_category))
    with pytest.raises(CrossTenantWrite):
        await repo.delete_many([(tenant_b, b_category)])
    assert list(await repo.delete_where(Category.name == "Secret")) == []
    assert [c.name for c in await repo.delete_where()] == ["Mine"]  # "everything" is A's all
    await session.commit()
    assert await _b_names(platform_connection, tenant_b) == ["Secret"]
