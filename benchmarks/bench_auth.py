"""Issue 2 and 11 benchmark: login throughput against the raw bcrypt limit, `/me` latency during
a login storm, `/me` throughput with its CPU per request, against a baseline build, the framework
floor and a raw asyncpg loop doing the same transaction, in interleaved rounds.

    uv run python benchmarks/bench_auth.py [--baseline REF] [--rounds N] [--duration S]

Sets everything up itself (embedded Postgres in a temp dir, one tenant created by this tree;
with `--baseline`, REF in a temporary worktree with its own locked environment). Each round
measures raw bcrypt first (no server running), then in turn (reversed every other round) each
build's `tenantry serve` on the same database, the floor (floor_app.py) and the raw asyncpg
loop, one at a time. Medians over the rounds; ratios are taken within each round, then their
median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import asyncpg
import bcrypt
import httpx
from harness import (
    SLUG,
    TENANT_ADMIN,
    Build,
    Server,
    WrkResult,
    add_comparison_options,
    baseline_build,
    create_tenant,
    current_build,
    embedded_postgres,
    floor_server,
    free_port,
    loadavg,
    markdown_table,
    median_ratio,
    met,
    percentile,
    prepare,
    role_dsn,
    round_order,
    run_header,
    server_process,
    wrk,
)

SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"
SELECT_ME = "SELECT id, email, role FROM users WHERE tenant_id = $1 AND id = $2 AND NOT disabled"
WARMUP_SECONDS = 3.0
HOST = f"{SLUG}.localhost"
FLOOR = "floor"
RAW = "raw"  # measured with no server running: raw bcrypt, the raw asyncpg loop
# Not measured here: logins at bcrypt cost 12 of the NestJS reference service and of Tenantry
# 2ce128d side by side on 2026-12-01, this machine type, interleaved, medians of 3. Printed
# beside this run's figures; no goal is computed from them.
SIDE_BY_SIDE_2026_12_01 = {"reference (NestJS)": "6.93 logins/s", "Tenantry 2ce128d": "6.26/s"}


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


def _client(base_url: str, connections: int, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Host": HOST}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60)


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
    base_url: str, session: Session, *, clients: int, probe_rate: float, duration: float
) -> tuple[float, list[float]]:
    """Logins/s completed by `clients` looping clients, and probe latencies meanwhile."""
    completions: list[float] = []
    async with (
        _client(base_url, clients) as logins,
        _client(base_url, 8, session.token) as probe,
    ):
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


async def idle_probe(base_url: str, session: Session, rate: float, duration: float) -> list[float]:
    async with _client(base_url, 8, session.token) as probe:
        return await probe_me(probe, rate, duration)


# --- 4. /me throughput: the raw asyncpg loop (the app and the floor are under wrk) -------


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
    dsn: str, session: Session, *, processes: int, tasks: int, duration: float
) -> float:
    """Transactions/s of `processes` x `tasks` connections, all starting at the same instant."""
    start_at = time.time() + 8.0  # spawn, imports, connects
    end = start_at + duration
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_raw_process, dsn, session, tasks, start_at, end) for _ in range(processes)
        ]
        return sum(future.result() for future in futures) / duration


# --- orchestration -----------------------------------------------------------------------------


def tenant_session(base_url: str) -> Session:
    with httpx.Client(base_url=base_url, headers={"Host": HOST}) as client:
        login = client.post("/api/v1/auth/login", json=login_payload(), timeout=60)
        login.raise_for_status()
        token = login.json()["access_token"]
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
        body = me.json()
    return Session(token, uuid.UUID(body["id"]), uuid.UUID(body["tenant"]["id"]))


@dataclass
class Results:
    """(side, measurement) -> one value per round, in round order; each round's side order."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    orders: list[list[str]] = field(default_factory=list)

    def add(self, side: str, **measured: float) -> None:
        for key, value in measured.items():
            self.values.setdefault((side, key), []).append(value)

    def add_wrk(self, side: str, result: WrkResult) -> None:
        self.add(
            side,
            me_wrk=result.rps,
            me_wrk_p50=result.p50_ms,
            me_wrk_p99=result.p99_ms,
            me_app_ms=result.app_ms or 0.0,
            me_db_ms=result.db_ms or 0.0,
        )
        print(f"    {side} /me under wrk: {result.summary()}", flush=True)

    def get(self, side: str, key: str) -> list[float]:
        return self.values.get((side, key), [])


@dataclass(frozen=True)
class Setup:
    env: dict[str, str]
    root: Path
    app_dsn: str  # tenantry_app: the raw loop's transaction, RLS and all
    platform_dsn: str  # the floor's role: no tenant setting, its policy is `true`
    user: Session  # the tenant admin, as a build's /me sees them


