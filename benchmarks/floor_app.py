"""The framework floor: a bare Litestar app doing one asyncpg query per request.

    FLOOR_DSN=postgresql://... python benchmarks/floor_app.py --port 8100 [--workers 2]

What the app's hot reads would cost with nothing of the app around them: no auth, no tenant
resolution, no middleware, no RLS setting, no transaction; one query per request on a pool sized
like the app's read pool, a msgspec Struct as the response. Served with the granian options of
`tenantry serve` (platform/tenantry/server.py: workers, backlog, interface, HTTP/1 settings,
default loop), read from the same settings, so the ratio of an app route to its floor says how
much of the framework's limit the app leaves on the table.

Routes: `GET /floor/{tenant_id}/files/{file_id}` (the one-file read's query) and
`GET /floor/{tenant_id}/users/{user_id}` (the `/auth/me` query); `GET /health/ready` for the
harness. The tenant id is in the path because both tables' primary key starts with it: a query
by id alone would be a sequential scan, not the lookup the app does.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from granian.log import LogLevels
from granian.server.mp import MPServer
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

from tenantry.config import load_settings
from tenantry.server import granian_options

DSN_VARIABLE = "FLOOR_DSN"
# The one-file read's query (tenantry.files.repository: FILE_COLUMNS, ready files only).
FILE_SQL = """
SELECT files.id, files.title, files.description, files.category_id, files.language,
       (SELECT coalesce(array_agg(file_audiences.audience_id), '{}'::uuid[])
        FROM file_audiences WHERE file_audiences.tenant_id = files.tenant_id
          AND file_audiences.file_id = files.id) AS audiences,
       files.content_type, files.size, files.sha256, files.original_filename, files.status,
       files.uploaded_by, files.created_at, files.updated_at
FROM files WHERE files.tenant_id = $1 AND files.id = $2 AND files.status = 'ready'
"""
# The `/auth/me` query (tenantry.auth.services: _ME).
USER_SQL = """
SELECT id, email, role, display_name FROM users
WHERE tenant_id = $1 AND id = $2 AND NOT disabled
"""


class FileBody(msgspec.Struct):
    id: uuid.UUID
    title: str
    description: str
    category_id: uuid.UUID | None
    language: str | None
    audiences: list[uuid.UUID]
    content_type: str | None
    size: int
    sha256: str | None
    original_filename: str
    status: str
    uploaded_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class UserBody(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str
    display_name: str | None


async def _keep_session(connection: asyncpg.Connection) -> None:
    """No reset round trip on release, as the app's read pool (tenantry.db.reads)."""


def _pool(state: State) -> asyncpg.Pool:
    pool: asyncpg.Pool = state.pool
    return pool


async def _one_row(state: State, sql: str, *args: uuid.UUID) -> dict[str, Any]:
    row = await _pool(state).fetchrow(sql, *args)
    if row is None:
        raise NotFoundException()
    return dict(row)


@get("/floor/{tenant_id:uuid}/files/{file_id:uuid}")
async def one_file(state: State, tenant_id: uuid.UUID, file_id: uuid.UUID) -> FileBody:
    return FileBody(**await _one_row(state, FILE_SQL, tenant_id, file_id))


@get("/floor/{tenant_id:uuid}/users/{user_id:uuid}")
async def one_user(state: State, tenant_id: uuid.UUID, user_id: uuid.UUID) -> UserBody:
    return UserBody(**await _one_row(state, USER_SQL, tenant_id, user_id))


@get("/health/ready")
async def ready(state: State) -> dict[str, str]:
    await _pool(state).fetchval("SELECT 1")
    return {"status": "ready"}


def create_app() -> Litestar:
    dsn = os.environ[DSN_VARIABLE]
    pool_size = load_settings().db_read_pool_size

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=0, max_size=pool_size, reset=_keep_session
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    return Litestar([one_file, one_user, ready], lifespan=[lifespan], openapi_config=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None, help="default: as tenantry serve")
    args = parser.parse_args()
    settings = load_settings()
    # tenantry serve's options, without its drain and its log config.
    MPServer(
        "floor_app:create_app",
        address=args.host,
        port=args.port,
        workers=args.workers or settings.server_workers,
        log_level=LogLevels.warning,
        working_dir=Path(__file__).resolve().parent,
        **granian_options(settings),
    ).serve()


if __name__ == "__main__":
    main()
