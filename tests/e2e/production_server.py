"""`tenantry serve` as operators run it, for the e2e tests: production settings, two granian
worker processes on the suite's database, its whole log in a file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tests.integration.live import free_port

WORKERS = 2
DRAIN_SECONDS = 2.0
GRACE_SECONDS = 20.0
BASE_DOMAIN = "tenantry.test"


class ProductionServer:
    def __init__(
        self, settings: Settings, root: Path, project_root: Path, **overrides: str
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            {
                "TENANTRY_ENV": "production",
                "DATABASE_URL": str(settings.database_url),
                "TENANTRY_DB_OWNER_PASSWORD": settings.db_owner_password,
                "TENANTRY_DB_APP_PASSWORD": settings.db_app_password,
                "TENANTRY_DB_PLATFORM_PASSWORD": settings.db_platform_password,
                "TENANTRY_JWT_SECRET": settings.jwt_secret,
                "TENANTRY_BASE_DOMAIN": BASE_DOMAIN,
                "TENANTRY_DATA_DIR": str(root / "data"),
                "TENANTRY_RUNTIME_DIR": str(root / "run"),
                "TENANTRY_SERVER_HOST": "127.0.0.1",
                "TENANTRY_SERVER_PORT": str(self.port),
                "TENANTRY_SERVER_WORKERS": str(WORKERS),
                "TENANTRY_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
                "TENANTRY_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
                "TENANTRY_METRICS_TENANTS": "alpha",
                "TENANTRY_BCRYPT_ROUNDS": "4",
                "TENANTRY_RECONCILE_INTERVAL_SECONDS": "0",
                **overrides,
            }
        )
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tenantry", "serve"],
            cwd=project_root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so close() can reach every worker
        )
        deadline = time.monotonic() + 120
        while not self._every_worker_ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail("the server did not get ready:\n" + self.log_path.read_text()[-4000:])
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _every_worker_ready(self) -> bool:
        """Every worker has answered a readiness probe: a new connection goes to whichever
        worker accepts first, and one still starting takes none (tests that need both would
        see one)."""
        if not self._ready():
            return False
        pids = set()
        for line in self.lines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "request" and entry.get("route") == "/health/ready":
                    pids.add(entry.get("pid"))
        return len(pids) >= WORKERS

    def lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def access_line(self, request_id: str) -> dict[str, Any]:
        # Written once the response has gone: the client may read it a moment before.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in self.lines():
                if request_id in line:
                    entry: dict[str, Any] = json.loads(line)
                    if entry.get("event") == "request" and entry["request_id"] == request_id:
                        return entry
            time.sleep(0.05)
        raise AssertionError(f"no access line for request {request_id}")

    def close(self) -> None:
        """A graceful stop, then the whole group killed: no worker may outlive the test."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=GRACE_SECONDS + DRAIN_SECONDS + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
