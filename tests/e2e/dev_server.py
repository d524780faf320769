"""`tenantry` as real processes for the end-to-end tests: commands run as a user runs them, and
`tenantry dev` started on a free port with its own data dir, ready when it logs `ready on`,
stopped by SIGTERM like a user's Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

START_TIMEOUT = 180
TENANTRY = [sys.executable, "-m", "tenantry"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_env(**settings: str) -> dict[str, str]:
    """This environment without its database or Tenantry settings, plus `settings`; bcrypt at
    its cheapest (the flows, not bcrypt's cost, are under test here)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_") and k != "DATABASE_URL"
    }
    return {**env, "TENANTRY_BCRYPT_ROUNDS": "4", **settings}


def run_tenantry(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TENANTRY, *args],
        cwd=cwd,
        env=env or user_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class DevServer:
    def __init__(self, data_dir: Path, project_root: Path, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*TENANTRY, "dev", "--port", str(self.port), "--data-dir", str(data_dir)],
            cwd=project_root,
            env=user_env(**settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT):
            self.process.kill()
            pytest.fail("dev server did not print 'ready on':\n" + "".join(self.output[-40:]))

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if f"ready on http://127.0.0.1:{self.port}" in line:  # a plain line, or a JSON one
                self._ready.set()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