def measure_build(
    server: Server, setup: Setup, side: str, args: argparse.Namespace, results: Results
) -> None:
    session = tenant_session(server.base_url)  # fresh token: the run outlives one access-token TTL
    bcrypt_2t = results.get(RAW, "bcrypt_2t")[-1]
    bcrypt_4t = results.get(RAW, "bcrypt_4t")[-1]
    logins, during = asyncio.run(
        login_storm(
            server.base_url,
            session,
            clients=args.login_clients,
            probe_rate=args.probe_rate,
            duration=args.duration,
        )
    )
    idle = asyncio.run(
        idle_probe(server.base_url, session, args.probe_rate, min(args.duration, 10.0))
    )
    results.add(
        side,
        logins=logins,
        login_vs_bcrypt_2t=logins / bcrypt_2t,
        login_vs_bcrypt_4t=logins / bcrypt_4t,
        me_storm_p50=percentile(during, 0.50),
        me_storm_p99=percentile(during, 0.99),
        me_idle_p50=percentile(idle, 0.50),
        me_idle_p99=percentile(idle, 0.99),
    )
    print(
        f"    {side}: {logins:.2f} logins/s ({logins / bcrypt_2t:.1%} of raw bcrypt), /me p99 "
        f"{percentile(during, 0.99):.1f} ms during the storm",
        flush=True,
    )
    headers = {"Host": HOST, "Authorization": f"Bearer {session.token}"}
    results.add_wrk(
        side,
        wrk(
            f"{server.base_url}/api/v1/auth/me",
            duration=args.duration,
            headers=headers,
            connections=args.connections,
            warmup=WARMUP_SECONDS,  # fills the pools
            meter=server.meter(setup.root),
        ),
    )


def run_round(
    index: int, builds: list[Build], setup: Setup, args: argparse.Namespace, results: Results
) -> None:
    rounds = args.rounds
    print(f"round {index + 1}/{rounds}", flush=True)
    results.add(
        RAW,
        bcrypt_2t=bcrypt_rate(2, args.duration, args.bcrypt_rounds),
        bcrypt_4t=bcrypt_rate(4, args.duration, args.bcrypt_rounds),
    )
    by_name = {build.name: build for build in builds}
    order = round_order([*by_name, FLOOR, RAW], index)
    results.orders.append(order)
    for side in order:
        if side == RAW:
            rate = raw_asyncpg_rate(
                setup.app_dsn,
                setup.user,
                processes=args.raw_processes,
                tasks=args.connections // args.raw_processes,
                duration=args.duration,
            )
            results.add(RAW, raw_asyncpg=rate)
            print(f"    raw asyncpg: {rate:,.0f} tx/s", flush=True)
        elif side == FLOOR:
            user = setup.user
            with floor_server(
                setup.env, setup.root, free_port(), args.workers, setup.platform_dsn
            ) as server:
                results.add_wrk(
                    FLOOR,
                    wrk(
                        f"{server.base_url}/floor/{user.tenant_id}/users/{user.user_id}",
                        duration=args.duration,
                        connections=args.connections,
                        warmup=WARMUP_SECONDS,
                        meter=server.meter(setup.root),
                    ),
                )
        else:
            with server_process(
                setup.env, setup.root, free_port(), args.workers, by_name[side]
            ) as server:
                measure_build(server, setup, side, args, results)


# --- report ------------------------------------------------------------------------------------

PERCENT = "{:.1%}".format
ROWS: list[tuple[str, str, str, Callable[[float], str]]] = [
    ("logins", "API logins", "logins/s", "{:.2f}".format),
    ("login_vs_bcrypt_2t", "logins / raw bcrypt (2 threads)", "ratio", PERCENT),
    ("login_vs_bcrypt_4t", "logins / raw bcrypt (4 threads)", "ratio", PERCENT),
    ("me_storm_p50", "`/me` p50 during the login storm", "ms", "{:.1f}".format),
    ("me_storm_p99", "`/me` p99 during the login storm", "ms", "{:.1f}".format),
    ("me_idle_p50", "`/me` p50, same probe, no storm", "ms", "{:.1f}".format),
    ("me_idle_p99", "`/me` p99, same probe, no storm", "ms", "{:.1f}".format),
    ("me_wrk", "`/me` under wrk (floor: one query by id)", "req/s", "{:,.0f}".format),
    ("me_wrk_p50", "`/me` under wrk, p50", "ms", "{:.1f}".format),
    ("me_wrk_p99", "`/me` under wrk, p99", "ms", "{:.1f}".format),
    ("me_app_ms", "`/me` under wrk, app CPU per request", "ms", "{:.3f}".format),
    ("me_db_ms", "`/me` under wrk, db CPU per request", "ms", "{:.3f}".format),
]
RAW_ROWS: list[tuple[str, str, str, Callable[[float], str]]] = [
    ("bcrypt_2t", "raw bcrypt, 2 threads", "checks/s", "{:.2f}".format),
    ("bcrypt_4t", "raw bcrypt, 4 threads", "checks/s", "{:.2f}".format),
    ("raw_asyncpg", "the `/me` transaction on raw asyncpg", "tx/s", "{:,.0f}".format),
]


