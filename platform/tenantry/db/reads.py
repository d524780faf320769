"""Hot read paths on a raw asyncpg pool: the same RLS contract, a fraction of the overhead.

`/auth/me` and single-file reads run on every page of every app. Through an ORM session they
pay for the session, the greenlet bridge and the event hooks on each request (measured in
benchmarks/RESULTS.md); here they are three round trips on a pooled connection: BEGIN READ ONLY
with the tenant setting, the query, COMMIT. The tenant setting is transaction-local, as on the tenant
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


async def _keep_session(connection: asyncpg.Connection) -> None:
    """No reset round trip when a connection goes back to the pool: these connections set no
    session state (the tenant is transaction-local and the transaction is always closed)."""


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
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=self._max_size, reset=_keep_session
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only transaction that sees the request's tenant only (nothing without one)."""
        assert self._pool is not None, "TenantReader.start() was not awaited"
        tenant_id = current_tenant_id()
        # BEGIN and the tenant in one round trip. A simple-protocol batch takes no parameters,
        # so the id is inlined: it is a uuid.UUID from the tenant cache, never client text.
        begin = f"BEGIN READ ONLY; SELECT set_config('app.tenant_id', '{tenant_id or ''}', true)"
        async with self._pool.acquire() as connection:
            await connection.execute(begin)
            try:
                yield connection
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def fetch_one(self, read: PreparedRead, **values: object) -> asyncpg.Record | None:
        async with self.transaction() as connection:
            return await connection.fetchrow(read.sql, *read.arguments(**values))
