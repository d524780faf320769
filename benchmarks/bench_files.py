"""Files benchmark (issues 3 and 11): streamed uploads to S3 (moto), and the read paths under
wrk against a baseline build and the framework floor in interleaved rounds.

    uv run python benchmarks/bench_files.py [--baseline REF] [--rounds 3] [--duration 15]
        [--sizes 10M,100M,1G] [--repeats 3] [--big-repeats N] [--skip-upload] [--skip-reads]
        [--profile DIR]

Everything is set up here and torn down on exit: an embedded Postgres in a temporary directory
(harness.py), moto in server mode as a separate process (it must not share the GIL with the
client), `tenantry serve` (granian) in its own process group; with `--baseline`, REF checked out
in a temporary worktree with its own locked environment (removed on exit).

1. Uploads (this tree only, `--workers 1`, so one worker takes every upload): for each size, the
   same bytes go through `POST /api/v1/files` (streamed multipart body, never built in memory)
   and through a raw aioboto3 multipart upload (8 MiB parts, sequential, same endpoint),
   alternating which goes first; MiB/s and the API/raw ratio per repeat. The worker's RSS is
   read from /proc/<pid>/status before the upload, its peak (VmHWM, reset through clear_refs
   before each upload, and a 10 ms sampler of VmRSS as a cross-check) after.
2. Reads (`--workers 2`): 10 tenants x 10,000 files seeded once with SQL as `tenantry_platform`
   (schema migrated by this tree), then `--rounds` rounds; in each, one server at a time (this
   tree, the baseline, the floor; reversed every other round) and on each of its workloads
   `wrk -t2 -c50 --latency` (a 3 s warm-up first): one file's metadata (a Lua script rotating
   over ids), a list of 50, the stats; the floor (floor_app.py) on the one-file query. Beside
   every req/s: p50/p99 and the CPU milliseconds per request of the server's process group and
   of the Postgres backends (/proc, over the measured run). Reported: medians per build, the
   medians of per-round ratios to the baseline and to the floor, issue 11's goals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aioboto3
import asyncpg
import httpx
import psutil
from aiobotocore.config import AioConfig
from harness import (
    Build,
    Server,
    WrkResult,
    add_comparison_options,
    baseline_build,
    current_build,
    embedded_postgres,
    floor_server,
    free_port,
    loadavg,
    markdown_table,
    median_ratio,
    met,
    operator_token,
    prepare,
    role_dsn,
    rotation_script,
    round_order,
    run_header,
    server_process,
    stop_group,
    wait_http,
    wrk,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tenantry.config import Settings
from tenantry.db.engines import admin_url, asyncpg_dsn
from tenantry.files import rollup

MiB = 1024 * 1024
PART_SIZE = 8 * MiB
CHUNK = 1 * MiB  # what the benchmark client hands httpx at a time
BUCKET = "tenantry-bench"
S3_KEYS = ("testing", "testing")
UPLOAD_SLUG = "upload"
READ_TENANTS = 10
FILES_PER_TENANT = 10_000
PASSWORD = "bench-tenant-password"
WARMUP_SECONDS = 3.0
READ_PATHS = {
    "file": "/api/v1/files/{id}",
    "list": "/api/v1/files?limit=50",
    "stats": "/api/v1/files/stats",
}
READ_NAMES = {"file": "one file's metadata", "list": "list of 50", "stats": "stats"}
FLOOR = "floor"
# Not measured here: the NestJS reference service and Tenantry 2ce128d side by side on
# 2026-12-01, this machine type, the same wrk command, interleaved, medians of 3 (the reference
# with a files_roles(file_id) index). Printed beside this run's figures; no goal is computed
# from them.
SIDE_BY_SIDE_2026_12_01 = {
    "file": ("1,044 req/s, p99 117 ms", "1,897 req/s, p99 146 ms"),
    "list": ("719 req/s, p99 312 ms", "932 req/s, p99 255 ms"),
    "stats": ("305 req/s", "1,633 req/s"),
}


# --- processes ----------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server(cwd: Path) -> Iterator[str]:
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/moto-api/", process)
        yield url
    finally:
        stop_group(process, signal.SIGTERM)


# --- API helpers --------------------------------------------------------------------------


def create_tenant(client: httpx.Client, operator: str, slug: str) -> str:
    response = client.post(
        "/platform/v1/tenants",
        headers={"Authorization": f"Bearer {operator}"},
        json={
            "slug": slug,
            "name": f"Bench {slug}",
            "admin": {"email": f"owner@{slug}.example", "password": PASSWORD},
            "quotas": {"storage_bytes": 50 * 1024 * MiB, "max_file_bytes": 4 * 1024 * MiB},
        },
    )
    response.raise_for_status()
    return str(response.json()["id"])


def tenant_token(client: httpx.Client, slug: str) -> str:
    response = client.post(
        "/api/v1/auth/login",
        headers={"Host": f"{slug}.localhost"},
        json={"email": f"owner@{slug}.example", "password": PASSWORD},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def tenant_headers(slug: str, token: str) -> dict[str, str]:
    return {"Host": f"{slug}.localhost", "Authorization": f"Bearer {token}"}


# --- 1 and 2: uploads and the worker's memory -------------------------------------------


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if match is None:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 10M, 1G)")
    return int(match.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[match.group(2)]


def size_label(size: int) -> str:
    return f"{size // (1024 * MiB)} GiB" if size >= 1024 * MiB else f"{size // MiB} MiB"


def content_block() -> bytes:
    """1 MiB of incompressible bytes starting with a PDF header; files repeat it."""
    header = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    return header + random.Random(3).randbytes(MiB - len(header))


def s3_config() -> AioConfig:
    # The app's client configuration (tenantry/storage/s3.py, S3Store.start).
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
    )


def s3_client(session: aioboto3.Session, endpoint: str):
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS[0],
        aws_secret_access_key=S3_KEYS[1],
        config=s3_config(),
    )


def s3_env(s3_endpoint: str) -> dict[str, str]:
    """The server's settings for the bench bucket on moto (and long-lived tokens, no reconciler)."""
    return {
        "TENANTRY_S3_BUCKET": BUCKET,
        "TENANTRY_S3_ENDPOINT_URL": s3_endpoint,
        "TENANTRY_S3_REGION": "us-east-1",
        "TENANTRY_S3_ACCESS_KEY_ID": S3_KEYS[0],
        "TENANTRY_S3_SECRET_ACCESS_KEY": S3_KEYS[1],
        "TENANTRY_S3_PART_SIZE": str(PART_SIZE),
        "TENANTRY_ACCESS_TOKEN_TTL_SECONDS": "7200",
        "TENANTRY_RECONCILE_INTERVAL_SECONDS": "0",
    }


