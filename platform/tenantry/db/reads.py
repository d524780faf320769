"""Hot read paths on a raw asyncpg pool: the same RLS contract, a fraction of the overhead.

`/auth/me`, single-file reads, the plain listing and the stats run on every page of every app.
Through an ORM session they pay for the session, the greenlet bridge and the event hooks on each
request (benchmarks/RESULTS.md). Here the hottest ones (`call`) are one round trip: a database
function (migration 0011) sets the tenant and selects in one statement, whose implicit
transaction ends with it. The others run in a read-only transaction: BEGIN with the tenant
setting in one round trip (`tenant_setting_sql`, the same statement the tenant engine runs), the
queries, COMMIT. Either way the setting is transaction-local, so a pooled connection never
carries a tenant on, whether asyncpg's pool or a transaction-mode PgBouncer hands it out.
Statements are prepared and kept per connection (asyncpg's statement cache), except behind a
pooler (`connect_args`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from tenantry.db.errors import translate_database_error
from tenantry.db.tenant_scope import current_tenant_id, tenant_setting, tenant_setting_sql
from tenantry.lib.metrics import PoolUse

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
ACQUIRE_TIMEOUT_SECONDS = 10.0


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


class TenantFunction:
    """A tenant function of migration 0011: its first argument is the tenant setting, which
    `TenantReader.call` supplies from the request's context."""

    def __init__(self, name: str, arity: int) -> None:
        placeholders = ", ".join(f"${n}" for n in range(1, arity + 2))
        self.sql = f"SELECT * FROM {name}({placeholders})"  # noqa: S608 - our constants


class TenantReader:
    """The raw read pool. asyncpg replaces a connection that was closed while idle when it is
    acquired, so a dropped connection costs a reconnect, not a failed request."""

    def __init__(
        self, dsn: str, *, max_size: int, connect_args: dict[str, int] | None = None
    ) -> None:
        self._dsn = dsn
        self._max_size = max_size
        # `engines.statement_cache_args`: no prepared statements kept behind a pooler.
        self._connect_args = connect_args or {}
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        # min_size=0: start-up does not fail while the database is still coming up.
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._max_size,
            reset=_keep_session,
            **self._connect_args,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that sees the request's tenant only (nothing without one); read-only
        unless asked (the limits' bookkeeping writes). Database failures leave as the
        catalogue's errors (503, or 422 for a bad value)."""
        begin = ("BEGIN READ ONLY; " if read_only else "BEGIN; ") + tenant_setting_sql(
            current_tenant_id()
        )
        async with self._connection() as connection:
            await connection.execute(begin)
            try:
                yield connection
            except BaseException:
                if not connection.is_closed():
                    await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def call(self, function: TenantFunction, *arguments: object) -> list[asyncpg.Record]:
        """The rows of a tenant function, given the request's tenant setting: one round trip."""
        async with self._connection() as connection:
            rows: list[asyncpg.Record] = await connection.fetch(
                function.sql, tenant_setting(current_tenant_id()), *arguments
            )
            return rows

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        assert self._pool is not None, "TenantReader.start() was not awaited"
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                yield connection
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            translated = translate_database_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def fetch_one(self, read: PreparedRead, **values: object) -> asyncpg.Record | None:
        async with self.transaction() as connection:
            return await connection.fetchrow(read.sql, *read.arguments(**values))

    def pool_use(self) -> PoolUse:
        if self._pool is None:
            return PoolUse(0, 0, self._max_size)
        idle = self._pool.get_idle_size()
        return PoolUse(self._pool.get_size() - idle, idle, self._max_size)

    async def check(self) -> None:
        """For readiness: a connection can be had and answers."""
        async with self.transaction() as connection:
            await connection.fetchval("SELECT 1")
