"""Usage benchmark: reports read from the rollups, over HTTP, against the same reports computed
from the raw events; and ingestion at a steady rate while the rollup job keeps up.

    uv run python benchmarks/bench_usage.py [--tenants 1000] [--events 10000000] [--days 400]
        [--reuse] [--data-dir DIR] [--requests 100] [--raw-repeats 5]
        [--ingest-rate 5000] [--ingest-seconds 30]

1. Data: an embedded Postgres in `--data-dir` (by default one directory per plan under /tmp,
   kept: with `--reuse` a later run of the same plan skips the seed), seeded by `tenantry usage seed` (its time is recorded), then VACUUM
   (ANALYZE).
2. `tenantry serve` (granian, `--workers`) with its own rollup job off: the benchmark runs the
   job itself in step 4, to time it.
3. Reports, for the biggest tenant and a median one (by events), one request at a time after a
   warm-up: the tenant's 90-day JSON report (`GET /api/v1/usage`) and HTML report
   (`/api/v1/usage/report`) as its admin, and the operator's 30-day cross-tenant report
   (`GET /platform/v1/usage`); p50/p95. Beside each: the same report computed in this process
   by the service from the rollups (no HTTP), and from the raw events by equivalent SQL (the
   totals are checked equal to the rollups').
4. Ingestion: `--ingest-connections` connections insert batches of events at `--ingest-rate`
   events/s for `--ingest-seconds`, while `RollupJob.run_once` runs every second as in a
   server; the insert rate achieved, the job's throughput (events per second of its own
   time), and the lag from an insert's commit to the round that rolled it up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import bcrypt
import httpx
from harness import (
    embedded_postgres,
    free_port,
    operator_token,
    percentile,
    prepare,
    role_dsn,
    role_settings,
    server_process,
)

from tenantry.config import Settings
from tenantry.db.engines import admin_url, asyncpg_dsn, platform_db_config
from tenantry.usage.repository import PlatformUsageRepository, TenantUsageRepository
from tenantry.usage.rollups import RollupJob
from tenantry.usage.schemas import TenantRef
from tenantry.usage.services import (
    PlatformUsageService,
    ReportRange,
    TenantUsageService,
    parse_range,
)

TENANT_DAYS = 90
PLATFORM_DAYS = 30
ADMIN_PASSWORD = "usage-bench-admin-password"
# Room for a dataset that outgrows the defaults of the embedded server (128 MB of buffers, a
# checkpoint every 1 GB of WAL): a bulk load of 10M events writes about 10 GB of WAL.
SERVER_SETTINGS = {"shared_buffers": "2GB", "max_wal_size": "8GB"}
MARKER = "seeded.json"
JOB_INTERVAL_SECONDS = 1.0  # the servers' default `usage_rollup_interval_seconds`

# -- the reports from the raw events --------------------------------------------------------

_DAY = "(occurred_at AT TIME ZONE 'UTC')::date"  # seeded tenants count in UTC days
_COUNTS = """
    count(*) FILTER (WHERE kind = 'upload') AS uploads,
    count(*) FILTER (WHERE kind = 'download') AS downloads,
    count(*) FILTER (WHERE kind = 'delete') AS deletes,
    count(*) FILTER (WHERE kind = 'login') AS logins,
    count(*) FILTER (WHERE kind = 'signup') AS signups,
    coalesce(sum(bytes) FILTER (WHERE kind = 'upload'), 0) AS bytes_in,
    coalesce(sum(bytes) FILTER (WHERE kind = 'download'), 0) AS bytes_out,
    coalesce(sum(bytes) FILTER (WHERE kind = 'serve'), 0) AS bytes_served"""
_STORAGE_CHANGE = """
    sum(CASE kind WHEN 'upload' THEN bytes ELSE -bytes END) AS storage_bytes,
    sum(CASE kind WHEN 'upload' THEN 1 ELSE -1 END) AS file_count"""
_IN_RANGE = "occurred_at >= $2 AND occurred_at < $3"
_FILE_KINDS = "kind IN ('upload', 'download', 'delete', 'serve')"
# What `TenantUsageService.report` reads ($1 tenant, $2..$3 the range's instants): the series
# with each day's active users, active users over the range, storage (everything before the
# range, then each day's change) and the top files.
TENANT_REPORT = [
    f"SELECT {_DAY} AS day, {_COUNTS}, count(DISTINCT user_id) AS active_users "
    f"FROM usage_events WHERE tenant_id = $1 AND {_IN_RANGE} GROUP BY 1 ORDER BY 1",
    f"SELECT count(DISTINCT user_id) FROM usage_events WHERE tenant_id = $1 AND {_IN_RANGE}",
    f"SELECT NULL::date AS day, {_STORAGE_CHANGE} FROM usage_events "
    "WHERE tenant_id = $1 AND kind IN ('upload', 'delete') AND occurred_at < $2 "
    f"UNION ALL SELECT {_DAY}, {_STORAGE_CHANGE} FROM usage_events "
    f"WHERE tenant_id = $1 AND kind IN ('upload', 'delete') AND {_IN_RANGE} GROUP BY 1",
    "SELECT top.file_id, f.title, top.downloads, top.bytes_out FROM ("
    "  SELECT file_id, count(*) AS downloads, sum(bytes) AS bytes_out FROM usage_events"
    f"  WHERE tenant_id = $1 AND kind = 'download' AND {_IN_RANGE}"
    "  GROUP BY file_id ORDER BY 2 DESC, 1 LIMIT 10"
    ") top LEFT JOIN files f ON f.tenant_id = $1 AND f.id = top.file_id "
    "ORDER BY top.downloads DESC, top.file_id",
]
# The HTML report adds the breakdowns by category, language, audience and role.
TENANT_BREAKDOWNS = (
    f"WITH e AS (SELECT * FROM usage_events WHERE tenant_id = $1 AND {_IN_RANGE}) "
    f"SELECT 'role' AS dimension, coalesce(user_role, '') AS key, {_COUNTS} FROM e GROUP BY 2 "
    f"UNION ALL SELECT 'category', coalesce(category_id::text, ''), {_COUNTS} FROM e "
    f"WHERE {_FILE_KINDS} GROUP BY 2 "
    f"UNION ALL SELECT 'language', coalesce(language, ''), {_COUNTS} FROM e "
    f"WHERE {_FILE_KINDS} GROUP BY 2 "
    f"UNION ALL SELECT 'audience', coalesce(a::text, ''), {_COUNTS} FROM e CROSS JOIN LATERAL "
    "unnest(CASE WHEN cardinality(audience_ids) = 0 THEN ARRAY[NULL::uuid] ELSE audience_ids "
    f"END) AS a WHERE {_FILE_KINDS} GROUP BY 2"
)
# What `PlatformUsageService.report` reads ($1..$2 the range's instants): every tenant's
# numbers, each tenant's storage by day (all history: a quota needs the total), the series.
PLATFORM_REPORT = [
    f"SELECT t.id, t.slug, t.name, t.status, t.storage_quota_bytes, {_COUNTS}, "
    "count(DISTINCT e.user_id) AS active_users FROM tenants t LEFT JOIN usage_events e "
    "ON e.tenant_id = t.id AND e.occurred_at >= $1 AND e.occurred_at < $2 "
    "WHERE t.status <> 'deleted' GROUP BY t.id",
    f"SELECT tenant_id, CASE WHEN occurred_at < $1 THEN NULL ELSE {_DAY} END AS day, "
    f"{_STORAGE_CHANGE} FROM usage_events WHERE kind IN ('upload', 'delete') "
    "AND occurred_at < $2 GROUP BY 1, 2",
    f"SELECT {_DAY} AS day, {_COUNTS}, count(DISTINCT tenant_id) AS active_tenants "
    "FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1 ORDER BY 1",
]
# The counts both kinds of report must agree on.
CHECKED = ("uploads", "downloads", "deletes", "logins", "signups", "bytes_in", "bytes_out")

# -- ingestion ---------------------------------------------------------------------------------

INSERT_EVENTS = """
WITH inserted AS (
    INSERT INTO usage_events (tenant_id, kind, user_id, user_role, file_id, bytes, category_id,
        language, audience_ids, content_type)
    SELECT tenant_id, kind, user_id, user_role, file_id, bytes, category_id, language,
        audience_ids::uuid[], content_type
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[],
        $7::uuid[], $8::text[], $9::text[], $10::text[])
        AS e(tenant_id, kind, user_id, user_role, file_id, bytes, category_id, language,
            audience_ids, content_type)
    RETURNING seq)
