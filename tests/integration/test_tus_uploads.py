"""Resumable uploads (tus 1.0.0) against the real app under uvicorn, with the real tus client
(tuspy), on the local store and on S3 (moto, 5 MiB parts, so uploads cross part boundaries):
interrupted (a client stopped after some chunks, a PATCH cut off mid-body, checksummed bodies
cut off or refused after filling parts) and resumed by new clients from the server's offset,
byte-identical, counted once; offsets that do not match are 409; a bad type is refused at the
first PATCH, leaving nothing; terminated and expired uploads give their quota back and leave no
staged bytes; another tenant's upload URL is 404."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from litestar import Litestar
from tusclient import client as tus

from tenantry.config import Settings
from tenantry.storage import LocalStore, S3Store, file_key, staging_owner
from tenantry.storage.keys import staging_key
from tests.integration.conftest import ON_EACH_STORE
from tests.integration.files_support import CORPUS, pdf_of_size, reconcile
from tests.integration.live import LiveTenant, operator_token, provision, serve

pytestmark = ON_EACH_STORE

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


def uploader(
    base_url: str, tenant: LiveTenant, content: bytes, chunk_size: int = 256 * 1024, **options: Any
) -> Any:
    client = tus.TusClient(f"{base_url}/api/v1/uploads/tus", headers=auth(tenant))
    return client.uploader(file_stream=io.BytesIO(content), chunk_size=chunk_size, **options)


def create(base_url: str, tenant: LiveTenant, length: int, filetype: str) -> str:
    metadata = "title VHVz,filename YS5wZGY=,filetype " + _b64(filetype)
    response = httpx.post(
        f"{base_url}/api/v1/uploads/tus",
        headers={**auth(tenant), **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata},
    )
    assert response.status_code == 201, response.text
    return response.headers["location"]


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def sha1_checksum(body: bytes) -> dict[str, str]:
    digest = hashlib.sha1(body, usedforsecurity=False).digest()
    return {"Upload-Checksum": f"sha1 {base64.b64encode(digest).decode()}"}


def patch(url: str, tenant: LiveTenant, offset: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.patch(
        url,
        content=body,
        headers={
            **auth(tenant),
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
        timeout=60,
    )


def offset_of(url: str, tenant: LiveTenant) -> httpx.Response:
    return httpx.head(url, headers={**auth(tenant), **TUS})


def cut_patch(
    url: str, tenant: LiveTenant, offset: int, body: bytes, declared: int, **headers: str
) -> None:
    """A PATCH announcing `declared` bytes whose connection is closed after `body`."""
    split = urlsplit(url)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"PATCH {split.path} HTTP/1.1\r\nHost: {split.netloc}\r\n"
        f"Authorization: Bearer {tenant.owner_token}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {declared}\r\n{extra}\r\n"
    ).encode()
    with socket.create_connection((split.hostname, split.port)) as sock:
        sock.sendall(request + body)


async def counters(platform: asyncpg.Connection, tenant: LiveTenant) -> tuple[int, int, int]:
    row = await platform.fetchrow(
        "SELECT storage_bytes, reserved_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
        uuid.UUID(tenant.id),
    )
    return row["storage_bytes"], row["reserved_bytes"], row["file_count"]


async def updated(platform: asyncpg.Connection, url: str) -> tuple[datetime, bool]:
    """When the session last changed, and whether a PATCH holds it."""
    row = await platform.fetchrow(
        "SELECT updated_at, writing_until FROM upload_sessions WHERE id = $1",
        uuid.UUID(url.rsplit("/", 1)[1]),
    )
    return row["updated_at"], row["writing_until"] is not None


async def settle(
    platform: asyncpg.Connection, url: str, tenant: LiveTenant, expected: int, since: datetime
) -> None:
    """The server notices a cut connection on its own time: wait for the PATCH to end (the
    session changed after `since`, its lease given back), then check the offset it left."""
    for _ in range(200):
        at, writing = await updated(platform, url)
        if at > since and not writing:
            break
        await asyncio.sleep(0.05)
    response = await asyncio.to_thread(offset_of, url, tenant)
    assert int(response.headers["upload-offset"]) == expected


async def staged(app: Litestar, tenant: LiveTenant) -> list[str]:
    """What the store stages for the tenant's uploads in progress: the local store's staged
    files; S3's staging objects beside file keys and its multipart uploads."""
    store = app.state.inspect
    if isinstance(store, LocalStore):
        return [str(path) for path in store._multipart.glob(f"tenants/{tenant.id}/**/staged")]
    assert isinstance(store, S3Store)
    prefix = f"tenants/{tenant.id}/"
    staging = [key async for key in store.list_keys(prefix) if staging_owner(key)]
    response = await store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix)
    return staging + [upload["Key"] for upload in response.get("Uploads", [])]