def _cell(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "-"
    return f"**{fmt(statistics.median(values))}** ({', '.join(fmt(v) for v in values)})"


def _ratio(numerators: list[float], denominators: list[float]) -> str:
    if not numerators or not denominators:
        return "-"
    return f"{median_ratio(numerators, denominators):.2f}x"


def report(builds: list[Build], results: Results) -> str:
    has_baseline = len(builds) > 1
    header = ["measurement", "unit", *(build.label for build in builds)]
    header += ["current / baseline"] if has_baseline else []
    header += ["floor (bare Litestar)", "current / floor"]
    rows = []
    for key, label, unit, fmt in ROWS:
        current = results.get("current", key)
        row = [label, unit, *(_cell(results.get(build.name, key), fmt) for build in builds)]
        if has_baseline:
            row.append(_ratio(current, results.get("baseline", key)))
        floor = results.get(FLOOR, key)
        row += [_cell(floor, fmt), _ratio(current, floor)]
        rows.append(row)
    me_vs_raw = [
        [
            f"`/me` under wrk / raw asyncpg ({build.name})",
            "ratio",
            _ratio(results.get(build.name, "me_wrk"), results.get(RAW, "raw_asyncpg")),
        ]
        for build in builds
    ]
    raw_rows = [
        [label, unit, _cell(results.get(RAW, key), fmt)] for key, label, unit, fmt in RAW_ROWS
    ]
    orders = "; ".join(
        f"{index + 1}: {', '.join(order)}" for index, order in enumerate(results.orders)
    )
    return "\n\n".join(
        [
            markdown_table(header, rows),
            "Medians over the rounds (every round in brackets); ratios are medians of per-round "
            "ratios. CPU: utime + stime of the server's process group and, separately, of every "
            "Postgres backend, over the measured wrk run, per completed request. Rounds in "
            f"order (bcrypt first in each): {orders}.",
            "Measured with no server running, in the same rounds:",
            markdown_table(["measurement", "unit", "median (rounds)"], raw_rows + me_vs_raw),
            "Not measured in this run: logins at bcrypt cost 12 side by side on 2026-12-01 (this "
            "machine type, interleaved, medians of 3): "
            + ", ".join(f"{name} {value}" for name, value in SIDE_BY_SIDE_2026_12_01.items())
            + ".",
            goals(results),
        ]
    )


def goals(results: Results) -> str:
    """Issue 11's goals for the logins (this tree)."""
    share = statistics.median(results.get("current", "login_vs_bcrypt_2t"))
    p99 = statistics.median(results.get("current", "me_storm_p99"))
    rows = [
        ["logins >= 97 % of raw bcrypt (2 threads)", f"{share:.1%}", met(share >= 0.97)],
        ["`/auth/me` p99 < 50 ms during the login storm", f"{p99:.1f} ms", met(p99 < 50)],
    ]
    return "Goals (issue 11, this tree):\n\n" + markdown_table(
        ["goal", "measured (median)", "status"], rows
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_comparison_options(parser)
    parser.add_argument(
        "--repeats", dest="rounds", type=int, default=argparse.SUPPRESS, help="old name of --rounds"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--login-clients", type=int, default=12)
    parser.add_argument("--probe-rate", type=float, default=25.0, help="/me requests per second")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c and raw loop total")
    parser.add_argument("--raw-processes", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = loadavg()
    print(f"load average before: {load_before}", flush=True)
    builds = [current_build()]
    results = Results()
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenantry-bench-")))
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        if args.baseline:
            builds.append(stack.enter_context(baseline_build(args.baseline, root)))
        database_url = stack.enter_context(embedded_postgres(root))
        env = prepare(database_url, root, args.bcrypt_rounds)
        with server_process(env, root, free_port(), args.workers) as server:
            create_tenant(server.base_url)
            user = tenant_session(server.base_url)
        data_dir = root / ".tenantry"
        setup = Setup(
            env,
            root,
            role_dsn(database_url, data_dir, "app"),
            role_dsn(database_url, data_dir, "platform"),
            user,
        )
        for index in range(args.rounds):
            run_round(index, builds, setup, args, results)
    print("\n" + run_header(load_before, builds) + "\n")
    print(report(builds, results))


if __name__ == "__main__":
    main()
