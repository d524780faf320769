"""An object store that stops answering, with a real process: moto's server, frozen with SIGSTOP
in the middle of an upload and before a download link, then thawed with SIGCONT (so it keeps its
state, as a store that was only unreachable would). The API answers 503 `storage_unavailable`,
keeps no row and no object, and works again once the store is back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import S3Settings, Settings
from tenantry.storage import S3Store
from tests.integration.conftest import Api
from tests.integration.files_support import file_rows, pdf_of_size, upload

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def _s3(endpoint: str, bucket: str) -> S3Settings:
    return S3Settings(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id="moto",
        secret_access_key="moto",
        part_size=5 * MiB,
        connect_timeout=1.0,
        read_timeout=1.0,
        max_attempts=1,
        operation_timeout=3.0,
    )


@pytest.fixture
async def bucket(moto_process: tuple[subprocess.Popen[bytes], str]) -> AsyncIterator[S3Store]:
    s3 = _s3(moto_process[1], f"faults-{uuid.uuid4().hex}")
    store = S3Store(
        bucket=s3.bucket,
        endpoint_url=s3.endpoint_url,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key,
    )
    async with store:
        await store.ensure_bucket()
        yield store


@pytest.fixture
async def app(
    settings: Settings,
    moto_process: tuple[subprocess.Popen[bytes], str],
    bucket: S3Store,
    clean_database: None,
) -> Litestar:
    return create_app(msgspec.structs.replace(settings, s3=_s3(moto_process[1], bucket.bucket)))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def freeze(moto_process: tuple[subprocess.Popen[bytes], str]) -> Iterator[object]:
    """freeze(True) stops the store process, freeze(False) lets it go on."""
    pid = moto_process[0].pid

    def apply(frozen: bool) -> None:
        os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    try:
        yield apply
    finally:
        os.kill(pid, signal.SIGCONT)


async def _objects(store: S3Store) -> list[str]:
    return [key async for key in store.list_keys("tenants/")]


async def _multipart_uploads(store: S3Store) -> list[object]:
    response = await store._client.list_multipart_uploads(Bucket=store.bucket)
    return list(response.get("Uploads", []))


async def test_store_stopped_mid_upload(
    api: Api,
    bucket: S3Store,
    freeze: object,
    platform_connection: asyncpg.Connection,
    app: Litestar,
) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    store = app.state.services.store
    real_put = store.put_stream

    async def put_then_freeze(key, chunks, *, content_type):  # type: ignore[no-untyped-def]
        async def freeze_after_the_first_part():  # type: ignore[no-untyped-def]
            sent = 0
            async for chunk in chunks:
                yield chunk
                sent += len(chunk)
                if sent > 6 * MiB:  # the first part is on its way: the store stops now
                    freeze(True)  # type: ignore[operator]

        return await real_put(key, freeze_after_the_first_part(), content_type=content_type)

    store.put_stream = put_then_freeze
    try:
        response = await upload(api, acme, auth, pdf_of_size(12 * MiB), filename="big.pdf")
    finally:
        del store.put_stream
    freeze(False)  # type: ignore[operator]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "storage_unavailable"
    assert await file_rows(platform_connection, acme.id) == []
    assert await _objects(bucket) == []
    # The abort could not reach the frozen store: the reconciler removes what it left.
    await bucket.delete_prefix(f"tenants/{acme.id}/")
    assert await _multipart_uploads(bucket) == []

    again = await upload(api, acme, auth, pdf_of_size(200_000))
    assert again.status_code == 201, again.text
    assert len(await _objects(bucket)) == 1


async def test_store_stopped_before_a_download_link(
    api: Api, bucket: S3Store, freeze: object
) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    created = await upload(api, acme, auth, pdf_of_size(100_000))
    assert created.status_code == 201, created.text
    link = f"/api/v1/files/{created.json()['id']}/download"

    freeze(True)  # type: ignore[operator]
    try:
        response = await api.client.get(link, headers={"Host": acme.host, **auth}, timeout=30)
    finally:
        freeze(False)  # type: ignore[operator]
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "storage_unavailable"

    back = await api.client.get(link, headers={"Host": acme.host, **auth})
    assert back.status_code == 200, back.text
    async with httpx.AsyncClient() as outside:
        downloaded = await outside.get(back.json()["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == pdf_of_size(100_000)


async def test_readiness_reports_a_stopped_store(api: Api, freeze: object) -> None:
    freeze(True)  # type: ignore[operator]
    try:
        ready = await api.client.get("/health/ready", timeout=30)
    finally:
        freeze(False)  # type: ignore[operator]
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"].startswith("error")
    assert (await api.client.get("/health/ready")).status_code == 200
