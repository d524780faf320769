"""`tenantry dev` as a real process for the end-to-end tests: started on a free port with its own
data dir, ready when it logs `ready on`, stopped by SIGTERM like a user's Ctrl-C."""

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    def __init__(self, data_dir: Path, project_root: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TENANTRY_") and k != "DATABASE_URL"
        }
        env["TENANTRY_BCRYPT_ROUNDS"] = "4"  # the flows, not bcrypt's cost, are under test here
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenantry",
                "dev",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=project_root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT):
            self.process.kill()
            pytest.fail("dev server did not print 'ready on':\n" + "".join(self.output[-40:]))

    def _read_output(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            if line.startswith(f"ready on http://127.0.0.1:{self.port}"):
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
