"""The embedded Postgres (pgserver) used by `tenantry dev`, the admin commands and the tests.

It lives under the data dir, survives restarts (the data is reused) and stops when the last
process using it exits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import structlog
from sqlalchemy.engine import make_url

from tenantry.config import Settings
from tenantry.db.bootstrap import create_database_if_missing

DATABASE_NAME = "tenantry"


def start_embedded_postgres(pgdata: Path) -> tuple[Any, str]:
    """Start (or attach to) the server in `pgdata`; returns the handle and its admin URL."""
    import pgserver  # imported lazily: production never needs the bundled binaries

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return server, str(server.get_uri())


# `pg_ctl -l` lines: "2026-12-01 14:14:48.305 UTC [16001] LOG:  database system is ready ..."
_SERVER_LINE = re.compile(r"(\S+ \S+ \S+) \[(\d+)\] ([A-Z]+[0-9]?):  ?(.*)")
_SEVERITY_LEVELS = {
    "LOG": logging.INFO,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "PANIC": logging.CRITICAL,
}
_FOLLOW_INTERVAL_SECONDS = 0.2


class ServerLogFollower:
    """The embedded server's own log (a file: pg_ctl writes it) as lines of our log, so dev's
    one stream carries them, JSON included, from where the file ends at start."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="postgres-log", daemon=True)
        self._log = structlog.get_logger("postgres")

    def start(self) -> None:
        self._offset = self._path.stat().st_size if self._path.exists() else 0
        self._thread.start()

    def stop(self) -> None:
        """Stops after the lines written so far (those of a server that just stopped too)."""
        self._stopping.set()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            if self._path.exists():
                with self._path.open("rb") as log:
                    log.seek(self._offset)
                    for line in iter(log.readline, b""):
                        if not line.endswith(b"\n"):
                            break  # a line still being written: read it whole next time
                        self._offset += len(line)
                        self._emit(line.decode(errors="replace").rstrip("\n"))
            if stopping:
                return
            self._stopping.wait(_FOLLOW_INTERVAL_SECONDS)

    def _emit(self, line: str) -> None:
        match = _SERVER_LINE.fullmatch(line)
        if match is None:  # a continuation (a statement, a detail) or a foreign line
            self._log.info(line, logger="postgres")
            return
        _, pid, severity, message = match.groups()
        level = _SEVERITY_LEVELS.get(severity, logging.DEBUG)
        self._log.log(level, message, logger="postgres", pid=int(pid), severity=severity)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _pgdata(data_dir: Path) -> Path:
    return data_dir.resolve() / "postgres"


def server_log(data_dir: Path) -> Path:
    """Where the embedded server writes its own log (pgserver's `pg_ctl -l`)."""
    return _pgdata(data_dir) / "log"


def has_embedded_postgres(data_dir: Path) -> bool:
    """Whether `tenantry dev` has made its Postgres under `data_dir` (running or not)."""
    return (_pgdata(data_dir) / "PG_VERSION").is_file()


@contextmanager
def embedded_database(settings: Settings) -> Iterator[Settings]:
    """`settings` with the admin URL of the embedded Postgres under the data dir, its database
    created if missing. The server is started, or attached to while another process (a running
    `tenantry dev`) holds it; on exit it stops unless that other process still does."""
    server, admin = start_embedded_postgres(_pgdata(settings.data_dir))
    try:
        asyncio.run(
            create_database_if_missing(
                msgspec.structs.replace(settings, database_url=admin), DATABASE_NAME
            )
        )
        yield msgspec.structs.replace(settings, database_url=with_database(admin, DATABASE_NAME))
    finally:
        server.cleanup()
