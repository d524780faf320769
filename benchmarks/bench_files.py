"""Files benchmark (issue 3): streamed uploads to S3 (moto) and the read paths under wrk.

    uv run python benchmarks/bench_files.py [--sizes 10M,100M,1G] [--repeats 3]
        [--big-repeats N] [--duration 15] [--skip-upload] [--skip-reads] [--profile]

Everything is set up here and torn down on exit: an embedded Postgres in a temporary directory
(harness.py), moto in server mode as a separate process (it must not share the GIL with the
client), `tenantry serve` (granian) in its own process group.

1. Uploads (`--workers 1`, so one worker takes every upload): for each size, the same bytes go
   through `POST /api/v1/files` (streamed multipart body, never built in memory) and through a
   raw aioboto3 multipart upload (8 MiB parts, sequential, same endpoint), alternating which goes
   first; MiB/s and the API/raw ratio per repeat. The worker's RSS is read from
   /proc/<pid>/status before the upload, its peak (VmHWM, reset through clear_refs before each
   upload, and a 10 ms sampler of VmRSS as a cross-check) after.
2. Reads (`--workers 2`): 10 tenants x 10,000 files seeded with SQL as `tenantry_platform`,
   then `wrk -t2 -c50 --latency` on one file's metadata (a Lua script rotating over ids),
   a list of 50 and the stats; req/s, p50/p99, ratio to the reference implementation.
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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aioboto3
import asyncpg
import httpx
import psutil
from aiobotocore.config import AioConfig
from harness import (
    embedded_postgres,
    free_port,
    operator_token,
    prepare,
    role_dsn,
    stop_group,
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
# The reference implementation on this machine type (issue 3); the goal is twice each.
REFERENCE = {"file": 714.0, "list": 440.0, "stats": 217.0}
READ_PATHS = {
    "file": "/api/v1/files/{id}",
    "list": "/api/v1/files?limit=50",
    "stats": "/api/v1/files/stats",
}


# --- processes ----------------------------------------------------------------------------


def wait_http(url: str, process: subprocess.Popen[bytes], ok: tuple[int, ...]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code in ok:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in time")


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
        wait_http(f"{url}/moto-api/", process, (200,))
        yield url
    finally:
        stop_group(process, signal.SIGTERM)


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def workers(self) -> list[psutil.Process]:
        """granian's worker processes (children of the main process, not helpers)."""
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found.append(child)
        return found