async def make_bucket(s3_endpoint: str) -> None:
    async with s3_client(aioboto3.Session(), s3_endpoint) as s3:
        await s3.create_bucket(Bucket=BUCKET)


async def raw_upload(client, size: int, block: bytes) -> float:
    """Sequential multipart upload of `size` bytes (the block repeated); returns seconds."""
    key = f"raw/{uuid.uuid4()}"
    full_part = block * (PART_SIZE // len(block))
    started = time.perf_counter()
    upload = await client.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = []
    sent = 0
    while sent < size:
        length = min(PART_SIZE, size - sent)
        body = full_part if length == PART_SIZE else full_part[:length]
        response = await client.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=len(parts) + 1,
            Body=body,
        )
        parts.append({"PartNumber": len(parts) + 1, "ETag": response["ETag"]})
        sent += length
    await client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    elapsed = time.perf_counter() - started
    await client.delete_object(Bucket=BUCKET, Key=key)
    return elapsed


def framing(boundary: str, size: int) -> tuple[bytes, bytes]:
    """What comes before and after the file's bytes: the title field and the file part."""
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n'
        f"Bench upload of {size} bytes\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return preamble, f"\r\n--{boundary}--\r\n".encode()


async def multipart_body(
    preamble: bytes, closing: bytes, size: int, block: bytes
) -> AsyncIterator[bytes]:
    """The request body as chunks: never more than one block in memory."""
    yield preamble
    sent = 0
    while sent < size:
        length = min(CHUNK, size - sent)
        yield block if length == len(block) else block[:length]
        sent += length
    yield closing


async def api_upload(
    client: httpx.AsyncClient, headers: dict[str, str], size: int, block: bytes
) -> tuple[float, str]:
    boundary = uuid.uuid4().hex
    preamble, closing = framing(boundary, size)
    length = len(preamble) + size + len(closing)
    started = time.perf_counter()
    response = await client.post(
        "/api/v1/files",
        headers={
            **headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length),
        },
        content=multipart_body(preamble, closing, size, block),
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
    body = response.json()
    if body["size"] != size:
        raise RuntimeError(f"uploaded {body['size']} bytes, sent {size}")
    return elapsed, str(body["id"])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Polls a process's VmRSS every 10 ms in a thread; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class UploadRow:
    size: int
    repeat: int
    raw_mibs: float
    api_mibs: float
    rss_before: int
    rss_peak: int
    rss_after: int
    first: str

    @property
    def ratio(self) -> float:
        return self.api_mibs / self.raw_mibs

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before


