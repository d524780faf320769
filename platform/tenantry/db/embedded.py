"""The embedded Postgres (pgserver) used by `tenantry dev`, the admin commands and the tests.

It lives under the data dir, survives restarts (the data is reused) and stops when the last
process using it exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
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


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _pgdata(data_dir: Path) -> Path:
    return data_dir.resolve() / "postgres"


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
