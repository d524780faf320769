"""The benchmarks' shared parts: embedded Postgres, the builds and their servers, CPU per
request from /proc, one wrk runner, the rounds and the report's header.

Everything lives in a temporary directory and is stopped on exit: the server process group
first, Postgres after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

from tenantry.config import Settings
from tenantry.db.bootstrap import create_database_if_missing
from tenantry.db.embedded import start_embedded_postgres, with_database
from tenantry.db.engines import Role, admin_url, asyncpg_dsn, role_url

DATABASE = "bench"
SLUG = "bench"
OPERATOR = ("op@bench.example", "operator-bench-password")
TENANT_ADMIN = ("admin@bench.example", "tenant-bench-password")
# Room for the app's pools (2 workers x up to 40) and the raw loop's 50 connections at once.
MAX_CONNECTIONS = 300


def _tenantry(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tenantry", *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"tenantry {' '.join(args[:2])} failed:\n{done.stderr}")


@contextlib.contextmanager
def embedded_postgres(root: Path, **server_settings: str) -> Iterator[str]:
    """A server in `root/pg` (new, or the one left there) with room for enough connections and
    any other `server_settings`; yields the admin URL of `bench`."""
    server, admin = start_embedded_postgres(root / "pg")
    asyncio.run(_configure(admin, {"max_connections": str(MAX_CONNECTIONS), **server_settings}))
    server.cleanup()  # the new settings need a restart
    server, admin = start_embedded_postgres(root / "pg")
    try:
        asyncio.run(create_database_if_missing(Settings(database_url=admin), DATABASE))
        yield with_database(admin, DATABASE)
    finally:
        server.cleanup()


async def _configure(admin: str, server_settings: dict[str, str]) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url(Settings(database_url=admin))))
    try:
        for name, value in server_settings.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await connection.close()


def prepare(database_url: str, cwd: Path, bcrypt_rounds: int) -> dict[str, str]:
    """Roles, migrations and the operator; returns the environment the server runs with.

    Commands run in `cwd`, so the default data dir `.tenantry` (dev secrets) lands there:
    `TENANTRY_DATA_DIR` cannot be used, settings reject it (a str is not converted to Path).
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TENANTRY_BCRYPT_ROUNDS": str(bcrypt_rounds),
        "TENANTRY_LOG_LEVEL": "WARNING",
        # Raw throughput of one tenant: its plan's request rate would be the limit measured.
        "TENANTRY_RATE_LIMITS": "false",
    }
    env.pop("TENANTRY_DATA_DIR", None)
    _tenantry(env, cwd, "db", "bootstrap")
    _tenantry(env, cwd, "db", "upgrade")
    email, password = OPERATOR
    _tenantry(env, cwd, "platform-admin", "create", "--email", email, "--password", password)
    return env


def role_settings(database_url: str, data_dir: Path) -> Settings:
    """Settings that reach the database as any of the roles (their dev-secret passwords)."""
    secrets = json.loads((data_dir / "secrets.json").read_text())
    return Settings(
        database_url=database_url,
        db_owner_password=secrets["db_owner_password"],
        db_app_password=secrets["db_app_password"],
        db_platform_password=secrets["db_platform_password"],
    )


def role_dsn(database_url: str, data_dir: Path, role: Role) -> str:
    return asyncpg_dsn(role_url(role_settings(database_url, data_dir), role))


def operator_token(client: httpx.Client) -> str:
    email, password = OPERATOR
    response = client.post("/platform/v1/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.95 for p95)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- builds and their servers -------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
FLOOR_APP = Path(__file__).resolve().parent / "floor_app.py"


def git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Build:
    """One build of the app: its name in the reports, its commit, its environment's Python."""

    name: str  # "current" or "baseline"
    commit: str
    python: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.commit})"


def current_build() -> Build:
    """This tree, as it is (`-dirty`: with uncommitted changes)."""
    return Build("current", git("describe", "--always", "--dirty"), sys.executable)


