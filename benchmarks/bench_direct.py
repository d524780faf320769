"""Direct uploads vs proxied (issue 10): what one upload costs the API process.

    uv run python benchmarks/bench_direct.py [--size 1G] [--repeats 1]

Set up as bench_files.py does (harness.py: embedded Postgres in a temporary directory; moto in
server mode as its own process; `tenantry serve --workers 1`), then, for each repeat, the same
bytes (a 1 MiB incompressible block starting with a PDF header, repeated) go

- proxied: `POST /api/v1/files`, a streamed multipart body (the API parses, sniffs, hashes and
  sends every byte on to S3);
- direct: `POST /api/v1/uploads`, each part PUT by this client straight to moto's presigned URL
  (sequentially, as the proxied upload is one stream), then `POST /api/v1/uploads/{id}/complete`
  (the API joins the parts and reads the object back once for its sha256).

Reported per path: wall seconds, and the API's CPU seconds (user + system of the server's main
process and its workers, from /proc via psutil, before and after) per GiB; for direct also the
complete call's own seconds. The client runs in this process, so its CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from bench_files import (
    UPLOAD_SLUG,
    api_upload,
    content_block,
    create_tenant,
    make_bucket,
    moto_server,
    parse_size,
    s3_env,
    size_label,
    tenant_headers,
    tenant_token,
)
from harness import Server, embedded_postgres, free_port, operator_token, prepare, server_process

GiB = 1024**3


@dataclass
class Run:
    path: str
    seconds: float
    cpu_seconds: float
    complete_seconds: float | None = None


def server_cpu(server: Server) -> float:
    """User + system seconds of the server's main process and its workers so far."""
    total = 0.0
    for process in [psutil.Process(server.process.pid), *server.workers()]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


async def direct_upload(
    api: httpx.AsyncClient, s3: httpx.AsyncClient, headers: dict[str, str], size: int, block: bytes
) -> float:
    """Start, PUT every part to its URL, complete; returns the complete call's seconds."""
    started = await api.post(
        "/api/v1/uploads",
        headers=headers,
        json={
            "title": f"Bench direct upload of {size} bytes",
            "filename": "bench.pdf",
            "content_type": "application/pdf",
            "size": size,
        },
    )
    if started.status_code != 201:
        raise RuntimeError(f"start failed: {started.status_code} {started.text[:500]}")
    plan = started.json()
    full_part = block * (plan["part_size"] // len(block))
    parts = []
    for part in plan["parts"]:
        body = full_part if part["size"] == len(full_part) else full_part[: part["size"]]
        response = await s3.put(part["url"], content=body)
        response.raise_for_status()
        parts.append({"number": part["number"], "etag": response.headers["etag"]})
    began = time.perf_counter()
    done = await api.post(
        f"/api/v1/uploads/{plan['id']}/complete", headers=headers, json={"parts": parts}
    )
    complete_seconds = time.perf_counter() - began
    if done.status_code != 200 or done.json()["size"] != size:
        raise RuntimeError(f"complete failed: {done.status_code} {done.text[:500]}")
    return complete_seconds


async def measure(server: Server, size: int, repeats: int) -> list[Run]:
    block = content_block()
    runs: list[Run] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as sync:
        create_tenant(sync, operator_token(sync), UPLOAD_SLUG)
        headers = tenant_headers(UPLOAD_SLUG, tenant_token(sync, UPLOAD_SLUG))
    timeout = httpx.Timeout(600)
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as api,
        httpx.AsyncClient(timeout=timeout) as s3,
    ):
        for repeat in range(repeats):
            order = ("proxied", "direct") if repeat % 2 == 0 else ("direct", "proxied")
            for path in order:
                cpu_before, started = server_cpu(server), time.perf_counter()
                complete_seconds = None
                if path == "proxied":
                    await api_upload(api, headers, size, block)
                else:
                    complete_seconds = await direct_upload(api, s3, headers, size, block)
                seconds = time.perf_counter() - started
                cpu = server_cpu(server) - cpu_before
                runs.append(Run(path, seconds, cpu, complete_seconds))
                print(
                    f"  {path:7} {seconds:7.2f} s  API CPU {cpu:6.2f} s"
                    + (f"  (complete {complete_seconds:.2f} s)" if complete_seconds else ""),
                    flush=True,
                )
    return runs


def report(runs: list[Run], size: int) -> str:
    gib = size / GiB
    lines = [
        f"| path ({size_label(size)}) | wall s | MiB/s | API CPU s per GiB | complete s |",
        "|---|---|---|---|---|",
    ]
    for path in ("proxied", "direct"):
        mine = [run for run in runs if run.path == path]
        seconds = statistics.median(run.seconds for run in mine)
        cpu = statistics.median(run.cpu_seconds for run in mine) / gib
        completes = [run.complete_seconds for run in mine if run.complete_seconds is not None]
        complete = f"{statistics.median(completes):.2f}" if completes else "-"
        mib_per_s = size / (1024 * 1024) / seconds
        lines.append(f"| {path} | {seconds:.2f} | {mib_per_s:.0f} | {cpu:.2f} | {complete} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-direct-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as database_url, moto_server(root) as s3_endpoint:
            env = prepare(database_url, root, bcrypt_rounds=4)
            env.update(s3_env(s3_endpoint))
            asyncio.run(make_bucket(s3_endpoint))
            with server_process(env, root, free_port(), workers=1) as server:
                runs = asyncio.run(measure(server, args.size, args.repeats))
    print("\n" + report(runs, args.size))


if __name__ == "__main__":
    main()