@contextlib.contextmanager
def app_server(env: dict[str, str], cwd: Path, workers: int) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "tenantry", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base_url}/health/ready", process, (200,))
        server = Server(base_url, process)
        deadline = time.monotonic() + 20
        while len(server.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server
    finally:
        stop_group(process)


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
        await admin.execute("ANALYZE")
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


WRK_LUA = """
local ids = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/api/v1/files/" .. ids[(i %% #ids) + 1])
end
"""
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float


def _latency(output: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(
    base_url: str, tenant: ReadTenant, path: str, script: Path | None, duration: float
) -> WrkResult:
    command = ["wrk", "-t2", "-c50", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    command += ["-H", f"Host: {tenant.slug}.localhost"]
    command += ["-H", f"Authorization: Bearer {tenant.token}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, base_url + path], check=True, capture_output=True, text=True
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failures:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{output}")
    return WrkResult(float(rate.group(1)), _latency(output, "50%"), _latency(output, "99%"))


def find_py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path.home() / ".local/bin/py-spy"] if p.exists()), None
    )


def cpu_by_pid(server: Server) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds used so far, per pid: the granian workers, and this benchmark's Postgres."""
    workers = {worker.pid: process_cpu(worker) for worker in server.workers()}
    postgres = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        ours = " bench " in cmdline or "tenantry-bench-files" in cmdline
        if process.info["name"] == "postgres" and ours:
            postgres[process.pid] = process_cpu(process)
    return workers, postgres


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots; a process born in between counts whole."""
    return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())


def profile(
    server: Server, tenant: ReadTenant, name: str, script: Path | None, out_dir: Path
) -> str:
    """wrk on one endpoint while py-spy samples one worker (GIL holder only): the top frames
    by self time, the project's functions by inclusive time, and where the CPU went."""
    py_spy = find_py_spy()
    if py_spy is None:
        return "py-spy not found (uv tool install py-spy)"
    worker = server.workers()[0].pid
    raw = out_dir / f"{name}.txt"
    path = READ_PATHS[name] if script is None else "/"
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(worker), "--duration", "10", "--rate", "250"),
            *("--gil", "--format", "raw", "--nonblocking", "--output", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cpu_before, wall_before = cpu_by_pid(server), time.monotonic()
    result = run_wrk(server.base_url, tenant, path, script, 12)
    cpu_after, wall = cpu_by_pid(server), time.monotonic() - wall_before
    spy.wait(timeout=60)
    header = (
        f"{name}: {result.rps:.0f} req/s under py-spy; CPU cores busy: granian workers "
        f"{cpu_delta(cpu_before[0], cpu_after[0]) / wall:.2f}, Postgres "
        f"{cpu_delta(cpu_before[1], cpu_after[1]) / wall:.2f} (of 2); worker {worker}"
    )
    return header + "\n" + summarise_profile(raw)


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


def read_phase(
    server: Server,
    database_url: str,
    data_dir: Path,
    work: Path,
    repeats: int,
    duration: float,
    profile_dir: Path | None,
) -> dict[str, list[WrkResult]]:
    tenants = create_read_tenants(server.base_url)
    platform_dsn = role_dsn(database_url, data_dir, "platform")
    admin_dsn = asyncpg_dsn(admin_url(Settings(database_url=database_url)))
    seconds = asyncio.run(seed(platform_dsn, admin_dsn, tenants))
    print(f"  seeded {READ_TENANTS} x {FILES_PER_TENANT} files in {seconds:.0f} s", flush=True)
    target = tenants[0]
    ids = asyncio.run(file_ids(platform_dsn, target.id, 2000))
    check_reads(server.base_url, target, ids[0])
    script = work / "rotate_ids.lua"
    script.write_text(WRK_LUA % ", ".join(f'"{i}"' for i in ids))
    scripts = {"file": script, "list": None, "stats": None}
    paths = {"file": "/", "list": READ_PATHS["list"], "stats": READ_PATHS["stats"]}
    results: dict[str, list[WrkResult]] = {name: [] for name in READ_PATHS}
    names = list(READ_PATHS)
    for repeat in range(repeats):
        order = names[repeat % 3 :] + names[: repeat % 3]
        for name in order:
            run_wrk(server.base_url, target, paths[name], scripts[name], WARMUP_SECONDS)
            result = run_wrk(server.base_url, target, paths[name], scripts[name], duration)
            results[name].append(result)
            print(
                f"  {name} #{repeat + 1}: {result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms, "
                f"p99 {result.p99_ms:.1f} ms",
                flush=True,
            )
    app_dsn = role_dsn(database_url, data_dir, "app")
    print(
        "\nEXPLAIN ANALYZE (as tenantry_app, tenant set):\n"
        + asyncio.run(explain(app_dsn, target.id))
    )
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        print()
        for name in names:
            print(profile(server, target, name, scripts[name], profile_dir), flush=True)
    return results


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


def read_report(results: dict[str, list[WrkResult]]) -> str:
    lines = [
        "| endpoint | req/s median | per repeat | p50 ms (median) | p99 ms (median) "
        "| reference | ratio | goal >= 2x |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        if not runs:
            continue
        rps = statistics.median(r.rps for r in runs)
        ratio = rps / REFERENCE[name]
        lines.append(
            f"| `GET {READ_PATHS[name]}` | {rps:.0f} | {', '.join(f'{r.rps:.0f}' for r in runs)} "
            f"| {statistics.median(r.p50_ms for r in runs):.1f} "
            f"| {statistics.median(r.p99_ms for r in runs):.1f} | {REFERENCE[name]:.0f} "
            f"| {ratio:.2f}x | {'met' if ratio >= 2 else 'missed'} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [parse_size(p) for p in text.split(",") if p],
        default=[10 * MiB, 100 * MiB, 1024 * MiB],
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-repeats", type=int, default=None, help="repeats for >= 1 GiB")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--skip-upload", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the reads into DIR"
    )
    return parser.parse_args()


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    args = parse_args()
    big_repeats = args.big_repeats if args.big_repeats is not None else args.repeats
    started = time.monotonic()
    print(f"load average before: {loadavg()}", flush=True)
    upload_rows: list[UploadRow] = []
    peak_reset = True
    reads: dict[str, list[WrkResult]] = {}
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-files-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as database_url, moto_server(root) as s3_endpoint:
            env = prepare(database_url, root, bcrypt_rounds=4)
            env.update(s3_env(s3_endpoint))
            asyncio.run(make_bucket(s3_endpoint))
            if not args.skip_upload:
                print("uploads (--workers 1):", flush=True)
                with app_server(env, root, workers=1) as server:
                    upload_rows, peak_reset = asyncio.run(
                        upload_phase(
                            server, s3_endpoint, args.sizes, args.repeats, big_repeats, args.profile
                        )
                    )
            if not args.skip_reads:
                print("reads (--workers 2):", flush=True)
                with app_server(env, root, workers=2) as server:
                    reads = read_phase(
                        server,
                        database_url,
                        root / ".tenantry",
                        root,
                        args.repeats,
                        args.duration,
                        args.profile,
                    )
    print(f"\nload average after: {loadavg()}; took {time.monotonic() - started:.0f} s\n")
    if upload_rows:
        print(upload_report(upload_rows, peak_reset) + "\n")
    if reads:
        print(read_report(reads))


if __name__ == "__main__":
    main()