@contextlib.contextmanager
def baseline_build(ref: str, root: Path) -> Iterator[Build]:
    """`ref` in a detached worktree under `root` with its own locked environment (`uv sync
    --frozen`, no dev tools); the worktree is removed on exit."""
    path = root / "baseline"
    git("worktree", "add", "--detach", str(path), ref)
    try:
        env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
        done = subprocess.run(
            [os.environ.get("UV", "uv"), "sync", "--frozen", "--no-dev"],
            cwd=path,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"uv sync --frozen in the baseline worktree failed:\n{done.stderr}")
        python = str(path / ".venv" / "bin" / "python")
        yield Build("baseline", git("describe", "--always", cwd=path), python)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=REPO, capture_output=True
        )


@dataclass(frozen=True)
class Server:
    """A server running in its own process group (granian: the main process and its workers)."""

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

    def meter(self, root: Path) -> CpuMeter:
        """CPU of this server's group and of the Postgres backends of the cluster in `root`."""
        return CpuMeter(self.process.pid, postmaster_pid(root))


@contextlib.contextmanager
def _serving(
    command: list[str], env: dict[str, str], cwd: Path, port: int, workers: int
) -> Iterator[Server]:
    """`command` (serving on `port`) in its own process group, ready and with its `workers`
    up; stopped (and checked gone) on exit."""
    process = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        wait_http(f"{server.base_url}/health/ready", process)
        deadline = time.monotonic() + 20
        while len(server.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server
    finally:
        stop_group(process)


def server_process(
    env: dict[str, str], cwd: Path, port: int, workers: int, build: Build | None = None
) -> contextlib.AbstractContextManager[Server]:
    """`tenantry serve` of `build` (default: this tree's environment)."""
    python = sys.executable if build is None else build.python
    command = [python, "-m", "tenantry", "serve", "--host", "127.0.0.1"]
    return _serving(
        [*command, "--port", str(port), "--workers", str(workers)], env, cwd, port, workers
    )


def floor_server(
    env: dict[str, str], cwd: Path, port: int, workers: int, dsn: str
) -> contextlib.AbstractContextManager[Server]:
    """The framework floor (floor_app.py) on `dsn`, with the same settings as the app."""
    command = [sys.executable, str(FLOOR_APP), "--port", str(port), "--workers", str(workers)]
    return _serving(command, {**env, "FLOOR_DSN": dsn}, cwd, port, workers)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until `url` answers 200; fails if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    """`sig` to the group leader, then SIGKILL to whatever of its group remains."""
    group = process.pid  # start_new_session: group id == leader pid
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for _ in range(50):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def create_tenant(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        admin_email, admin_password = TENANT_ADMIN
        created = client.post(
            "/platform/v1/tenants",
            headers={"Authorization": f"Bearer {operator_token(client)}"},
            json={
                "slug": SLUG,
                "name": "Bench",
                "admin": {"email": admin_email, "password": admin_password},
            },
        )
        created.raise_for_status()


# --- CPU per request, from /proc -----------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def postmaster_pid(root: Path) -> int:
    """The embedded cluster's postmaster (`embedded_postgres(root)` keeps it in `root/pg`)."""
    return int((root / "pg" / "postmaster.pid").read_text().split()[0])


def _proc_table() -> Iterator[tuple[int, int, int, float]]:
    """(pid, parent pid, process group, utime + stime in seconds) of every process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ... (proc(5); comm may hold spaces and parentheses).
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        yield int(entry.name), int(fields[1]), int(fields[2]), ticks / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    app: dict[int, float]  # pid -> CPU seconds so far
    db: dict[int, float]


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds of one server's process group (`app`) and of every child of the postmaster
    (`db`: the backends, whichever server they serve, and Postgres's own helpers)."""

    group: int
    postmaster: int

    def snapshot(self) -> CpuSnapshot:
        app: dict[int, float] = {}
        db: dict[int, float] = {}
        for pid, parent, group, seconds in _proc_table():
            if group == self.group:
                app[pid] = seconds
            elif parent == self.postmaster:
                db[pid] = seconds
        return CpuSnapshot(app, db)


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots; a process born in between counts whole (one that ended
    in between is lost: the servers' processes and pooled backends outlive a run)."""
    return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())


# --- wrk -------------------------------------------------------------------------------------

_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_ROTATION_LUA = """
local ids = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "%s" .. ids[(i %% #ids) + 1])
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    # CPU milliseconds per completed request over the run (None: not measured).
    app_ms: float | None = None
    db_ms: float | None = None

    def summary(self) -> str:
        cpu = ""
        if self.app_ms is not None and self.db_ms is not None:
            cpu = f", CPU per request app {self.app_ms:.3f} ms, db {self.db_ms:.3f} ms"
        return f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms" + cpu


def rotation_script(path: Path, prefix: str, ids: list[str]) -> Path:
    """A wrk script requesting `prefix` + each of `ids` in turn."""
    path.write_text(_ROTATION_LUA % (", ".join(f'"{i}"' for i in ids), prefix))
    return path


def _wrk_latency(output: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
    return float(match.group(1)) * _WRK_UNITS_MS[match.group(2)]


def wrk(
    url: str,
    *,
    duration: float,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    connections: int = 50,
    threads: int = 2,
    warmup: float = 0.0,
    meter: CpuMeter | None = None,
) -> WrkResult:
    """`wrk -t<threads> -c<connections> --latency --timeout 10s` on `url` (or `script`'s
    requests on its host), after `warmup` seconds of the same unmeasured; any non-2xx or socket
    error is a failure. With `meter`, the CPU of the run per completed request."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    if warmup > 0:
        _wrk_output([*command, f"-d{warmup:g}s", url])
    before = meter.snapshot() if meter else None
    output = _wrk_output([*command, f"-d{duration:g}s", url])
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    if rate is None or done is None:
        raise RuntimeError(f"no Requests/sec or request count in wrk output:\n{output}")
    requests = int(done.group(1))
    result = WrkResult(
        float(rate.group(1)), _wrk_latency(output, "50%"), _wrk_latency(output, "99%"), requests
    )
    if meter is None or before is None:
        return result
    after = meter.snapshot()
    per_request = 1000 / max(1, requests)
    return replace(
        result,
        app_ms=cpu_delta(before.app, after.app) * per_request,
        db_ms=cpu_delta(before.db, after.db) * per_request,
    )


def _wrk_output(command: list[str]) -> str:
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failures:\n{output}")
    return output


# --- rounds and reports ----------------------------------------------------------------------


def add_comparison_options(parser: argparse.ArgumentParser) -> None:
    """`--baseline REF` and `--rounds N`, as every comparing benchmark takes them."""
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="REF",
        help="a git ref to compare with, in the same rounds (default: this tree only)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")


def round_order(sides: list[str], index: int) -> list[str]:
    """The order of one round: as given, then reversed (ABBA over two rounds)."""
    return sides if index % 2 == 0 else sides[::-1]


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of per-round ratios (both sides of a ratio measured in the same round)."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> str:
    """Cores, CPU model, memory and kernel of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    gib = int(memory.group(1)) / 1024 / 1024 if memory else 0.0
    return (
        f"{os.cpu_count()} cores ({model.group(1) if model else 'unknown CPU'}), {gib:.1f} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def run_header(load_before: str, builds: list[Build]) -> str:
    """The command, date, machine, load before and now, and the builds compared."""
    command = " ".join(["uv run python", *sys.argv])
    return "\n".join(
        [
            f"`{command}`",
            "",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {machine()}",
            f"- load average before: {load_before}; after: {loadavg()}",
            "- builds: " + "; ".join(build.label for build in builds),
        ]
    )


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])
