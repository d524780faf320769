"""Noisy neighbours (issue 10): tenant A floods, tenant B should not notice.

    uv run python benchmarks/bench_flood.py [--seconds 20] [--uploads 50] [--size-mib 100]
        [--logins 20]

One `tenantry serve` (two workers, limits on, bcrypt at cost 12, the local store) and two
tenants on the standard plan, B's request rate and upload bandwidth lifted (its reads and its
upload are the measurement). Tenant B is measured twice in the same run, with A idle and with
A flooding: `GET /api/v1/files/{id}` from 8 concurrent clients for `--seconds` (p50, p99), and
one 100 MiB upload (MiB/s). A's flood, from a process of its own: `--uploads` concurrent
100 MiB uploads (each retried after `Retry-After` when refused) and `--logins` concurrent login
loops. Reported: B's figures in both phases and their ratios (goal: p99 and upload throughput
within 1.5x), and what A got through.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from harness import (
    cpu_delta,
    embedded_postgres,
    free_port,
    operator_token,
    percentile,
    prepare,
    server_process,
)

CHUNK = b"%PDF-1.7\n" + b"x" * (1024 * 1024 - 9)
BOUNDARY = "flood-boundary"
PASSWORD = "flood-bench-password"


@dataclass
class Tenant:
    host: str
    token: str
    file_id: str


def _body(size: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nFlood\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        sent = 0
        while sent < size:
            piece = CHUNK[: min(len(CHUNK), size - sent)]
            sent += len(piece)
            yield piece
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    return chunks()


async def _upload(http: httpx.AsyncClient, tenant: Tenant, size: int) -> httpx.Response:
    return await http.post(
        "/api/v1/files",
        content=_body(size),
        headers={
            "Host": tenant.host,
            "Authorization": f"Bearer {tenant.token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
        timeout=600,
    )


def _provision(base_url: str, slug: str, **limits: object) -> Tenant:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        operator = {"Authorization": f"Bearer {operator_token(client)}"}
        body = {
            "slug": slug,
            "name": slug.title(),
            "admin": {"email": f"owner@{slug}.example", "password": PASSWORD},
        }
        created = client.post("/platform/v1/tenants", json=body, headers=operator)
        created.raise_for_status()
        if limits:
            client.patch(
                f"/platform/v1/tenants/{created.json()['id']}",
                json={"limits": limits},
                headers=operator,
            ).raise_for_status()
        host = f"{slug}.localhost"
        login = client.post(
            "/api/v1/auth/login",
            json={"email": f"owner@{slug}.example", "password": PASSWORD},
            headers={"Host": host},
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        made = client.post(
            "/api/v1/files",
            data={"title": "Guide"},
            files={"file": ("g.pdf", CHUNK[:4096], "application/pdf")},
            headers={"Host": host, "Authorization": f"Bearer {token}"},
        )
        made.raise_for_status()
        return Tenant(host, token, made.json()["id"])


async def _reads(base_url: str, tenant: Tenant, seconds: float) -> list[float]:
    latencies: list[float] = []
    headers = {"Host": tenant.host, "Authorization": f"Bearer {tenant.token}"}
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def loop() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = await http.get(f"/api/v1/files/{tenant.file_id}", headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(loop() for _ in range(8)))
    return latencies


async def _one_upload(base_url: str, tenant: Tenant, size: int) -> float:
    async with httpx.AsyncClient(base_url=base_url) as http:
        started = time.perf_counter()
        response = await _upload(http, tenant, size)
        response.raise_for_status()
        return size / 2**20 / (time.perf_counter() - started)


def _flood(base_url: str, tenant: Tenant, uploads: int, size: int, logins: int, seconds: float,
           results: multiprocessing.Queue[dict[str, int]]) -> None:  # fmt: skip
    async def run() -> dict[str, int]:
        seen: Counter[str] = Counter()
        stop = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=uploads + logins + 8)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=600) as http:

            async def upload_loop() -> None:
                while time.monotonic() < stop:
                    try:
                        response = await _upload(http, tenant, size)
                    except httpx.HTTPError as exc:
                        # A refusal answered before the body was read closes the connection
                        # under the still-sending client: that is a refusal too.
                        seen[f"upload {type(exc).__name__}"] += 1
                        await asyncio.sleep(1)
                        continue
                    seen[f"upload {response.status_code}"] += 1
                    if response.status_code == 429:
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))

            async def login_loop() -> None:
                while time.monotonic() < stop:
                    try:
                        response = await http.post(
                            "/api/v1/auth/login",
                            json={"email": "owner@flood.example", "password": PASSWORD},
                            headers={"Host": tenant.host},
                        )
                    except httpx.HTTPError as exc:
                        seen[f"login {type(exc).__name__}"] += 1
                        continue
                    seen[f"login {response.status_code}"] += 1

            await asyncio.gather(
                *(upload_loop() for _ in range(uploads)), *(login_loop() for _ in range(logins))
            )
        return dict(seen)

    results.put(asyncio.run(run()))


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _measure(
    base_url: str, tenant: Tenant, seconds: float, size: int
) -> tuple[float, float, float]:
    latencies = asyncio.run(_reads(base_url, tenant, seconds))
    throughput = asyncio.run(_one_upload(base_url, tenant, size))
    return percentile(latencies, 0.5), percentile(latencies, 0.99), throughput


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    size = args.size_mib * 2**20
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-flood-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as database_url:
            env = {**prepare(database_url, root, bcrypt_rounds=12), "TENANTRY_RATE_LIMITS": "true"}
            with server_process(env, root, free_port(), workers=2) as server:
                base_url = server.base_url
                # B reads and uploads as fast as the machine allows: its own limits must not be
                # what is measured.
                flooder = _provision(base_url, "flood")
                measured = _provision(base_url, "calm", api_rate=None, upload_mib_per_second=None)
                idle = _measure(base_url, measured, args.seconds, size)
                results: multiprocessing.Queue[dict[str, int]] = multiprocessing.Queue()
                flood = multiprocessing.Process(
                    target=_flood,
                    args=(
                        base_url,
                        flooder,
                        args.uploads,
                        size,
                        args.logins,
                        args.seconds + 15,
                        results,
                    ),
                )
                flood.start()
                time.sleep(5)  # the flood at full strength first
                meter, flooder_process = server.meter(root), psutil.Process(flood.pid)
                before, client_before = meter.snapshot(), _cpu_seconds(flooder_process)
                own_before, wall_before = time.process_time(), time.monotonic()
                flooded = _measure(base_url, measured, args.seconds, size)
                wall = time.monotonic() - wall_before
                after, client_after = meter.snapshot(), _cpu_seconds(flooder_process)
                cores = {
                    "server (granian group)": cpu_delta(before.app, after.app) / wall,
                    "Postgres": cpu_delta(before.db, after.db) / wall,
                    "A's flood client": (client_after - client_before) / wall,
                    "B's measuring client": (time.process_time() - own_before) / wall,
                }
                seen = results.get(timeout=900)
                flood.join()
    print(
        f"`uv run python benchmarks/bench_flood.py --seconds {args.seconds:g} --uploads "
        f"{args.uploads} --size-mib {args.size_mib} --logins {args.logins}`, "
        f"{os.cpu_count()} cores\n"
    )
    print("| tenant B | A idle | A flooding | ratio | goal |")
    print("|---|---|---|---|---|")
    print(
        f"| `GET /api/v1/files/{{id}}` p50 ms | {idle[0]:.1f} | {flooded[0]:.1f} | {flooded[0] / idle[0]:.2f} | |"
    )
    print(
        f"| `GET /api/v1/files/{{id}}` p99 ms | {idle[1]:.1f} | {flooded[1]:.1f} | {flooded[1] / idle[1]:.2f} | <= 1.5 |"
    )
    print(
        f"| one {args.size_mib} MiB upload, MiB/s | {idle[2]:.1f} | {flooded[2]:.1f} | {idle[2] / flooded[2]:.2f} (slowdown) | <= 1.5 |"
    )
    print(f"\ntenant A's flood got: {dict(sorted(seen.items()))}")
    print("\nCPU cores busy while B was measured under the flood (of 2):")
    for who, busy in cores.items():
        print(f"- {who}: {busy:.2f}")


if __name__ == "__main__":
    main()
