"""Resumable uploads (tus 1.0.0) against the real app under uvicorn, with the real tus client
(tuspy): interrupted (a client stopped after some chunks, a PATCH cut off mid-body) and resumed
by new clients from the server's offset, byte-identical, counted once; offsets that do not
match are 409; a bad type is refused at the first PATCH, leaving nothing; expired uploads are
the reconciler's and give their quota back; another tenant's upload URL is 404."""

from __future__ import annotations

import asyncio
import hashlib
import io
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from litestar import Litestar
from tusclient import client as tus

from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tenantry.files.reconcile import Reconciler
from tests.integration.files_support import CORPUS, pdf_of_size
from tests.integration.live import LiveTenant, operator_token, provision, serve

MiB = 1024 * 1024
PNG = (CORPUS / "image.png").read_bytes()
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def live(app: Litestar, settings: Settings) -> Iterator[tuple[str, LiveTenant, LiveTenant]]:
    with serve(app) as base_url:
        operator = operator_token(settings, base_url)
        yield (
            base_url,
            provision(base_url, operator, "tusacme"),
            provision(base_url, operator, "tusglobex"),
        )


def auth(tenant: LiveTenant) -> dict[str, str]:
    # The shared host: the token names the tenant, and Location points back at this server.
    return {"Authorization": f"Bearer {tenant.owner_token}"}


def uploader(base_url: str, tenant: LiveTenant, content: bytes, **options: Any) -> Any:
    client = tus.TusClient(f"{base_url}/api/v1/uploads/tus", headers=auth(tenant))
    return client.uploader(file_stream=io.BytesIO(content), chunk_size=256 * 1024, **options)


def create(base_url: str, tenant: LiveTenant, length: int, filetype: str) -> str:
    metadata = "title VHVz,filename YS5wZGY=,filetype " + _b64(filetype)
    response = httpx.post(
        f"{base_url}/api/v1/uploads/tus",
        headers={**auth(tenant), **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata},
    )
    assert response.status_code == 201, response.text
    return response.headers["location"]


