"""Review findings on 2ce128d..main: each test fails while its defect is present."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import Api
from tests.integration.files_support import PDF, file_rows, stored_keys

# -- 1. ReDoS in the Host check (tenantry/lib/http.py `_HOST`) ----------------------------------
# `(label\.?)+` with an optional dot lets a run of letters split into labels in exponentially many
# ways; a host that fails at its last character (e.g. ends in "-") backtracks through all of them.
# The length cap (253) comes first but is no help: 40 characters already take hours.


def test_host_validation_is_linear_time() -> None:
    code = "from tenantry.lib.http import is_valid_host; is_valid_host('a' * 40 + '-')"
    try:
        subprocess.run([sys.executable, "-c", code], timeout=5, check=True)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("is_valid_host('a'*40 + '-') runs for more than 5 s") from exc


async def test_a_crafted_host_header_does_not_stall_the_event_loop(
    client: AsyncTestClient[Litestar],
) -> None:
    # 26 letters: ~2.5 s of CPU on the event loop for one unauthenticated request (each two more
    # letters multiply it by four). Any tenant-zone route will do.
    started = time.perf_counter()
    response = await client.get("/api/v1/files", headers={"Host": "a" * 26 + "-"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 400
    assert elapsed < 0.5, f"one request with a 27-byte Host header took {elapsed:.1f} s"


# -- 2. Upload racing offboarding leaves a ready file (and its object) in a deleted tenant -----
# The tenant is resolved (active) when the request starts; the row is inserted only once the
# multipart fields are read. If offboarding commits in between, nothing checks the tenant again:
# `_insert`, `reserve_storage` and `lock` all succeed, the file is `ready`, the counters count
# it, and the object is written after `delete_prefix` already ran.


async def _asgi_upload_paused_before_file_part(
    app: Litestar, host: str, token: str, proceed: threading.Event, paused: threading.Event
) -> tuple[int, bytes]:
    boundary = "reviewboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nRace\r\n'
    ).encode()
    rest = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [head, rest]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/files",
        "raw_path": b"/api/v1/files",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", host.encode()),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(head) + len(rest)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status: list[int] = []
    body = bytearray()

    async def receive() -> dict[str, Any]:
        if len(chunks) == 1:
            paused.set()
            while not proceed.is_set():
                await asyncio.sleep(0.01)
        if not chunks:
            await asyncio.sleep(3600)
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status[0], bytes(body)


async def test_upload_racing_offboarding_leaves_nothing_behind(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    token = (await api.token(acme))["Authorization"].removeprefix("Bearer ")
    proceed, paused = threading.Event(), threading.Event()
    # The test client runs the app on its portal's loop; the paused request must run there too.
    portal = api.client.blocking_portal
    upload = portal.start_task_soon(
        _asgi_upload_paused_before_file_part, app, acme.host, token, proceed, paused
    )
    assert await asyncio.to_thread(paused.wait, 10)  # tenant resolved, fields being read
    offboard = await api.client.delete(f"/platform/v1/tenants/{acme.id}", headers=api.operator)
    assert offboard.status_code == 204, offboard.text
    proceed.set()
    status, body = await asyncio.to_thread(upload.result, 30)
    rows = await file_rows(platform_connection, acme.id)
    keys = await stored_keys(app, acme.id)
    usage = await platform_connection.fetchrow(
        "SELECT storage_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
        uuid.UUID(acme.id),
    )
    assert (rows, keys) == ([], []), (
        f"upload answered {status} {body[:80]!r}; the offboarded tenant still has rows {rows}, "
        f"objects {keys}, usage {dict(usage)}"
    )
