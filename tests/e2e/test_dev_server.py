"""The real thing: `tenantry dev` as a process, over real HTTP, stopped by a signal."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tenantry.config import DEV_PLATFORM_ADMIN_EMAIL, DEV_PLATFORM_ADMIN_PASSWORD
from tests.e2e.dev_server import DevServer, postmaster_running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _unknown_host_flood_keeps_memory_bounded(server: DevServer) -> None:
    """5,000 requests with distinct unknown hosts leave the worker within a few MiB."""

    async def flood(prefix: str, count: int) -> set[int]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:
            gate = asyncio.Semaphore(16)

            async def one(n: int) -> int:
                async with gate:
                    host = {"Host": f"{prefix}-{n}.localhost"}
                    return (await http.get("/api/v1/branding", headers=host)).status_code

            return set(await asyncio.gather(*(one(n) for n in range(count))))

    worker = psutil.Process(server.process.pid)
    assert asyncio.run(flood("warmup", 1000)) == {404}
    before = worker.memory_info().rss
    assert asyncio.run(flood("flood", 5000)) == {404}
    grown = worker.memory_info().rss - before
    assert grown < 6 * 1024 * 1024, f"worker RSS grew by {grown / 2**20:.1f} MiB"


def _logins_reported(http: httpx.Client, token: str) -> None:
    headers = {"Host": "e2e.localhost", "Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 20
    while True:
        report = http.get("/api/v1/usage", headers=headers)
        assert report.status_code == 200, report.text
        if report.json()["totals"]["logins"] == 1:
            return
        assert time.monotonic() < deadline, report.text
        time.sleep(0.2)


def test_dev_server_provisions_logs_in_and_stops_cleanly(
    data_dir: Path, project_root: Path
) -> None:
    server = DevServer(data_dir, project_root)
    try:
        assert postmaster_running(data_dir)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            assert http.get("/health/ready").json()["status"] == "ok"
            operator = http.post(
                "/platform/v1/auth/login",
                json={"email": DEV_PLATFORM_ADMIN_EMAIL, "password": DEV_PLATFORM_ADMIN_PASSWORD},
            ).json()["access_token"]
            created = http.post(
                "/platform/v1/tenants",
                json={
                    "slug": "e2e",
                    "name": "E2E",
                    "admin": {"email": "owner@e2e.example", "password": "e2e-password"},
                },
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert created.status_code == 201, created.text
            login = http.post(
                "/api/v1/auth/login",
                json={"email": "owner@e2e.example", "password": "e2e-password"},
                headers={"Host": "e2e.localhost"},
            )
            assert login.status_code == 200, login.text
            me = http.get(
                "/api/v1/auth/me",
                headers={
                    "Host": "e2e.localhost",
                    "Authorization": f"Bearer {login.json()['access_token']}",
                },
            )
            assert me.json()["tenant"]["slug"] == "e2e"
            # The server's own rollup job counts the login within seconds.
            _logins_reported(http, login.json()["access_token"])
            # Invitations go to the dev mail sink: shown in the output, kept under the data dir.
            invited = http.post(
                "/api/v1/admin/users",
                json={"email": "new@e2e.example", "role": "viewer"},
                headers={
                    "Host": "e2e.localhost",
                    "Authorization": f"Bearer {login.json()['access_token']}",
                },
            )
            assert invited.status_code == 201, invited.text
            assert invited.json()["invitation"]["mailed"] is True
            kept = list((data_dir / "mail").glob("*.eml"))
            assert len(kept) == 1 and b"new@e2e.example" in kept[0].read_bytes()
            # The demo tenants from tenants/ are there too, under their own brands.
            assert (
                http.get("/api/v1/branding", headers={"Host": "pack.localhost"}).json()["name"]
                == "Pack"
            )
    finally:
        code = server.stop()
    assert code == 0, "".join(server.output[-40:])
    assert not postmaster_running(data_dir), "embedded Postgres left running"

    # A second start reuses the same database: the tenant is still there.
    again = DevServer(data_dir, project_root)
    try:
        response = httpx.get(
            f"{again.base_url}/api/v1/branding", headers={"Host": "e2e.localhost"}, timeout=30
        )
        assert response.status_code == 200
        assert response.json()["slug"] == "e2e"
        _unknown_host_flood_keeps_memory_bounded(again)
    finally:
        assert again.stop() == 0
    assert not postmaster_running(data_dir)


def test_dev_in_json_mode_writes_nothing_but_json(data_dir: Path, project_root: Path) -> None:
    """Every line of the run is a JSON object: ours, alembic's, uvicorn's, the embedded
    Postgres's own (from its log file), the welcome and the stop."""
    server = DevServer(data_dir, project_root, TENANTRY_LOG_FORMAT="json")
    try:
        missing = httpx.get(f"{server.base_url}/no/such/route", timeout=30)
        assert missing.status_code == 404
    finally:
        assert server.stop() == 0
    entries = []
    for line in server.output:
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    loggers = {entry.get("logger") for entry in entries}
    assert {"postgres", "alembic.runtime.migration", "uvicorn.error"} <= loggers, loggers
    assert any(
        entry.get("event") == "request"
        and entry.get("request_id") == missing.headers["x-request-id"]
        for entry in entries
    )
    assert entries[-1]["event"] == "stopped"
    assert any(entry["event"] == "database system is shut down" for entry in entries)