async def upload_phase(
    server: Server,
    s3_endpoint: str,
    sizes: list[int],
    repeats: int,
    big_repeats: int,
    profile_dir: Path | None,
) -> tuple[list[UploadRow], bool]:
    with httpx.Client(base_url=server.base_url, timeout=60) as sync:
        operator = operator_token(sync)
        create_tenant(sync, operator, UPLOAD_SLUG)
        token = tenant_token(sync, UPLOAD_SLUG)
    headers = tenant_headers(UPLOAD_SLUG, token)
    workers = server.workers()
    if len(workers) != 1:
        raise RuntimeError(f"expected one granian worker, found {workers}")
    pid = workers[0].pid
    block = content_block()
    rows: list[UploadRow] = []
    peak_reset = True
    timeout = httpx.Timeout(1800, connect=10)
    session = aioboto3.Session()
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as client,
        s3_client(session, s3_endpoint) as s3,
    ):

        async def one_api(size: int) -> float:
            elapsed, file_id = await api_upload(client, headers, size, block)
            deleted = await client.delete(f"/api/v1/files/{file_id}", headers=headers)
            deleted.raise_for_status()
            return elapsed

        # Warm-up (not counted): imports, pools, the S3 client, glibc arenas on first use.
        await one_api(10 * MiB)
        await raw_upload(s3, 10 * MiB, block)
        for size in sizes:
            count = big_repeats if size >= 1024 * MiB else repeats
            for repeat in range(count):
                api_first = repeat % 2 == 0
                raw_seconds = 0.0
                if not api_first:
                    raw_seconds = await raw_upload(s3, size, block)
                before = proc_status(pid)["VmRSS"]
                peak_reset = reset_peak(pid) and peak_reset
                with RssSampler(pid) as sampler:
                    api_seconds = await one_api(size)
                status = proc_status(pid)
                peak = max(sampler.peak, status["VmHWM"] if peak_reset else 0)
                if api_first:
                    raw_seconds = await raw_upload(s3, size, block)
                row = UploadRow(
                    size=size,
                    repeat=repeat,
                    raw_mibs=size / MiB / raw_seconds,
                    api_mibs=size / MiB / api_seconds,
                    rss_before=before,
                    rss_peak=peak,
                    rss_after=status["VmRSS"],
                    first="api" if api_first else "raw",
                )
                rows.append(row)
                print(
                    f"  upload {size_label(size)} #{repeat + 1}: api {row.api_mibs:.0f} MiB/s, "
                    f"raw {row.raw_mibs:.0f} MiB/s, ratio {row.ratio:.2f}, RSS "
                    f"{before / MiB:.0f} -> peak {peak / MiB:.0f} MiB "
                    f"(+{row.growth / MiB:.1f})",
                    flush=True,
                )
        if profile_dir is not None:
            print(await profile_upload(client, headers, pid, max(sizes), block, profile_dir))
    return rows, peak_reset


# --- 3. reads under wrk -------------------------------------------------------------------

SEED_FILES = """
INSERT INTO files (tenant_id, id, title, description, category_id, language, content_type,
                   size, sha256, original_filename, storage_key, status, uploaded_by,
                   created_at, updated_at)
SELECT $1::uuid, fid,
       (ARRAY['Conflict resolution basics', 'Active listening', 'Giving feedback',
              'Setting goals together', 'Difficult conversations', 'Coaching questions',
              'Building trust', 'Career paths'])[1 + g % 8] || ' - part ' || g,
       CASE WHEN g % 4 = 0 THEN '' ELSE 'Session notes and material for mentors, no. ' || g END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE ($2::uuid[])[1 + g % 3] END,
       (ARRAY['en', 'fr', 'de', 'es', 'nl'])[1 + g % 5],
       (ARRAY['application/pdf', 'video/mp4', 'image/png', 'audio/mpeg', 'image/jpeg'])
           [1 + (g / 7) % 5],
       1000 + (g::bigint * 7919) % 5000000,
       encode(sha256(convert_to(g::text, 'UTF8')), 'hex'),
       'file-' || g || '.pdf',
       'tenants/' || $1 || '/files/' || fid,
       'ready', $3::uuid,
       now() - make_interval(mins => g), now() - make_interval(mins => g)
FROM (SELECT g, gen_random_uuid() AS fid FROM generate_series(1, $4::int) AS g) AS s
"""
SEED_AUDIENCES = """
INSERT INTO file_audiences (tenant_id, file_id, audience_id)
SELECT f.tenant_id, f.id, a.aid
FROM files f
CROSS JOIN LATERAL unnest($2::uuid[]) WITH ORDINALITY AS a(aid, n)
WHERE f.tenant_id = $1::uuid AND (abs(hashtext(f.id::text)) % 3) >= a.n
"""
SEED_USAGE = """
UPDATE tenant_usage SET storage_bytes = s.bytes, file_count = s.files
FROM (SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files
      WHERE tenant_id = $1::uuid AND status = 'ready') AS s
WHERE tenant_id = $1::uuid
"""


