"""Tenant count (issue 10): one tenant's read path as the deployment grows to many tenants.

    uv run python benchmarks/bench_tenants.py [--counts 10,1000,10000,100000] [--duration 10]
        [--provision 50] [--repeats 3]

One embedded Postgres with one database per count. Each is filled with its idle tenants by
`tenantry tenants import` (owners invited, as a provider migrating in would), then a fresh
`tenantry serve` (two workers) is timed to ready and `--provision` tenants are created one at a
time through `POST /platform/v1/tenants` with an invited owner (p50, p95). Then the reads, in
interleaved rounds over the counts (this machine's noise spreads over all of them alike): a
server on that count's database and `wrk -t2 -c50` on one file's metadata of its measured
tenant. Reported per count: median read req/s and p99 with their ratios to the first count,
every round, import ms per tenant, API provisioning p50/p95, database bytes per idle tenant,
start-up seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from harness import (
    SLUG,
    TENANT_ADMIN,
    create_tenant,
    embedded_postgres,
    free_port,
    operator_token,
    percentile,
    prepare,
    role_dsn,
    server_process,
    wrk,
)

from tenantry.config import Settings
from tenantry.db.bootstrap import create_database_if_missing
from tenantry.db.embedded import with_database

PDF = (Path(__file__).resolve().parents[1] / "examples" / "guide.pdf").read_bytes()


@dataclass
class Step:
    tenants: int
    import_ms_per_tenant: float
    startup_seconds: float
    reads_per_second: float
    read_p99_ms: float
    provision_p50_ms: float
    provision_p95_ms: float
    bytes_per_tenant: float
    rounds: list[tuple[float, float]] = field(default_factory=list)


def _import(env: dict[str, str], cwd: Path, first: int, last: int) -> float:
    """Idle tenants first..last-1 through the bulk path; seconds taken."""
    lines = "".join(
        json.dumps(
            {"slug": f"idle-{n:06d}", "name": f"Idle {n}", "admin": {"email": f"o@{n}.example"}}
        )
        + "\n"
        for n in range(first, last)
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tenantry", "tenants", "import", "-"],
        input=lines.encode(),
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _measured_tenant(base_url: str) -> tuple[str, str]:
    """The bench tenant's token and one file id (made on the first step)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        email, password = TENANT_ADMIN
        host = {"Host": f"{SLUG}.localhost"}
        login = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}, headers=host
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        auth = {**host, "Authorization": f"Bearer {token}"}
        files = client.get("/api/v1/files?limit=1", headers=auth).json()["items"]
        if files:
            return token, files[0]["id"]
        made = client.post(
            "/api/v1/files",
            data={"title": "Guide"},
            files={"file": ("guide.pdf", PDF, "application/pdf")},
            headers=auth,
        )
        made.raise_for_status()
        return token, made.json()["id"]


def _read(base_url: str, token: str, file_id: str, duration: float) -> tuple[float, float]:
    """req/s and p99 ms of `wrk -t2 -c50` on one file's metadata."""
    headers = {"Host": f"{SLUG}.localhost", "Authorization": f"Bearer {token}"}
    result = wrk(f"{base_url}/api/v1/files/{file_id}", duration=duration, headers=headers)
    return result.rps, result.p99_ms


def _provision(base_url: str, count: int, step: int) -> list[float]:
    times = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        operator = {"Authorization": f"Bearer {operator_token(client)}"}
        for n in range(count):
            body = {
                "slug": f"api-{step:06d}-{n:03d}",
                "name": "Provisioned",
                "admin": {"email": f"owner{n}@api.example"},
            }
            started = time.perf_counter()
            client.post("/platform/v1/tenants", json=body, headers=operator).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def _database_state(dsn: str) -> tuple[int, int]:
    """(tenants, database bytes) now."""
    connection = await asyncpg.connect(dsn)
    try:
        tenants = await connection.fetchval("SELECT count(*) FROM tenants")
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
        return int(tenants), int(size)
    finally:
        await connection.close()


