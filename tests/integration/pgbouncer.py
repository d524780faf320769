"""A real PgBouncer (Debian's `pgbouncer`, 1.18 here) in transaction mode in front of the suite's
Postgres, on a free 127.0.0.1 port, for as long as a block runs. docs/pgbouncer.md explains
each setting; these are the same but for the pool size (one server connection by default, so
every client's transactions interleave on it) and the paths.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tenantry.config import Settings
from tenantry.db.engines import ROLE_NAMES, admin_url
from tests.integration.live import free_port

START_SECONDS = 10.0


def pgbouncer_binary() -> str:
    """The binary, or the test fails (not skips): CI installs it (.ci/run)."""
    # Debian puts it in /usr/sbin, which an unprivileged PATH may not have.
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "the pgbouncer binary is missing: install it (Debian: apt-get install pgbouncer; "
            ".ci/run does)",
            pytrace=False,
        )
    return found


def _ini(settings: Settings, directory: Path, port: int, pool_size: int) -> str:
    server = admin_url(settings)
    # The embedded Postgres listens on a unix socket only: its directory is the URL's `host=`.
    socket_host = server.query.get("host")
    host = socket_host if isinstance(socket_host, str) else str(server.host)
    lines = [
        "[databases]",
        f"* = host={host} port={server.port or 5432}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 500",
        "auth_type = scram-sha-256",
        f"auth_file = {directory / 'userlist.txt'}",
        "logfile =",
        "pidfile =",
    ]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: it becomes the user that may open the socket.
        owner = Path(host).stat().st_uid if host.startswith("/") else None
        lines.append(f"user = {pwd.getpwuid(owner).pw_name if owner else 'nobody'}")
    return "\n".join(lines) + "\n"


def _userlist(settings: Settings) -> str:
    """The pooled roles with their passwords (in clear here, so PgBouncer can log in to
    Postgres with them whatever its auth method; production lists SCRAM secrets)."""
    return "".join(
        f'"{ROLE_NAMES[role]}" "{getattr(settings, f"db_{role}_password")}"\n'
        for role in ("app", "platform")
    )


@contextmanager
def run_pgbouncer(settings: Settings, directory: Path, *, pool_size: int = 1) -> Iterator[str]:
    """PgBouncer for `settings`' database until the block ends; yields its URL for
    `TENANTRY_DB_POOLER_URL` (host and port: the database and roles are the settings')."""
    binary = pgbouncer_binary()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # readable by the user PgBouncer turns into
    port = free_port()
    (directory / "userlist.txt").write_text(_userlist(settings))
    (directory / "pgbouncer.ini").write_text(_ini(settings, directory, port, pool_size))
    log = (directory / "pgbouncer.log").open("wb")
    process = subprocess.Popen(
        [binary, str(directory / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(process, port, directory / "pgbouncer.log")
        yield f"postgresql://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited ({process.returncode}):\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not listen:\n{log.read_text()}") from None
            time.sleep(0.05)
        else:
            return
