"""Hot read paths on a raw asyncpg pool: the same RLS contract, a fraction of the overhead.

`/auth/me` and single-file reads run on every page of every app. Through an ORM session they
pay for the session, the greenlet bridge and the event hooks on each request (measured in
benchmarks/RESULTS.md); here they are four round trips on a pooled connection: BEGIN READ ONLY,
set the tenant, the query, COMMIT. The tenant setting is transaction-local, as on the tenant
engine, so a pooled connection never carries a tenant into the next transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from tenantry.tenancy.context import current_tenant_id

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


class PreparedRead:
    """A SQLAlchemy Core select compiled once to asyncpg's SQL, with its parameter order."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self._names = list(compiled.positiontup or ())
        self._defaults = compiled.params

    def arguments(self, **values: object) -> list[object]:
        return [values[name] if name in values else self._defaults[name] for name in self._names]


class TenantReader:
    def __init__(self, dsn: str, *, max_size: int) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._max_size)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only transaction that sees the request's tenant only (nothing without one)."""
        assert self._pool is not None, "TenantReader.start() was not awaited"
        tenant_id = current_tenant_id()
        async with self._pool.acquire() as connection, connection.transaction(readonly=True):
            await connection.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(tenant_id) if tenant_id else ""
            )
            yield connection

    async def fetch_one(self, read: PreparedRead, **values: object) -> asyncpg.Record | None:
        async with self.transaction() as connection:
            return await connection.fetchrow(read.sql, *read.arguments(**values))