def run(counts: list[int], duration: float, provision: int, repeats: int) -> list[Step]:
    """Builds one database per count, then reads them in interleaved rounds (the machine's
    noise spreads over every count alike); medians of the rounds."""
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-tenants-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as server_url:
            envs: dict[int, dict[str, str]] = {}
            reads: dict[int, tuple[str, str]] = {}
            for count in counts:
                database_url = with_database(server_url, f"bench_{count}")
                asyncio.run(
                    create_database_if_missing(Settings(database_url=server_url), f"bench_{count}")
                )
                env = envs[count] = prepare(database_url, root, bcrypt_rounds=4)
                platform_dsn = role_dsn(database_url, root / ".tenantry", "platform")
                _, before = asyncio.run(_database_state(platform_dsn))
                seconds = _import(env, root, 0, count - 1) if count > 1 else 0.0
                grown = asyncio.run(_database_state(platform_dsn))[1] - before
                started = time.perf_counter()
                with server_process(env, root, free_port(), workers=2) as server:
                    startup = time.perf_counter() - started
                    create_tenant(server.base_url)
                    reads[count] = _measured_tenant(server.base_url)
                    made = _provision(server.base_url, provision, count)
                steps.append(
                    Step(
                        tenants=count,
                        import_ms_per_tenant=seconds / max(1, count - 1) * 1000,
                        startup_seconds=startup,
                        reads_per_second=0.0,
                        read_p99_ms=0.0,
                        provision_p50_ms=percentile(made, 0.5),
                        provision_p95_ms=percentile(made, 0.95),
                        bytes_per_tenant=grown / max(1, count - 1),
                    )
                )
                print(steps[-1], flush=True)
            rounds: dict[int, list[tuple[float, float]]] = {count: [] for count in counts}
            for _ in range(repeats):
                for count in counts:
                    with server_process(envs[count], root, free_port(), workers=2) as server:
                        rounds[count].append(_read(server.base_url, *reads[count], duration))
                    print(count, rounds[count][-1], flush=True)
            for step in steps:
                step.reads_per_second = statistics.median(r for r, _ in rounds[step.tenants])
                step.read_p99_ms = statistics.median(p for _, p in rounds[step.tenants])
                step.rounds = rounds[step.tenants]
    return steps


def report(steps: list[Step], duration: float, provision: int, repeats: int) -> str:
    base = steps[0]
    lines = [
        f"`uv run python benchmarks/bench_tenants.py --counts {','.join(str(s.tenants) for s in steps)} "
        f"--duration {duration:g} --provision {provision} --repeats {repeats}` on "
        f"{platform.node()} "
        f"({os.cpu_count()} cores), {datetime.now(UTC):%Y-%m-%d}",
        "",
        "| tenants | reads req/s (median) | vs first | p99 ms (median) | vs first | rounds req/s | "
        "import ms/tenant | API provision p50 / p95 ms | DB bytes per idle tenant | start-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        lines.append(
            f"| {step.tenants:,} | {step.reads_per_second:,.0f} | "
            f"{step.reads_per_second / base.reads_per_second:.2f} | {step.read_p99_ms:.1f} | "
            f"{step.read_p99_ms / base.read_p99_ms:.2f} | "
            f"{', '.join(f'{r:,.0f}' for r, _ in step.rounds)} | {step.import_ms_per_tenant:.2f} | "
            f"{step.provision_p50_ms:.1f} / {step.provision_p95_ms:.1f} | "
            f"{step.bytes_per_tenant:,.0f} | {step.startup_seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,1000,10000,100000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--provision", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = [int(part) for part in args.counts.split(",")]
    steps = run(counts, args.duration, args.provision, args.repeats)
    print(report(steps, args.duration, args.provision, args.repeats))


if __name__ == "__main__":
    main()
