"""The embedded Postgres (pgserver) used by `tenantry dev` and the tests.

It lives under the data dir, survives restarts (the data is reused) and stops when the last
process using it exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

DATABASE_NAME = "tenantry"


def start_embedded_postgres(pgdata: Path) -> tuple[Any, str]:
    """Start (or attach to) the server in `pgdata`; returns the handle and its admin URL."""
    import pgserver  # imported lazily: production never needs the bundled binaries

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return server, str(server.get_uri())


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)