@dataclass
class ReadTenant:
    slug: str
    id: str
    token: str
    categories: list[str] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)


def create_read_tenants(base_url: str) -> list[ReadTenant]:
    tenants = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        operator = operator_token(client)
        for index in range(READ_TENANTS):
            slug = f"reads{index:02d}"
            tenant = ReadTenant(slug, create_tenant(client, operator, slug), "")
            tenant.token = tenant_token(client, slug)
            headers = tenant_headers(slug, tenant.token)
            for name in ("Conflict resolution", "Skills", "Soft skills"):
                made = client.post("/api/v1/admin/categories", headers=headers, json={"name": name})
                made.raise_for_status()
                tenant.categories.append(str(made.json()["id"]))
            for name in ("Mentor/Coach", "Mentee/Coachee"):
                made = client.post("/api/v1/admin/audiences", headers=headers, json={"name": name})
                made.raise_for_status()
                tenant.audiences.append(str(made.json()["id"]))
            tenants.append(tenant)
    return tenants


async def seed(platform_dsn: str, admin_dsn: str, tenants: list[ReadTenant]) -> float:
    started = time.perf_counter()
    connection = await asyncpg.connect(platform_dsn)
    try:
        for tenant in tenants:
            owner = await connection.fetchval(
                "SELECT id FROM users WHERE tenant_id = $1::uuid LIMIT 1", tenant.id
            )
            async with connection.transaction():
                await connection.execute(
                    SEED_FILES, tenant.id, tenant.categories, owner, FILES_PER_TENANT
                )
                await connection.execute(SEED_AUDIENCES, tenant.id, tenant.audiences)
                await connection.execute(SEED_USAGE, tenant.id)
    finally:
        await connection.close()
    await rebuild_rollups(platform_dsn, tenants)
    admin = await asyncpg.connect(admin_dsn)
    try:
        # VACUUM too: otherwise autovacuum's insert-triggered pass lands in the first round.
        await admin.execute("VACUUM (ANALYZE)")
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()
    return time.perf_counter() - started


async def rebuild_rollups(platform_dsn: str, tenants: list[ReadTenant]) -> None:
    """The app keeps its stats rollup in its write transactions; seeded rows bypassed them."""
    engine = create_async_engine(make_url(platform_dsn).set(drivername="postgresql+asyncpg"))
    try:
        async with AsyncSession(engine) as session, session.begin():
            for tenant in tenants:
                await rollup.rebuild(session, uuid.UUID(tenant.id))
    finally:
        await engine.dispose()


async def file_ids(platform_dsn: str, tenant_id: str, count: int) -> list[str]:
    connection = await asyncpg.connect(platform_dsn)
    try:
        rows = await connection.fetch(
            "SELECT id FROM files WHERE tenant_id = $1::uuid ORDER BY md5(id::text) LIMIT $2",
            tenant_id,
            count,
        )
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


def check_reads(base_url: str, tenant: ReadTenant, some_id: str) -> None:
    headers = tenant_headers(tenant.slug, tenant.token)
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
        one = client.get(f"/api/v1/files/{some_id}")
        one.raise_for_status()
        page = client.get("/api/v1/files?limit=50")
        page.raise_for_status()
        stats = client.get("/api/v1/files/stats")
        stats.raise_for_status()
    page_body, stats_body = page.json(), stats.json()
    if page_body["total"] != FILES_PER_TENANT or len(page_body["items"]) != 50:
        raise RuntimeError(f"list: total {page_body['total']}, {len(page_body['items'])} items")
    if stats_body["files"] != FILES_PER_TENANT:
        raise RuntimeError(f"stats: {stats_body['files']} files")
    print(
        f"  checked: one file {len(one.content)} B, list of 50 {len(page.content)} B, "
        f"stats {len(stats.content)} B",
        flush=True,
    )


def find_py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path.home() / ".local/bin/py-spy"] if p.exists()), None
    )