async def test_an_interrupted_upload_resumes_byte_identical_and_counted_once(
    live: tuple[str, LiveTenant, LiveTenant], platform_connection: asyncpg.Connection, app: Litestar
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    content = pdf_of_size(12 * MiB + 12345)  # on S3: two full parts, a third, and a tail
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
    since, _ = await updated(platform_connection, url)
    await asyncio.to_thread(cut_patch, url, acme, MiB, content[MiB : MiB + 300_000], 600_000)
    offset = MiB + 300_000
    await settle(platform_connection, url, acme, offset, since)

    # Checksummed bodies are kept whole or not at all, even when they filled a part past the
    # offset (on S3, a part that cannot be read back): one cut off, one whose checksum fails.
    garbage = bytes(6 * MiB)
    checksum = sha1_checksum(bytes(8 * MiB))
    since, _ = await updated(platform_connection, url)
    await asyncio.to_thread(cut_patch, url, acme, offset, garbage, 8 * MiB, **checksum)
    await settle(platform_connection, url, acme, offset, since)
    refused = await asyncio.to_thread(patch, url, acme, offset, garbage, **checksum)
    assert refused.status_code == 460, refused.text
    assert refused.json()["code"] == "checksum_mismatch"

    # A new client resumes from the server's offset.
    second = uploader(base_url, acme, content, chunk_size=2 * MiB, url=url)
    assert second.offset == offset
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
    assert await staged(app, acme) == []


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
    assert await staged(app, acme) == []


async def test_a_terminated_upload_leaves_nothing_and_gives_its_quota_back(
    live: tuple[str, LiveTenant, LiveTenant], platform_connection: asyncpg.Connection, app: Litestar
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    content = pdf_of_size(8 * MiB)
    url = await asyncio.to_thread(create, base_url, acme, len(content), "application/pdf")
    sent = await asyncio.to_thread(patch, url, acme, 0, content[: 6 * MiB])  # S3: part and tail
    assert sent.status_code == 204, sent.text
    assert await staged(app, acme) != []

    gone = await asyncio.to_thread(lambda: httpx.delete(url, headers={**auth(acme), **TUS}))

    assert gone.status_code == 204, gone.text
    assert (await asyncio.to_thread(offset_of, url, acme)).status_code == 404
    assert await counters(platform_connection, acme) == before
    assert await staged(app, acme) == []


async def test_expired_uploads_are_reconciled_and_release_their_quota(
    live: tuple[str, LiveTenant, LiveTenant],
    platform_connection: asyncpg.Connection,
    app: Litestar,
    settings: Settings,
) -> None:
    base_url, acme, _ = live
    before = await counters(platform_connection, acme)
    content = pdf_of_size(6 * MiB)
    url = await asyncio.to_thread(create, base_url, acme, len(content), "application/pdf")
    sent = await asyncio.to_thread(patch, url, acme, 0, content[: 5 * MiB + 100_000])
    assert sent.status_code == 204, sent.text
    assert sent.headers["upload-offset"] == str(5 * MiB + 100_000)
    assert "GMT" in sent.headers["upload-expires"]
    await platform_connection.execute(
        "UPDATE upload_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(url.rsplit("/", 1)[1]),
    )
    expired = await asyncio.to_thread(offset_of, url, acme)
    assert expired.status_code == 410
    report = await reconcile(app, settings)
    assert report.abandoned_uploads_aborted == 1
    assert await counters(platform_connection, acme) == before
    assert (await asyncio.to_thread(offset_of, url, acme)).status_code == 404
    assert await staged(app, acme) == []


async def test_the_reconciler_keeps_an_open_uploads_staging_and_removes_what_outlived_one(
    live: tuple[str, LiveTenant, LiveTenant], app: Litestar, settings: Settings
) -> None:
    base_url, acme, _ = live
    content = pdf_of_size(6 * MiB)
    url = await asyncio.to_thread(create, base_url, acme, len(content), "application/pdf")
    assert (await asyncio.to_thread(patch, url, acme, 0, content[:MiB])).status_code == 204

    assert (await reconcile(app, settings)).orphan_objects_removed == 0

    done = await asyncio.to_thread(patch, url, acme, MiB, content[MiB:])
    assert done.status_code == 204, done.text
    files = httpx.get(f"{base_url}/api/v1/files", params={"q": "Tus"}, headers=auth(acme))
    [file] = files.json()["items"]
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    store = app.state.inspect
    if not isinstance(store, S3Store):
        return  # the local store stages nothing beside its objects
    # Staging that outlived its upload: a PATCH still running when its upload was terminated,
    # a completed upload whose staging could not be removed.
    tenant_id = uuid.UUID(acme.id)
    left = [
        staging_key(file_key(tenant_id, uuid.uuid4()), "tus-tail"),
        staging_key(file_key(tenant_id, uuid.UUID(file["id"])), "tus-base"),
    ]
    for key in left:
        await store._client.put_object(Bucket=store.bucket, Key=key, Body=b"left")

    assert (await reconcile(app, settings)).orphan_objects_removed == 2
    assert await staged(app, acme) == []
    assert await store.head(file_key(tenant_id, uuid.UUID(file["id"]))) is not None


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


async def test_refusals_before_the_handler_say_the_protocol_version_too(
    live: tuple[str, LiveTenant, LiveTenant],
) -> None:
    """Authentication's and tenancy's refusals on the tus routes carry `Tus-Resumable` like
    the handlers' answers (tus 1.0: every answer but OPTIONS's)."""
    base_url, acme, _ = live
    url = await asyncio.to_thread(create, base_url, acme, 10_000, "application/pdf")
    refusals = {
        "no token": httpx.head(url, headers=TUS),
        "bad token": httpx.head(url, headers={"Authorization": "Bearer nope", **TUS}),
        "unknown tenant host": httpx.head(
            url, headers={**auth(acme), **TUS, "Host": "no.localhost"}
        ),
    }
    for name, response in refusals.items():
        assert response.status_code in (401, 403, 404), (name, response.status_code)
        assert response.headers.get("tus-resumable") == "1.0.0", name


async def test_tus_uploads_stay_within_what_the_store_can_join(
    live: tuple[str, LiveTenant, LiveTenant],
    app: Litestar,
    settings: Settings,
    platform_connection: asyncpg.Connection,
) -> None:
    """`Tus-Max-Size` is the tenant's largest file, or the store's largest resumable upload
    when smaller (S3: 10,000 parts); a longer upload is refused before anything is reserved."""
    base_url, acme, _ = live
    operator = await asyncio.to_thread(operator_token, settings, base_url)
    largest = 100 * 1024**3
    quotas = {"storage_bytes": 2 * largest, "max_file_bytes": largest}
    patched = await asyncio.to_thread(
        lambda: httpx.patch(
            f"{base_url}/platform/v1/tenants/{acme.id}",
            json={"quotas": quotas},
            headers={"Authorization": f"Bearer {operator}"},
        )
    )
    assert patched.status_code == 200, patched.text
    limit = app.state.inspect.append_limit
    options = await asyncio.to_thread(
        lambda: httpx.options(f"{base_url}/api/v1/uploads/tus", headers=auth(acme))
    )
    assert int(options.headers["tus-max-size"]) == (largest if limit is None else limit)
    if limit is None:
        return
    assert limit == 10_000 * 5 * MiB
    before = await counters(platform_connection, acme)

    refused = await asyncio.to_thread(
        lambda: httpx.post(
            f"{base_url}/api/v1/uploads/tus",
            headers={
                **auth(acme),
                **TUS,
                "Upload-Length": str(limit + 1),
                "Upload-Metadata": "title VHVz",
            },
        )
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["code"] == "file_too_large"
    assert await counters(platform_connection, acme) == before
