"""What the pooler-compatible mode (no kept prepared statements) costs on the direct path.

    uv run python benchmarks/bench_pooler_mode.py [--duration 4] [--repeats 3] [--tasks 8]

An embedded Postgres (harness.py), migrated, one tenant with one user. In this process, for
each mode in turn (kept, then unnamed; the order alternates between repeats), `--tasks`
concurrent loops for `--duration` seconds each over the app's own database objects, straight to
Postgres (no pooler):

- read pool: `TenantReader.fetch_one` of the user by primary key (BEGIN READ ONLY with the
  tenant, the select, COMMIT), as `/auth/me` and the credential check read;
- ORM: a tenant-engine session (the RLS hook's `set_config`, then the same select), as the
  admin routes and writes read.

Prints transactions/s per mode and path, every repeat, and the median of unnamed/kept ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import msgspec
from harness import embedded_postgres, prepare, role_settings
from sqlalchemy import bindparam, select

from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, pooled_role_url, statement_cache_args, tenant_db_config
from tenantry.db.models import User
from tenantry.db.reads import PreparedRead, TenantReader
from tenantry.db.tenant_scope import TenantRecord, current_tenant

# What `/auth/me` reads: one user of the tenant by primary key.
USER = select(User.id, User.email, User.role, User.display_name).where(
    User.tenant_id == bindparam("tenant_id"), User.id == bindparam("user_id")
)
USER_READ = PreparedRead(USER)


async def _seed(settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    connection = await asyncpg.connect(asyncpg_dsn(pooled_role_url(settings, "platform")))
    try:
        tenant_id = await connection.fetchval(
            "INSERT INTO tenants (slug, name, storage_quota_bytes, max_file_bytes) "
            "VALUES ('bench', 'Bench', 1, 1) RETURNING id"
        )
        user_id = await connection.fetchval(
            "INSERT INTO users (tenant_id, email, password_hash, role) "
            "VALUES ($1, 'u@bench.example', $2, 'viewer') RETURNING id",
            tenant_id,
            "x" * 60,
        )
    finally:
        await connection.close()
    return tenant_id, user_id


async def _loop(step: Callable[[], Awaitable[object]], tasks: int, duration: float) -> float:
    end = time.monotonic() + duration
    counts = [0] * tasks

    async def run(slot: int) -> None:
        while time.monotonic() < end:
            await step()
            counts[slot] += 1

    await asyncio.gather(*(run(slot) for slot in range(tasks)))
    return sum(counts) / duration


async def measure(
    settings: Settings, tenant: TenantRecord, user_id: uuid.UUID, args: argparse.Namespace
) -> dict[str, float]:
    current_tenant.set(tenant)
    reader = TenantReader(
        asyncpg_dsn(pooled_role_url(settings, "app")),
        max_size=args.tasks,
        connect_args=statement_cache_args(settings),
    )
    await reader.start()
    config = tenant_db_config(settings, pool_size=args.tasks)
    maker = config.create_session_maker()
    keys = {"tenant_id": tenant.id, "user_id": user_id}

    async def read() -> None:
        assert await reader.fetch_one(USER_READ, **keys) is not None

    async def orm() -> None:
        async with maker() as session, session.begin():
            (await session.execute(USER, keys)).one()

    try:
        for step in (read, orm):  # warm-up: connections made, statements prepared
            await _loop(step, args.tasks, 0.5)
        return {
            "read": await _loop(read, args.tasks, args.duration),
            "orm": await _loop(orm, args.tasks, args.duration),
        }
    finally:
        await reader.close()
        await config.get_engine().dispose()


async def run(database_url: str, data_dir: Path, args: argparse.Namespace) -> None:
    base = msgspec.structs.replace(role_settings(database_url, data_dir), db_pool_size=args.tasks)
    modes = {
        "kept": msgspec.structs.replace(base, db_prepared_statements=True),
        "unnamed": msgspec.structs.replace(base, db_prepared_statements=False),
    }
    tenant_id, user_id = await _seed(base)
    tenant = TenantRecord(tenant_id, "bench", "Bench", "active", "standard", 1, 1, {}, {})
    rows: list[dict[str, dict[str, float]]] = []
    for repeat in range(args.repeats):
        order = list(modes) if repeat % 2 == 0 else list(reversed(modes))
        row = {mode: await measure(modes[mode], tenant, user_id, args) for mode in order}
        rows.append(row)
        print(f"repeat {repeat + 1}: {row}", flush=True)
    print("| path | kept tx/s (runs) | unnamed tx/s (runs) | unnamed/kept (median) |")
    print("|---|---|---|---|")
    for path in ("read", "orm"):
        kept = [row["kept"][path] for row in rows]
        unnamed = [row["unnamed"][path] for row in rows]
        ratio = statistics.median(u / k for u, k in zip(unnamed, kept, strict=True))
        print(
            f"| {path} | {statistics.median(kept):.0f} ({', '.join(f'{v:.0f}' for v in kept)}) "
            f"| {statistics.median(unnamed):.0f} ({', '.join(f'{v:.0f}' for v in unnamed)}) "
            f"| {ratio:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=8, help="concurrent loops (= pool size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        root = Path(tmp)
        with embedded_postgres(root) as database_url:
            prepare(database_url, root, bcrypt_rounds=4)
            asyncio.run(run(database_url, root / ".tenantry", args))


if __name__ == "__main__":
    main()