def read_run(
    server: Server,
    root: Path,
    tenant: ReadTenant,
    name: str,
    script: Path,
    duration: float,
    warmup: float = WARMUP_SECONDS,
) -> WrkResult:
    """wrk on one read workload of the app (`script`: the one-file ids), CPU measured."""
    url = server.base_url + ("/" if name == "file" else READ_PATHS[name])
    return wrk(
        url,
        duration=duration,
        headers=tenant_headers(tenant.slug, tenant.token),
        script=script if name == "file" else None,
        warmup=warmup,
        meter=server.meter(root),
    )


def profile(
    server: Server, root: Path, tenant: ReadTenant, name: str, script: Path, out_dir: Path
) -> str:
    """wrk on one endpoint while py-spy samples one worker (GIL holder only): the top frames
    by self time, the project's functions by inclusive time, and where the CPU went."""
    py_spy = find_py_spy()
    if py_spy is None:
        return "py-spy not found (uv tool install py-spy)"
    worker = server.workers()[0].pid
    raw = out_dir / f"{name}.txt"
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(worker), "--duration", "10", "--rate", "250"),
            *("--gil", "--format", "raw", "--nonblocking", "--output", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = read_run(server, root, tenant, name, script, 12, warmup=0)
    spy.wait(timeout=60)
    return f"{name} under py-spy (worker {worker}): {result.summary()}\n" + summarise_profile(raw)


def summarise_profile(raw: Path, keep: tuple[str, ...] = ("tenantry", "litestar")) -> str:
    """Top frames by self time, and frames from `keep` by inclusive time (py-spy raw output)."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        self_time[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames if any(k in f for k in keep)}:
            inclusive[frame] += count
    if total == 0:
        return "  (no samples)"
    lines = [f"  {total} GIL-holding samples; self time:"]
    lines += [f"    {c / total:6.1%}  {f}" for f, c in self_time.most_common(15)]
    lines.append(f"  inclusive ({', '.join(keep)} frames):")
    lines += [f"    {c / total:6.1%}  {f}" for f, c in inclusive.most_common(25)]
    return "\n".join(lines)


def process_cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


def moto_process() -> psutil.Process | None:
    for process in psutil.process_iter(["cmdline"]):
        if any("moto_server" in part for part in process.info["cmdline"] or []):
            return process
    return None


async def profile_upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    pid: int,
    size: int,
    block: bytes,
    out_dir: Path,
) -> str:
    """One more API upload with py-spy on the worker and the CPU split between processes."""
    py_spy = find_py_spy()
    if py_spy is None:
        return "py-spy not found (uv tool install py-spy)"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "upload.txt"
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(pid), "--duration", "8", "--rate", "250"),
            *("--gil", "--format", "raw", "--nonblocking", "--output", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker, moto, me = psutil.Process(pid), moto_process(), psutil.Process()
    before = [process_cpu(p) if p else 0.0 for p in (worker, moto, me)]
    elapsed, file_id = await api_upload(client, headers, size, block)
    after = [process_cpu(p) if p else 0.0 for p in (worker, moto, me)]
    await asyncio.to_thread(spy.wait, 60)
    (await client.delete(f"/api/v1/files/{file_id}", headers=headers)).raise_for_status()
    busy = [(a - b) / elapsed for a, b in zip(after, before, strict=True)]
    return (
        f"upload {size_label(size)}: {size / MiB / elapsed:.0f} MiB/s under py-spy; CPU cores "
        f"busy: granian worker {busy[0]:.2f}, moto {busy[1]:.2f}, benchmark client "
        f"{busy[2]:.2f} (of 2)\n"
        + summarise_profile(raw, ("tenantry", "multipart", "aiobotocore", "granian"))
    )


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    match = re.match(r"(.*) \((.*?):(\d+)\)$", frame)
    if match is None:
        return frame
    function, path, _line = match.groups()
    for marker in ("site-packages/", "platform/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{function} ({path})"


EXPLAIN_LIST = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT files.id, files.title, files.description, files.category_id, files.language,
       (SELECT coalesce(array_agg(file_audiences.audience_id), '{}'::uuid[])
        FROM file_audiences WHERE file_audiences.tenant_id = files.tenant_id
          AND file_audiences.file_id = files.id) AS audiences,
       files.content_type, files.size, files.sha256, files.original_filename, files.status,
       files.uploaded_by, files.created_at, files.updated_at, count(*) OVER () AS total
FROM files WHERE files.tenant_id = $1::uuid AND files.status = 'ready'
ORDER BY files.created_at DESC, files.id DESC LIMIT 50 OFFSET 0
"""
EXPLAIN_STATS_AUDIENCE = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT audiences.id, audiences.name, count(files.id), coalesce(sum(files.size), 0)::bigint
FROM audiences
LEFT JOIN file_audiences ON file_audiences.tenant_id = audiences.tenant_id
     AND file_audiences.audience_id = audiences.id
LEFT JOIN files ON files.tenant_id = file_audiences.tenant_id AND files.id = file_audiences.file_id
     AND files.tenant_id = $1::uuid AND files.status = 'ready'
WHERE audiences.tenant_id = $1::uuid GROUP BY audiences.id, audiences.name ORDER BY audiences.name
"""


async def explain(app_dsn: str, tenant_id: str) -> str:
    """The list and one stats query as the app role with the tenant set, as the app runs them."""
    connection = await asyncpg.connect(app_dsn)
    out = []
    try:
        for name, sql in (
            ("list of 50", EXPLAIN_LIST),
            ("stats by audience", EXPLAIN_STATS_AUDIENCE),
        ):
            async with connection.transaction():
                await connection.execute("SELECT set_config('app.tenant_id', $1, true)", tenant_id)
                await connection.fetch(sql, tenant_id)  # warm
                rows = await connection.fetch(sql, tenant_id)
            out.append(f"-- {name}\n" + "\n".join(row[0] for row in rows))
    finally:
        await connection.close()
    return "\n\n".join(out)


@dataclass
class Reads:
    """Every measured wrk run: (side, workload) -> one result per round, in round order."""

    builds: list[Build]
    runs: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)
    orders: list[list[str]] = field(default_factory=list)

    def add(self, side: str, name: str, result: WrkResult) -> None:
        self.runs.setdefault((side, name), []).append(result)


def read_phase(
    builds: list[Build],
    env: dict[str, str],
    database_url: str,
    root: Path,
    rounds: int,
    duration: float,
    profile_dir: Path | None,
) -> Reads:
    data_dir = root / ".tenantry"
    with server_process(env, root, free_port(), workers=2) as server:
        tenants = create_read_tenants(server.base_url)
    platform_dsn = role_dsn(database_url, data_dir, "platform")
    admin_dsn = asyncpg_dsn(admin_url(Settings(database_url=database_url)))
    seconds = asyncio.run(seed(platform_dsn, admin_dsn, tenants))
    print(f"  seeded {READ_TENANTS} x {FILES_PER_TENANT} files in {seconds:.0f} s", flush=True)
    target = tenants[0]
    ids = asyncio.run(file_ids(platform_dsn, target.id, 2000))
    script = rotation_script(root / "files.lua", "/api/v1/files/", ids)
    floor_script = rotation_script(root / "floor.lua", f"/floor/{target.id}/files/", ids)
    reads = Reads(builds)
    by_name = {build.name: build for build in builds}
    names = list(READ_PATHS)
    for index in range(rounds):
        order = round_order([*by_name, FLOOR], index)
        reads.orders.append(order)
        for side in order:
            if side == FLOOR:
                # As the tenant's platform role: no tenant setting, no RLS filter (its policy
                # is `true`), one query.
                with floor_server(env, root, free_port(), 2, platform_dsn) as server:
                    result = wrk(
                        f"{server.base_url}/",
                        duration=duration,
                        script=floor_script,
                        warmup=WARMUP_SECONDS,
                        meter=server.meter(root),
                    )
                reads.add(FLOOR, "file", result)
                print(f"  round {index + 1} {FLOOR} file: {result.summary()}", flush=True)
                continue
            with server_process(env, root, free_port(), 2, by_name[side]) as server:
                measured = signed_in(server, target)
                check_reads(server.base_url, measured, ids[0])
                for name in names[index % 3 :] + names[: index % 3]:
                    result = read_run(server, root, measured, name, script, duration)
                    reads.add(side, name, result)
                    print(f"  round {index + 1} {side} {name}: {result.summary()}", flush=True)
    app_dsn = role_dsn(database_url, data_dir, "app")
    print(
        "\nEXPLAIN ANALYZE (as tenantry_app, tenant set):\n"
        + asyncio.run(explain(app_dsn, target.id))
    )
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        print()
        with server_process(env, root, free_port(), workers=2) as server:
            measured = signed_in(server, target)
            for name in names:
                print(profile(server, root, measured, name, script, profile_dir), flush=True)
    return reads


def signed_in(server: Server, tenant: ReadTenant) -> ReadTenant:
    """The tenant with a token from this server (each build signs in for itself)."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        return replace(tenant, token=tenant_token(client, tenant.slug))


# --- report -------------------------------------------------------------------------------


def upload_report(rows: list[UploadRow], peak_reset: bool) -> str:
    lines = [
        "| size | repeats | API MiB/s (median) | raw aioboto3 MiB/s (median) | API/raw (median "
        "of per-repeat ratios) | goal >= 0.80 | RSS growth, median (max) | goal < 64 MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in dict.fromkeys(row.size for row in rows):
        mine = [row for row in rows if row.size == size]
        ratio = statistics.median(row.ratio for row in mine)
        growth = [row.growth / MiB for row in mine]
        lines.append(
            f"| {size_label(size)} | {len(mine)} "
            f"| {statistics.median(r.api_mibs for r in mine):.0f} "
            f"| {statistics.median(r.raw_mibs for r in mine):.0f} | {ratio:.2f} "
            f"| {'met' if ratio >= 0.8 else 'missed'} "
            f"| {statistics.median(growth):.1f} ({max(growth):.1f}) MiB "
            f"| {'met' if max(growth) < 64 else 'missed'} |"
        )
    lines += ["", "Per repeat:", ""]
    lines += ["| size | # | first | API MiB/s | raw MiB/s | ratio | RSS before | peak | after |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {size_label(row.size)} | {row.repeat + 1} | {row.first} | {row.api_mibs:.0f} "
            f"| {row.raw_mibs:.0f} | {row.ratio:.2f} | {row.rss_before / MiB:.0f} MiB "
            f"| {row.rss_peak / MiB:.0f} MiB | {row.rss_after / MiB:.0f} MiB |"
        )
    lines.append("")
    lines.append(
        "Peak = max(VmHWM after clear_refs reset, 10 ms VmRSS sampler)"
        if peak_reset
        else "Peak = 10 ms VmRSS sampler only (clear_refs not permitted)"
    )
    return "\n".join(lines)


def _median_ms(runs: list[WrkResult], value: Callable[[WrkResult], float | None]) -> str:
    values = [v for v in map(value, runs) if v is not None]
    return f"{statistics.median(values):.3f}" if values else "-"


def read_report(reads: Reads) -> str:
    """Medians per build and workload, with p50/p99 and CPU per request beside each req/s, the
    medians of per-round ratios to the baseline and to the floor; the goals; every round."""
    sides = [build.name for build in reads.builds] + [FLOOR]
    labels = {build.name: build.label for build in reads.builds} | {FLOOR: "floor (bare Litestar)"}
    has_baseline = ("baseline", "file") in reads.runs
    floor = [r.rps for r in reads.runs[(FLOOR, "file")]]
    rows = []
    for name in READ_PATHS:
        for side in sides:
            runs = reads.runs.get((side, name))
            if not runs:
                continue
            rps = [r.rps for r in runs]
            vs_baseline = "-"
            if side == "current" and has_baseline:
                baseline = [r.rps for r in reads.runs[("baseline", name)]]
                vs_baseline = f"{median_ratio(rps, baseline):.2f}x"
            vs_floor = "-"
            if name == "file" and side != FLOOR:
                vs_floor = f"{median_ratio(rps, floor):.2f}x"
            rows.append(
                [
                    f"{READ_NAMES[name]}, `GET {READ_PATHS[name]}`" if side == sides[0] else "",
                    labels[side],
                    f"**{statistics.median(rps):,.0f}** ({', '.join(f'{v:,.0f}' for v in rps)})",
                    f"{statistics.median(r.p50_ms for r in runs):.1f}",
                    f"{statistics.median(r.p99_ms for r in runs):.1f}",
                    _median_ms(runs, lambda r: r.app_ms),
                    _median_ms(runs, lambda r: r.db_ms),
                    vs_baseline,
                    vs_floor,
                ]
            )
    table = markdown_table(
        [
            "workload",
            "build",
            "req/s, median (rounds)",
            "p50 ms",
            "p99 ms",
            "app CPU ms/req",
            "db CPU ms/req",
            "current / baseline",
            "/ floor (one-file query)",
        ],
        rows,
    )
    reference = markdown_table(
        ["workload", "reference (NestJS)", "Tenantry 2ce128d"],
        [[READ_NAMES[name], *SIDE_BY_SIDE_2026_12_01[name]] for name in READ_PATHS],
    )
    return "\n\n".join(
        [
            table,
            "Medians over the rounds; ratios are medians of per-round ratios. CPU: utime + "
            "stime of the server's process group and, separately, of every Postgres backend, "
            "over the measured run, per completed request. The floor serves only the one-file "
            "query (`floor_app.py`).",
            "Not measured in this run: reference (NestJS, measured side by side 2026-12-01, this "
            "machine type, same wrk command, interleaved, medians of 3; the reference with a "
            "files_roles(file_id) index):",
            reference,
            read_goals(reads),
            "Every round:",
            read_rounds(reads),
        ]
    )


def read_goals(reads: Reads) -> str:
    """Issue 11's goals for the reads (stated against 2ce128d as the baseline)."""
    runs = reads.runs
    file_p99 = statistics.median(r.p99_ms for r in runs[("current", "file")])
    file_app = statistics.median(r.app_ms or 0.0 for r in runs[("current", "file")])
    rows = []

    def against_baseline(name: str, text: str, least: float) -> None:
        if ("baseline", name) not in runs:
            rows.append([text, "needs --baseline", "-"])
            return
        ratio = median_ratio(
            [r.rps for r in runs[("current", name)]], [r.rps for r in runs[("baseline", name)]]
        )
        rows.append([text, f"{ratio:.2f}x", met(ratio >= least)])

    against_baseline("file", "one file's metadata >= 1.15x baseline", 1.15)
    rows.append(["one file's metadata p99 <= 117 ms", f"{file_p99:.1f} ms", met(file_p99 <= 117)])
    against_baseline("list", "list of 50 >= 1.55x baseline", 1.55)
    rows.append(
        ["app CPU per one-file read <= 0.45 ms", f"{file_app:.3f} ms", met(file_app <= 0.45)]
    )
    against_baseline("stats", "stats not slower than baseline (>= 1.00x)", 1.0)
    baseline = next((b.label for b in reads.builds if b.name == "baseline"), "none")
    return (
        f"Goals (issue 11, stated against 2ce128d; this run's baseline: {baseline}):\n\n"
        + markdown_table(["goal", "measured (median)", "status"], rows)
    )


def read_rounds(reads: Reads) -> str:
    rows = []
    for index, order in enumerate(reads.orders):
        for side in order:
            for name in READ_PATHS:
                runs = reads.runs.get((side, name), [])
                if len(runs) <= index:
                    continue
                run = runs[index]
                rows.append(
                    [
                        str(index + 1),
                        side,
                        READ_NAMES[name],
                        f"{run.rps:,.0f}",
                        f"{run.p50_ms:.1f}",
                        f"{run.p99_ms:.1f}",
                        f"{run.app_ms:.3f}" if run.app_ms is not None else "-",
                        f"{run.db_ms:.3f}" if run.db_ms is not None else "-",
                    ]
                )
    header = ["round", "side (in order)", "workload", "req/s", "p50 ms", "p99 ms"]
    return markdown_table([*header, "app CPU ms/req", "db CPU ms/req"], rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_comparison_options(parser)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument(
        "--sizes",
        type=lambda text: [parse_size(p) for p in text.split(",") if p],
        default=[10 * MiB, 100 * MiB, 1024 * MiB],
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each upload size")
    parser.add_argument("--big-repeats", type=int, default=None, help="repeats for >= 1 GiB")
    parser.add_argument("--skip-upload", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the reads into DIR"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    big_repeats = args.big_repeats if args.big_repeats is not None else args.repeats
    started = time.monotonic()
    load_before = loadavg()
    print(f"load average before: {load_before}", flush=True)
    upload_rows: list[UploadRow] = []
    peak_reset = True
    reads: Reads | None = None
    builds = [current_build()]
    with contextlib.ExitStack() as stack:
        root = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tenantry-bench-files-"))
        )
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        if args.baseline and not args.skip_reads:
            builds.append(stack.enter_context(baseline_build(args.baseline, root)))
        database_url = stack.enter_context(embedded_postgres(root))
        s3_endpoint = stack.enter_context(moto_server(root))
        env = prepare(database_url, root, bcrypt_rounds=4)
        env.update(s3_env(s3_endpoint))
        asyncio.run(make_bucket(s3_endpoint))
        if not args.skip_upload:
            print("uploads (--workers 1, this tree):", flush=True)
            with server_process(env, root, free_port(), workers=1) as server:
                upload_rows, peak_reset = asyncio.run(
                    upload_phase(
                        server, s3_endpoint, args.sizes, args.repeats, big_repeats, args.profile
                    )
                )
        if not args.skip_reads:
            print("reads (--workers 2):", flush=True)
            reads = read_phase(
                builds, env, database_url, root, args.rounds, args.duration, args.profile
            )
    print(f"\ntook {time.monotonic() - started:.0f} s\n")
    print(run_header(load_before, builds) + "\n")
    if upload_rows:
        print(upload_report(upload_rows, peak_reset) + "\n")
    if reads is not None:
        print(read_report(reads))


if __name__ == "__main__":
    main()