def _b64(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode()


def patch(url: str, tenant: LiveTenant, offset: int, body: bytes) -> httpx.Response:
    return httpx.patch(
        url,
        content=body,
        headers={
            **auth(tenant),
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def offset_of(url: str, tenant: LiveTenant) -> httpx.Response:
    return httpx.head(url, headers={**auth(tenant), **TUS})


def cut_patch(url: str, tenant: LiveTenant, offset: int, body: bytes, declared: int) -> None:
    """A PATCH announcing `declared` bytes whose connection is closed after `body`."""
    split = urlsplit(url)
    request = (
        f"PATCH {split.path} HTTP/1.1\r\nHost: {split.netloc}\r\n"
        f"Authorization: Bearer {tenant.owner_token}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection((split.hostname, split.port)) as sock:
        sock.sendall(request + body)


async def counters(platform: asyncpg.Connection, tenant: LiveTenant) -> tuple[int, int, int]:
    row = await platform.fetchrow(
        "SELECT storage_bytes, reserved_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
        uuid.UUID(tenant.id),
    )
    return row["storage_bytes"], row["reserved_bytes"], row["file_count"]


async def settle(url: str, tenant: LiveTenant, expected: int) -> None:
    """The server notices a cut connection on its own time: wait for its offset."""
    for _ in range(100):
        response = await asyncio.to_thread(offset_of, url, tenant)
        if int(response.headers["upload-offset"]) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"offset {response.headers['upload-offset']}, expected {expected}")


async def test_an_interrupted_upload_resumes_byte_identical_and_counted_once(
    live: tuple[str, LiveTenant, LiveTenant], platform_connection: asyncpg.Connection
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    content = pdf_of_size(3 * MiB + 12345)
    options = await asyncio.to_thread(
        lambda: httpx.options(f"{base_url}/api/v1/uploads/tus", headers=auth(acme))
    )
    assert options.status_code == 204, options.headers
    assert options.headers.get("tus-version") == "1.0.0", options.headers
    assert "creation" in options.headers["tus-extension"].split(",")
    assert int(options.headers["tus-max-size"]) > len(content)

    # A first client sends four chunks (checksummed) and stops.
    first = uploader(
        base_url,
        acme,
        content,
        metadata={"title": "Resumed", "filename": "r.pdf"},
        upload_checksum=True,
    )
    await asyncio.to_thread(first.upload, stop_at=MiB)
    url = first.url
    assert first.offset == MiB
    assert await counters(platform_connection, acme) == (before[0], len(content), before[2])

    # An offset that is not the server's is 409, and changes nothing.
    wrong = await asyncio.to_thread(patch, url, acme, 0, content[:1000])
    assert wrong.status_code == 409, wrong.text
    assert wrong.json()["code"] == "upload_offset_mismatch"
    assert wrong.headers["tus-resumable"] == "1.0.0"

    # A PATCH cut off mid-body: what arrived is kept, the offset says so.
    await asyncio.to_thread(cut_patch, url, acme, MiB, content[MiB : MiB + 300_000], 600_000)
    await settle(url, acme, MiB + 300_000)

    # A new client resumes from the server's offset.
    second = uploader(base_url, acme, content, url=url)
    assert second.offset == MiB + 300_000
    await asyncio.to_thread(second.upload)
    head = await asyncio.to_thread(offset_of, url, acme)
    assert head.headers["upload-offset"] == head.headers["upload-length"] == str(len(content))

    files = httpx.get(f"{base_url}/api/v1/files", params={"q": "Resumed"}, headers=auth(acme))
    [file] = files.json()["items"]
    assert file["size"] == len(content)
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert file["content_type"] == "application/pdf"
    link = httpx.get(f"{base_url}/api/v1/files/{file['id']}/download", headers=auth(acme))
    assert httpx.get(link.json()["url"]).content == content
    assert await counters(platform_connection, acme) == (
        before[0] + len(content),
        0,
        before[2] + 1,
    )
    events = await platform_connection.fetchval(
        "SELECT count(*) FROM usage_events WHERE kind = 'upload' AND file_id = $1",
        uuid.UUID(file["id"]),
    )
    assert events == 1


async def test_a_bad_type_is_refused_at_the_first_patch_and_leaves_nothing(
    live: tuple[str, LiveTenant, LiveTenant], platform_connection: asyncpg.Connection, app: Litestar
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    body = PNG + b"\0" * (8192 - len(PNG) % 8192)
    url = await asyncio.to_thread(create, base_url, acme, len(body) * 4, "application/pdf")
    refused = await asyncio.to_thread(patch, url, acme, 0, body)
    assert refused.status_code == 415, refused.text
    assert refused.json()["code"] == "content_type_mismatch"
    assert await counters(platform_connection, acme) == before
    gone = await asyncio.to_thread(offset_of, url, acme)
    assert gone.status_code == 404
    tid = uuid.UUID(acme.id)
    assert (
        await platform_connection.fetchval(
            "SELECT count(*) FROM upload_sessions WHERE tenant_id = $1", tid
        )
        == 0
    )
    assert (
        await platform_connection.fetchval(
            "SELECT count(*) FROM files WHERE tenant_id = $1 AND status <> 'ready'", tid
        )
        == 0
    )
    store = app.state.services.store
    assert not list(store._multipart.glob(f"tenants/{acme.id}/**/staged"))


async def test_expired_uploads_are_reconciled_and_release_their_quota(
    live: tuple[str, LiveTenant, LiveTenant],
    platform_connection: asyncpg.Connection,
    app: Litestar,
    settings: Settings,
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    content = pdf_of_size(MiB)
    url = await asyncio.to_thread(create, base_url, acme, len(content), "application/pdf")
    sent = await asyncio.to_thread(patch, url, acme, 0, content[:100_000])
    assert sent.status_code == 204, sent.text
    assert sent.headers["upload-offset"] == "100000"
    assert "GMT" in sent.headers["upload-expires"]
    await platform_connection.execute(
        "UPDATE upload_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(url.rsplit("/", 1)[1]),
    )
    expired = await asyncio.to_thread(offset_of, url, acme)
    assert expired.status_code == 410
    config = platform_db_config(settings)
    try:
        reconciler = Reconciler(
            config, app.state.services.store, pending_timeout=timedelta(hours=1)
        )
        report = await reconciler.run_once()
    finally:
        await config.get_engine().dispose()
    assert report is not None and report.abandoned_uploads_aborted == 1
    assert await counters(platform_connection, acme) == before
    assert (await asyncio.to_thread(offset_of, url, acme)).status_code == 404
    assert not list(app.state.services.store._multipart.glob(f"tenants/{acme.id}/**/staged"))


async def test_another_tenants_upload_url_is_404(live: tuple[str, LiveTenant, LiveTenant]) -> None:
    base_url, acme, globex = live
    url = await asyncio.to_thread(create, base_url, acme, 10_000, "application/pdf")
    for response in (
        await asyncio.to_thread(offset_of, url, globex),
        await asyncio.to_thread(patch, url, globex, 0, b"%PDF-"),
        await asyncio.to_thread(lambda: httpx.delete(url, headers={**auth(globex), **TUS})),
    ):
        assert response.status_code == 404, response.text
    assert (await asyncio.to_thread(offset_of, url, acme)).headers["upload-offset"] == "0"
