"""The benchmark's own environment: embedded Postgres, the production server, one tenant.

Everything lives in a temporary directory and is stopped on exit: the server process group
first, Postgres after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

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


@dataclass(frozen=True)
class Target:
    """A running server with one tenant, and what a client needs to talk to it."""

    base_url: str
    env: dict[str, str]
    app_dsn: str  # tenantry_app's connection, for the raw asyncpg comparison
    host_header: str = f"{SLUG}.localhost"


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


@contextlib.contextmanager
def server_process(env: dict[str, str], cwd: Path, port: int, workers: int) -> Iterator[str]:
    """`tenantry serve` in its own process group; stopped (and checked gone) on exit."""
    command = [sys.executable, "-m", "tenantry", "serve", "--host", "127.0.0.1", "--port"]
    process = subprocess.Popen(
        [*command, str(port), "--workers", str(workers)],
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process)
        yield base_url
    finally:
        stop_group(process)


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("server not ready in time")


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


@contextlib.contextmanager
def running_target(*, bcrypt_rounds: int, workers: int) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # pgserver runs Postgres as its own user when we are root
        with embedded_postgres(root) as database_url:
            env = prepare(database_url, root, bcrypt_rounds)
            with server_process(env, root, free_port(), workers) as base_url:
                create_tenant(base_url)
                yield Target(base_url, env, role_dsn(database_url, root / ".tenantry", "app"))