SELECT pg_current_xact_id()::text AS txid, max(seq) AS seq FROM inserted
"""
SAMPLE_FILES = """
SELECT f.tenant_id, f.id, f.size, f.category_id, f.language, f.content_type,
    ARRAY(SELECT a.audience_id FROM file_audiences a
          WHERE a.tenant_id = f.tenant_id AND a.file_id = f.id ORDER BY 1)::text AS audiences
FROM files f WHERE f.status = 'ready' ORDER BY random() LIMIT $1
"""
WATERMARK = "SELECT txid::text AS txid, seq FROM usage_rollup_state WHERE id = 1"
FORGET_BATCHES = "DELETE FROM usage_events WHERE txid = ANY($1::text[]::xid8[])"
DOWNLOAD_SHARE = 0.85  # of ingested events; the rest are logins


@dataclass(frozen=True)
class Stats:
    samples: list[float]  # milliseconds

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 0.95)


@dataclass(frozen=True)
class MeasuredTenant:
    id: uuid.UUID
    slug: str
    name: str
    events: int
    token: str = ""


@dataclass
class Dataset:
    """What `--reuse` finds again: the plan, when it was seeded, how long it took."""

    tenants: int
    events: int
    days: int
    seed: int
    seeded_at: str = ""
    seed_seconds: float = 0.0
    seed_output: str = ""

    @property
    def last_day(self) -> date:
        return datetime.fromisoformat(self.seeded_at).date()

    def same_plan(self, other: Dataset) -> bool:
        return (self.tenants, self.events, self.days, self.seed) == (
            other.tenants,
            other.events,
            other.days,
            other.seed,
        )


# -- 1. data ---------------------------------------------------------------------------------


def seeded_dataset(
    root: Path, env: dict[str, str], database_url: str, wanted: Dataset, *, reuse: bool
) -> Dataset:
    marker = root / MARKER
    if reuse and marker.exists():
        found = Dataset(**json.loads(marker.read_text()))
        if found.same_plan(wanted):
            print(f"reusing the seed of {found.seeded_at} ({found.seed_seconds:.0f} s)")
            return found
    marker.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tenantry", "usage", "seed", "--replace"]
    command += ["--tenants", str(wanted.tenants), "--events", str(wanted.events)]
    command += ["--days", str(wanted.days), "--seed", str(wanted.seed)]
    print("seeding: " + " ".join(command[2:]), flush=True)
    wanted.seeded_at = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
    wanted.seed_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"seed failed:\n{done.stderr}")
    wanted.seed_output = done.stdout.strip()
    print(wanted.seed_output, flush=True)
    asyncio.run(_vacuum(database_url))
    marker.write_text(json.dumps(wanted.__dict__, indent=2))
    return wanted


async def _vacuum(database_url: str) -> None:
    """What autovacuum would get to after a bulk load, done now (as the admin: only the owner
    may): planner statistics, and the visibility map that lets index-only scans skip the heap
    (the rollups' reads are index-only scans), then a checkpoint."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_url(Settings(database_url=database_url))))
    try:
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def measured_tenants(platform_dsn: str) -> tuple[MeasuredTenant, MeasuredTenant]:
    """The seeded tenant with the most events and the median one, each with an admin whose
    password the benchmark knows (bcrypt cost 4: logins are not what is measured)."""
    connection = await asyncpg.connect(platform_dsn)
    try:
        rows = await connection.fetch(
            "SELECT t.id, t.slug, t.name, sum(d.uploads + d.downloads + d.deletes + d.logins "
            "+ d.signups) AS events FROM tenants t JOIN usage_daily d ON d.tenant_id = t.id "
            "AND d.dimension = 'total' WHERE t.slug LIKE 'seed-%' GROUP BY t.id ORDER BY 4 DESC"
        )
        picked = [rows[0], rows[len(rows) // 2]]
        hashed = bcrypt.hashpw(ADMIN_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        for row in picked:
            await connection.execute(
                "INSERT INTO users (tenant_id, email, password_hash, role) "
                "VALUES ($1, $2, $3, 'admin') ON CONFLICT (tenant_id, email) "
                "DO UPDATE SET password_hash = EXCLUDED.password_hash",
                row["id"],
                admin_email(row["slug"]),
                hashed,
            )
    finally:
        await connection.close()
    biggest, median = (MeasuredTenant(r["id"], r["slug"], r["name"], r["events"]) for r in picked)
    return biggest, median


async def roll_up(settings: Settings) -> None:
    config = platform_db_config(settings)
    try:
        await RollupJob(config, retention_days=settings.usage_retention_days).run_once()
    finally:
        await config.get_engine().dispose()


def admin_email(slug: str) -> str:
    return f"bench-admin@{slug}.example"


def tenant_token(client: httpx.Client, slug: str) -> str:
    response = client.post(
        "/api/v1/auth/login",
        headers={"Host": f"{slug}.localhost"},
        json={"email": admin_email(slug), "password": ADMIN_PASSWORD},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# -- 3. reports ------------------------------------------------------------------------------


def over_http(
    client: httpx.Client, path: str, headers: dict[str, str], requests: int, warmup: int
) -> tuple[Stats, httpx.Response]:
    """One request at a time; the latencies after the warm-up, and the last response."""
    samples = []
    response = None
    for index in range(warmup + requests):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        if index >= warmup:
            samples.append(elapsed)
    assert response is not None
    return Stats(samples), response


async def timed(work: Callable[[], Awaitable[Any]], repeats: int) -> tuple[Stats, Any]:
    """`work` once to warm up, then `repeats` times; milliseconds, and the last result."""
    result = await work()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = await work()
        samples.append((time.perf_counter() - started) * 1000)
    return Stats(samples), result


async def raw_report(
    connection: asyncpg.Connection, statements: Sequence[str], *args: object
) -> list[list[asyncpg.Record]]:
    return [await connection.fetch(statement, *args) for statement in statements]


def instants(span: ReportRange) -> tuple[datetime, datetime]:
    start = datetime.combine(span.first, datetime.min.time(), UTC)
    return start, datetime.combine(span.last, datetime.min.time(), UTC) + timedelta(days=1)


@dataclass
class ReportTimes:
    name: str
    goal_ms: float  # of the HTTP p95
    http: Stats
    service: Stats
    raw: Stats


async def tenant_reports(
    settings: Settings,
    platform_dsn: str,
    client: httpx.Client,
    tenant: MeasuredTenant,
    last_day: date,
    args: argparse.Namespace,
) -> list[ReportTimes]:
    span = parse_range(
        last_day - timedelta(days=TENANT_DAYS - 1), last_day, "day", None, zone="UTC"
    )
    query = f"?from={span.first}&to={span.last}"
    headers = {"Host": f"{tenant.slug}.localhost", "Authorization": f"Bearer {tenant.token}"}
    json_http, response = over_http(
        client, "/api/v1/usage" + query, headers, args.requests, args.warmup
    )
    html_http, page = over_http(
        client, "/api/v1/usage/report" + query, headers, args.requests, args.warmup
    )
    if not page.headers["content-type"].startswith("text/html"):
        raise RuntimeError(f"the HTML report came as {page.headers['content-type']}")
    config = platform_db_config(settings)
    connection = await asyncpg.connect(platform_dsn)
    try:

        async def report_from_rollups(*, html: bool) -> Any:
            async with config.get_session() as session:
                service = TenantUsageService(
                    TenantUsageRepository(session, tenant.id),
                    TenantRef(id=tenant.id, slug=tenant.slug, name=tenant.name),
                    settings={},  # seeded tenants have none: UTC days, the default brand
                    branding={},
                )
                report = await service.report(span, None)
                if html:
                    await service.breakdowns(span)
                return report

        json_service, _ = await timed(lambda: report_from_rollups(html=False), args.requests)
        html_service, _ = await timed(lambda: report_from_rollups(html=True), args.requests)
        start, end = instants(span)
        json_raw, raw = await timed(
            lambda: raw_report(connection, TENANT_REPORT, tenant.id, start, end), args.raw_repeats
        )
        html_raw, _ = await timed(
            lambda: raw_report(
                connection, [*TENANT_REPORT, TENANT_BREAKDOWNS], tenant.id, start, end
            ),
            args.raw_repeats,
        )
    finally:
        await connection.close()
        await config.get_engine().dispose()
    totals = response.json()["totals"]
    check_same(f"{tenant.slug} {TENANT_DAYS}-day totals", totals, raw[0])
    raw_storage = sum(int(row["storage_bytes"] or 0) for row in raw[2])
    if (totals["active_users"], totals["storage_bytes"]) != (raw[1][0][0], raw_storage):
        raise RuntimeError(f"{tenant.slug}: active users or storage differ from the raw events")
    return [
        ReportTimes(f"{tenant.slug} JSON", 50, json_http, json_service, json_raw),
        ReportTimes(f"{tenant.slug} HTML", 150, html_http, html_service, html_raw),
    ]


async def platform_report(
    settings: Settings,
    platform_dsn: str,
    client: httpx.Client,
    operator: str,
    last_day: date,
    args: argparse.Namespace,
) -> ReportTimes:
    span = parse_range(
        last_day - timedelta(days=PLATFORM_DAYS - 1), last_day, "day", None, zone="UTC"
    )
    http, response = over_http(
        client,
        f"/platform/v1/usage?from={span.first}&to={span.last}",
        {"Authorization": f"Bearer {operator}"},
        args.requests,
        args.warmup,
    )
    config = platform_db_config(settings)
    connection = await asyncpg.connect(platform_dsn)
    try:

        async def report_from_rollups() -> Any:
            async with config.get_session() as session:
                service = PlatformUsageService(PlatformUsageRepository(session))
                return await service.report(span, sort="-storage_bytes", limit=100, offset=0)

        service, _ = await timed(report_from_rollups, args.requests)
        raw, rows = await timed(
            lambda: raw_report(connection, PLATFORM_REPORT, *instants(span)), args.raw_repeats
        )
    finally:
        await connection.close()
        await config.get_engine().dispose()
    check_same(f"platform {PLATFORM_DAYS}-day totals", response.json()["totals"], rows[2])
    return ReportTimes("all tenants JSON", 500, http, service, raw)


def check_same(what: str, totals: dict[str, int], raw_rows: list[asyncpg.Record]) -> None:
    """The rollups' totals against the raw events' (the raw rows are by day or by tenant)."""
    for name in CHECKED:
        if name not in totals:
            continue
        raw = sum(int(row[name]) for row in raw_rows)
        if raw != totals[name]:
            raise RuntimeError(f"{what}: {name} is {totals[name]} in the rollups, {raw} raw")
    print(f"  {what}: the rollups agree with the raw events", flush=True)


# -- 4. ingestion ----------------------------------------------------------------------------


@dataclass
class Batch:
    txid: int
    seq: int
    events: int
    committed_at: float
    rolled_up_at: float | None = None


@dataclass
class Ingestion:
    offered_rate: float
    seconds: float = 0.0
    batches: list[Batch] = field(default_factory=list)
    job_rounds: int = 0
    job_busy: float = 0.0
    job_events: int = 0
    caught_up_after: float = 0.0  # seconds from the last insert to the round that rolled it up

    @property
    def inserted(self) -> int:
        return sum(batch.events for batch in self.batches)

    @property
    def lags(self) -> list[float]:
        return [(b.rolled_up_at or 0.0) - b.committed_at for b in self.batches]


class EventSource:
    """Downloads of sampled ready files (by users of their tenant) and logins: the kinds that
    leave the stored bytes as they are, so the seeded storage stays what tenant_usage says."""

    def __init__(self, files: list[asyncpg.Record], users: list[asyncpg.Record]) -> None:
        self.rng = random.Random(11)
        self.files = files
        self.users: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for user in users:
            self.users.setdefault(user["tenant_id"], []).append(user)

    def batch(self, size: int) -> list[list[Any]]:
        columns: list[list[Any]] = [[] for _ in range(10)]
        for _ in range(size):
            file = self.rng.choice(self.files)
            user = self.rng.choice(self.users[file["tenant_id"]])
            tenant, who, role = file["tenant_id"], user["id"], user["role"]
            if self.rng.random() < DOWNLOAD_SHARE:
                row = (
                    *(tenant, "download", who, role, file["id"], file["size"]),
                    *(file["category_id"], file["language"], file["audiences"]),
                    file["content_type"],
                )
            else:
                row = (tenant, "login", who, role, None, 0, None, None, "{}", None)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        return columns


async def ingest(settings: Settings, platform_dsn: str, args: argparse.Namespace) -> Ingestion:
    connections = [await asyncpg.connect(platform_dsn) for _ in range(args.ingest_connections)]
    watching = await asyncpg.connect(platform_dsn)  # the job loop's own: reads the watermark
    config = platform_db_config(settings)
    job = RollupJob(config, retention_days=settings.usage_retention_days)
    result = Ingestion(offered_rate=args.ingest_rate)
    try:
        await job.run_once()  # start from a current watermark
        first_day = datetime.now(UTC).date()
        source = EventSource(
            await connections[0].fetch(SAMPLE_FILES, 5000),
            await connections[0].fetch(
                "SELECT tenant_id, id, role FROM users WHERE tenant_id = ANY("
                "SELECT DISTINCT tenant_id FROM files)"
            ),
        )
        interval = args.ingest_connections * args.ingest_batch / args.ingest_rate
        start = time.monotonic() + 0.5
        end = start + args.ingest_seconds

        async def insert(connection: asyncpg.Connection, offset: float) -> None:
            due = start + offset
            while due < end:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                row = await connection.fetchrow(INSERT_EVENTS, *source.batch(args.ingest_batch))
                result.batches.append(
                    Batch(int(row["txid"]), row["seq"], args.ingest_batch, time.monotonic())
                )
                due += interval

        inserting = asyncio.gather(
            *(
                insert(connection, index * interval / len(connections))
                for index, connection in enumerate(connections)
            )
        )
        job_loop = asyncio.create_task(roll_up_meanwhile(job, watching, result, inserting))
        await inserting
        result.seconds = time.monotonic() - start
        await job_loop
        result.caught_up_after = max((b.rolled_up_at or 0.0) for b in result.batches) - max(
            b.committed_at for b in result.batches
        )
        # Out again, and their days rebuilt: a later `--reuse` run reports on the seed alone.
        await watching.execute(FORGET_BATCHES, [str(batch.txid) for batch in result.batches])
        await job.rebuild(first_day, datetime.now(UTC).date())
    finally:
        for connection in [*connections, watching]:
            await connection.close()
        await config.get_engine().dispose()
    return result


async def roll_up_meanwhile(
    job: RollupJob,
    connection: asyncpg.Connection,
    result: Ingestion,
    inserting: asyncio.Future[Any],
) -> None:
    """The job as a server runs it (a round, then a pause), until every batch is rolled up;
    after each round, the batches at or below the watermark are marked rolled up."""
    while True:
        started = time.monotonic()
        result.job_events += await job.run_once()
        done = time.monotonic()
        result.job_busy += done - started
        result.job_rounds += 1
        mark = await connection.fetchrow(WATERMARK)
        watermark = (int(mark["txid"]), mark["seq"])
        for batch in result.batches:
            if batch.rolled_up_at is None and (batch.txid, batch.seq) <= watermark:
                batch.rolled_up_at = done
        if inserting.done() and all(b.rolled_up_at is not None for b in result.batches):
            return
        await asyncio.sleep(JOB_INTERVAL_SECONDS)


# -- the report ------------------------------------------------------------------------------


def report_table(times: list[ReportTimes]) -> str:
    lines = [
        f"Tenants: {TENANT_DAYS} days; all tenants: {PLATFORM_DAYS} days.",
        "",
        "| report | HTTP p50 ms | HTTP p95 ms | goal p95 | service from rollups p50 ms "
        "| raw SQL p50 ms | raw / rollups (service) | raw / HTTP p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in times:
        verdict = "met" if row.http.p95 < row.goal_ms else "missed"
        lines.append(
            f"| {row.name} | {row.http.p50:.1f} | {row.http.p95:.1f} "
            f"| < {row.goal_ms:.0f} ({verdict}) "
            f"| {row.service.p50:.1f} | {row.raw.p50:.0f} | {row.raw.p50 / row.service.p50:.1f}x "
            f"| {row.raw.p50 / row.http.p50:.1f}x |"
        )
    return "\n".join(lines)


def ingestion_table(result: Ingestion, goal: float) -> str:
    rate = result.inserted / result.seconds
    throughput = result.job_events / result.job_busy if result.job_busy else 0.0
    lags = result.lags
    kept_up = rate >= goal and result.job_events >= result.inserted
    return "\n".join(
        [
            "| measurement | value |",
            "|---|---|",
            f"| offered rate | {result.offered_rate:.0f} events/s |",
            f"| inserted | {result.inserted} events in {result.seconds:.1f} s = {rate:.0f} "
            f"events/s (goal >= {goal:.0f}: {'met' if kept_up else 'missed'}) |",
            f"| rollup job | {result.job_events} events in {result.job_rounds} rounds, "
            f"{result.job_busy:.1f} s busy = {throughput:.0f} events/s of its own time, "
            f"busy {result.job_busy / result.seconds:.0%} of the time |",
            f"| lag, commit to rolled up | p50 {statistics.median(lags):.2f} s, "
            f"p95 {percentile(lags, 0.95):.2f} s, max {max(lags):.2f} s |",
            f"| caught up after the last insert | {result.caught_up_after:.2f} s |",
        ]
    )


# -- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="default: /tmp/tenantry-bench-usage-<plan>"
    )
    parser.add_argument("--reuse", action="store_true", help="keep a seed of the same plan")
    parser.add_argument("--requests", type=int, default=100, help="per report, after warm-up")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--raw-repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--ingest-rate", type=float, default=5000.0, help="events/s offered")
    parser.add_argument("--ingest-seconds", type=float, default=30.0)
    parser.add_argument("--ingest-connections", type=int, default=4)
    parser.add_argument("--ingest-batch", type=int, default=50, help="events per insert")
    parser.add_argument("--skip-reports", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    return parser.parse_args()


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    print(f"load average before: {loadavg()}", flush=True)
    plan = f"{args.tenants}t-{args.events}e-{args.days}d-s{args.seed}"
    root = (args.data_dir or Path(f"/tmp/tenantry-bench-usage-{plan}")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
    wanted = Dataset(args.tenants, args.events, args.days, args.seed)
    with embedded_postgres(root, **SERVER_SETTINGS) as database_url:
        env = prepare(database_url, root, bcrypt_rounds=4)
        env["TENANTRY_USAGE_ROLLUP_INTERVAL_SECONDS"] = "0"  # step 4 runs the job itself
        env["TENANTRY_RECONCILE_INTERVAL_SECONDS"] = "0"
        env["TENANTRY_ACCESS_TOKEN_TTL_SECONDS"] = "7200"
        dataset = seeded_dataset(root, env, database_url, wanted, reuse=args.reuse)
        settings = role_settings(database_url, root / ".tenantry")
        platform_dsn = role_dsn(database_url, root / ".tenantry", "platform")
        tenants = asyncio.run(measured_tenants(platform_dsn))
        print(
            f"dataset: {dataset.tenants} tenants, {dataset.events} events over {dataset.days} "
            f"days (seed {dataset.seed}), seeded {dataset.seeded_at[:16]} in "
            f"{dataset.seed_seconds:.0f} s:\n    " + dataset.seed_output.replace("\n", "\n    "),
            flush=True,
        )
        with (
            server_process(env, root, free_port(), args.workers) as server,
            httpx.Client(base_url=server.base_url, timeout=120) as client,
        ):
            if not args.skip_reports:
                operator = operator_token(client)
                measured = [replace(t, token=tenant_token(client, t.slug)) for t in tenants]
                asyncio.run(roll_up(settings))  # the admins' logins are events too
                times: list[ReportTimes] = []
                for tenant in measured:
                    print(f"{tenant.slug}: {tenant.events} events in all", flush=True)
                    times += asyncio.run(
                        tenant_reports(
                            settings, platform_dsn, client, tenant, dataset.last_day, args
                        )
                    )
                times.append(
                    asyncio.run(
                        platform_report(
                            settings, platform_dsn, client, operator, dataset.last_day, args
                        )
                    )
                )
                print("\n" + report_table(times) + "\n", flush=True)
            if not args.skip_ingest:
                print(ingestion_table(asyncio.run(ingest(settings, platform_dsn, args)), 5000.0))
    print(f"\nload average after: {loadavg()}; took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
