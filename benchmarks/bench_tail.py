"""Where the one-file read's tail comes from (issue 11): p50 and p99 under `wrk -c50` as one
thing changes at a time, on the same data, with each worker's share of the CPU.

    uv run python benchmarks/bench_tail.py [--duration 10] [--rounds 2]

Configurations, each for this tree's server and for the framework floor (floor_app.py):
the default (2 workers, read pool 16 per worker, `wrk -t2`); a read pool of 32 (no request of
50 connections ever waits for a connection); one worker; and `wrk -t1` (one core less for the
load generator). Per run: req/s, p50, p99, p99/p50, and the CPU seconds of each worker over the
run (an uneven split means an uneven share of connections).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench_files import (
    READ_PATHS,
    create_read_tenants,
    file_ids,
    seed,
    tenant_headers,
)
from harness import (
    CpuMeter,
    cpu_delta,
    embedded_postgres,
    floor_server,
    free_port,
    loadavg,
    markdown_table,
    prepare,
    role_dsn,
    rotation_script,
    server_process,
    wrk,
)

from tenantry.config import Settings
from tenantry.db.engines import admin_url, asyncpg_dsn


@dataclass(frozen=True)
class Setup:
    name: str
    workers: int = 2
    pool: int = 16
    wrk_threads: int = 2


SETUPS = [
    Setup("default"),
    Setup("read pool 32", pool=32),
    Setup("one worker", workers=1, pool=32),
    Setup("wrk -t1", wrk_threads=1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    before = loadavg()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-tail-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as database_url:
            env = prepare(database_url, root, bcrypt_rounds=4)
            data_dir = root / ".tenantry"
            platform_dsn = role_dsn(database_url, data_dir, "platform")
            with server_process(env, root, free_port(), workers=2) as server:
                tenant = create_read_tenants(server.base_url)[0]
            admin_dsn = asyncpg_dsn(admin_url(Settings(database_url=database_url)))
            asyncio.run(seed(platform_dsn, admin_dsn, [tenant]))
            ids = asyncio.run(file_ids(platform_dsn, tenant.id, 2000))
            app_script = rotation_script(root / "app.lua", "/api/v1/files/", ids)
            floor_script = rotation_script(root / "floor.lua", f"/floor/{tenant.id}/files/", ids)
            headers = tenant_headers(tenant.slug, tenant.token)
            for round_index in range(args.rounds):
                for setup in SETUPS:
                    run_env = {**env, "TENANTRY_DB_READ_POOL_SIZE": str(setup.pool)}
                    for side in ("app", "floor"):
                        port = free_port()
                        serving = (
                            server_process(run_env, root, port, workers=setup.workers)
                            if side == "app"
                            else floor_server(run_env, root, port, setup.workers, platform_dsn)
                        )
                        with serving as running:
                            meter = CpuMeter(running.process.pid, 0)
                            wrk(
                                running.base_url,
                                duration=3,
                                headers=headers,
                                script=app_script if side == "app" else floor_script,
                            )
                            start = meter.snapshot()
                            result = wrk(
                                running.base_url,
                                duration=args.duration,
                                headers=headers,
                                script=app_script if side == "app" else floor_script,
                                threads=setup.wrk_threads,
                            )
                            end = meter.snapshot()
                        shares = sorted(
                            cpu_delta({pid: start.app.get(pid, 0.0)}, {pid: end.app[pid]})
                            for pid in end.app
                        )
                        busiest = [f"{seconds:.1f}" for seconds in shares[-setup.workers :]]
                        rows.append(
                            [
                                str(round_index + 1),
                                setup.name,
                                side,
                                f"{result.rps:,.0f}",
                                f"{result.p50_ms:.1f}",
                                f"{result.p99_ms:.1f}",
                                f"{result.p99_ms / result.p50_ms:.1f}",
                                " / ".join(busiest),
                            ]
                        )
                        print(" | ".join(rows[-1]), flush=True)
    print(f"\nload average before: {before}; after: {loadavg()}; path {READ_PATHS['file']}\n")
    header = ["round", "setup", "server", "req/s", "p50 ms", "p99 ms", "p99/p50", "worker CPU s"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
