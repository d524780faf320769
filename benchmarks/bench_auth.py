"""Issue 2 benchmark: login throughput against the raw bcrypt limit, `/me` latency during a
login storm, and `/me` throughput against a raw asyncpg loop doing the same transaction.

    uv run python benchmarks/bench_auth.py [--duration S] [--repeats N]

Sets everything up itself (embedded Postgres in a temp dir, `tenantry serve` with 2 granian
workers, one tenant), runs every measurement `--repeats` times and prints medians; ratios are
taken within each repeat (same conditions), then their median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import asyncpg
import bcrypt
import httpx
from harness import TENANT_ADMIN, Target, percentile, running_target

SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"
SELECT_ME = "SELECT id, email, role FROM users WHERE tenant_id = $1 AND id = $2 AND NOT disabled"
WARMUP_SECONDS = 3.0


@dataclass(frozen=True)
class Session:
    token: str
    user_id: uuid.UUID
    tenant_id: uuid.UUID


# --- 1. raw bcrypt ---------------------------------------------------------------------------


def bcrypt_rate(threads: int, duration: float, rounds: int) -> float:
    """checkpw/s with `threads` threads checking the same hash (bcrypt releases the GIL)."""
    password = TENANT_ADMIN[1].encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
    counts = [0] * threads
    deadline = time.perf_counter() + duration

    def check(slot: int) -> None:
        while time.perf_counter() < deadline:
            bcrypt.checkpw(password, hashed)
            counts[slot] += 1

    workers = [threading.Thread(target=check, args=(slot,)) for slot in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


# --- 2 + 3. login storm, with a steady /me probe -------------------------------------------


def _client(target: Target, connections: int, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Host": target.host_header}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=target.base_url, headers=headers, limits=limits, timeout=60)


def login_payload() -> dict[str, str]:
    email, password = TENANT_ADMIN
    return {"email": email, "password": password}


async def _login_forever(client: httpx.AsyncClient, completions: list[float]) -> None:
    while True:
        response = await client.post("/api/v1/auth/login", json=login_payload())
        response.raise_for_status()
        completions.append(time.perf_counter())


async def _timed_me(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.get("/api/v1/auth/me")
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def probe_me(client: httpx.AsyncClient, rate: float, duration: float) -> list[float]:
    """Open loop: one `/me` every 1/rate s, whatever earlier ones are doing; latencies in ms."""
    started = time.perf_counter()
    pending = []
    for index in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        pending.append(asyncio.create_task(_timed_me(client)))
    return list(await asyncio.gather(*pending))


async def login_storm(
    target: Target, session: Session, *, clients: int, probe_rate: float, duration: float
) -> tuple[float, list[float]]:
    """Logins/s completed by `clients` looping clients, and probe latencies meanwhile."""
    completions: list[float] = []
    async with _client(target, clients) as logins, _client(target, 8, session.token) as probe:
        storm = [asyncio.create_task(_login_forever(logins, completions)) for _ in range(clients)]
        try:
            await asyncio.sleep(WARMUP_SECONDS)
            window_start = time.perf_counter()
            latencies = await probe_me(probe, probe_rate, duration)
            window_end = time.perf_counter()
        finally:
            for task in storm:
                task.cancel()
            results = await asyncio.gather(*storm, return_exceptions=True)
    failures = [r for r in results if not isinstance(r, asyncio.CancelledError)]
    if failures:
        raise RuntimeError(f"login failed: {failures[0]!r}")
    done = sum(window_start <= at <= window_end for at in completions)
    return done / (window_end - window_start), latencies


async def idle_probe(target: Target, session: Session, rate: float, duration: float) -> list[float]:
    async with _client(target, 8, session.token) as probe:
        return await probe_me(probe, rate, duration)


# --- 4. /me throughput: the app under wrk vs a raw asyncpg loop ------------------------------

_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _wrk_latency(output: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
    return float(match.group(1)) * _WRK_UNITS_MS[match.group(2)]


def wrk_me(target: Target, session: Session, connections: int, duration: float) -> WrkResult:
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-H",
        f"Host: {target.host_header}",
        "-H",
        f"Authorization: Bearer {session.token}",
        f"{target.base_url}/api/v1/auth/me",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failures:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{output}")
    return WrkResult(float(rate.group(1)), _wrk_latency(output, "50%"), _wrk_latency(output, "99%"))


async def _raw_task(connection: asyncpg.Connection, session: Session, end: float) -> int:
    done = 0
    while time.time() < end:
        async with connection.transaction():
            await connection.fetchval(SET_TENANT, str(session.tenant_id))
            row = await connection.fetchrow(SELECT_ME, session.tenant_id, session.user_id)
        if row is None:
            raise RuntimeError("the raw loop's user is not visible")
        done += 1
    return done


async def _raw_loop(dsn: str, session: Session, tasks: int, start_at: float, end: float) -> int:
    connections = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(tasks)))
    try:
        if time.time() > start_at:
            raise RuntimeError("raw loop connected too late; raise its start delay")
        await asyncio.sleep(start_at - time.time())
        return sum(await asyncio.gather(*(_raw_task(c, session, end) for c in connections)))
    finally:
        await asyncio.gather(*(c.close() for c in connections))


def _raw_process(dsn: str, session: Session, tasks: int, start_at: float, end: float) -> int:
    return asyncio.run(_raw_loop(dsn, session, tasks, start_at, end))


def raw_asyncpg_rate(
    target: Target, session: Session, *, processes: int, tasks: int, duration: float
) -> float:
    """Transactions/s of `processes` x `tasks` connections, all starting at the same instant."""
    start_at = time.time() + 8.0  # spawn, imports, connects
    end = start_at + duration
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_raw_process, target.app_dsn, session, tasks, start_at, end)
            for _ in range(processes)
        ]
        return sum(future.result() for future in futures) / duration


# --- orchestration -----------------------------------------------------------------------------


def tenant_session(target: Target) -> Session:
    with httpx.Client(base_url=target.base_url, headers={"Host": target.host_header}) as client:
        login = client.post("/api/v1/auth/login", json=login_payload(), timeout=60)
        login.raise_for_status()
        token = login.json()["access_token"]
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
        body = me.json()
    return Session(token, uuid.UUID(body["id"]), uuid.UUID(body["tenant"]["id"]))


def run_repeat(target: Target, args: argparse.Namespace, index: int) -> dict[str, float]:
    session = tenant_session(target)  # fresh token: the run outlives one access-token TTL
    row: dict[str, float] = {}
    for threads in (2, 4):
        row[f"bcrypt_{threads}t"] = bcrypt_rate(threads, args.duration, args.bcrypt_rounds)
    logins, during = asyncio.run(
        login_storm(
            target,
            session,
            clients=args.login_clients,
            probe_rate=args.probe_rate,
            duration=args.duration,
        )
    )
    idle = asyncio.run(idle_probe(target, session, args.probe_rate, min(args.duration, 10.0)))
    row |= {
        "logins": logins,
        "login_vs_bcrypt_2t": logins / row["bcrypt_2t"],
        "login_vs_bcrypt_4t": logins / row["bcrypt_4t"],
        "me_storm_p50": percentile(during, 0.50),
        "me_storm_p99": percentile(during, 0.99),
        "me_idle_p50": percentile(idle, 0.50),
        "me_idle_p99": percentile(idle, 0.99),
    }
    # Alternate which side of the throughput pair goes first, so drift hits both alike.
    pair = (_measure_app, _measure_raw)
    for measure in pair if index % 2 == 0 else reversed(pair):
        row |= measure(target, session, args)
    row["me_vs_raw"] = row["me_wrk"] / row["raw_asyncpg"]
    return row


def _measure_app(target: Target, session: Session, args: argparse.Namespace) -> dict[str, float]:
    wrk_me(target, session, args.connections, WARMUP_SECONDS)  # fill the pools
    result = wrk_me(target, session, args.connections, args.duration)
    return {
        "me_wrk": result.requests_per_second,
        "me_wrk_p50": result.p50_ms,
        "me_wrk_p99": result.p99_ms,
    }


def _measure_raw(target: Target, session: Session, args: argparse.Namespace) -> dict[str, float]:
    rate = raw_asyncpg_rate(
        target,
        session,
        processes=args.raw_processes,
        tasks=args.connections // args.raw_processes,
        duration=args.duration,
    )
    return {"raw_asyncpg": rate}


ROWS: list[tuple[str, str, str, Callable[[float], str]]] = [
    ("bcrypt_2t", "raw bcrypt, 2 threads", "checks/s", "{:.2f}".format),
    ("bcrypt_4t", "raw bcrypt, 4 threads", "checks/s", "{:.2f}".format),
    ("logins", "API logins", "logins/s", "{:.2f}".format),
    ("login_vs_bcrypt_2t", "logins / raw bcrypt (2 threads)", "ratio", "{:.1%}".format),
    ("login_vs_bcrypt_4t", "logins / raw bcrypt (4 threads)", "ratio", "{:.1%}".format),
    ("me_storm_p50", "`/me` p50 during the login storm", "ms", "{:.1f}".format),
    ("me_storm_p99", "`/me` p99 during the login storm", "ms", "{:.1f}".format),
    ("me_idle_p50", "`/me` p50, same probe, no storm", "ms", "{:.1f}".format),
    ("me_idle_p99", "`/me` p99, same probe, no storm", "ms", "{:.1f}".format),
    ("me_wrk", "`/me` via the app (wrk)", "req/s", "{:.0f}".format),
    ("me_wrk_p50", "`/me` via the app (wrk), p50", "ms", "{:.1f}".format),
    ("me_wrk_p99", "`/me` via the app (wrk), p99", "ms", "{:.1f}".format),
    ("raw_asyncpg", "same transaction, raw asyncpg", "tx/s", "{:.0f}".format),
    ("me_vs_raw", "app / raw asyncpg", "ratio", "{:.1%}".format),
]


def report(rows: list[dict[str, float]]) -> str:
    header = "| measurement | unit | median | " + " | ".join(
        f"run {i + 1}" for i in range(len(rows))
    )
    lines = [header + " |", "|---|---|---|" + "---|" * len(rows)]
    for key, label, unit, fmt in ROWS:
        values = [row[key] for row in rows]
        runs = " | ".join(fmt(v) for v in values)
        lines.append(f"| {label} | {unit} | **{fmt(statistics.median(values))}** | {runs} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--login-clients", type=int, default=12)
    parser.add_argument("--probe-rate", type=float, default=25.0, help="/me requests per second")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c and raw loop total")
    parser.add_argument("--raw-processes", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with running_target(bcrypt_rounds=args.bcrypt_rounds, workers=args.workers) as target:
        rows = []
        for index in range(args.repeats):
            rows.append(run_repeat(target, args, index))
            print(f"repeat {index + 1}/{args.repeats} done", flush=True)
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(report(rows))


if __name__ == "__main__":
    main()
