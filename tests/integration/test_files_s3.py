"""The file API on S3 (moto in server mode, or MinIO with TENANTRY_TEST_DOCKER=1): multipart
uploads, presigned downloads, and nothing left behind on failure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.storage import S3Store
from tests.fixtures.s3 import S3Endpoint, open_s3_store, s3_settings
from tests.integration.conftest import Api
from tests.integration.files_support import pdf_of_size, upload

MiB = 1024 * 1024


@pytest.fixture
async def bucket_store(s3_endpoint: S3Endpoint) -> AsyncIterator[S3Store]:
    """A fresh bucket, and a store on it for the test's own inspection."""
    async with open_s3_store(s3_endpoint) as store:
        yield store


@pytest.fixture
async def app(
    settings: Settings, s3_endpoint: S3Endpoint, bucket_store: S3Store, clean_database: None
) -> Litestar:
    s3 = s3_settings(s3_endpoint, bucket_store.bucket)
    return create_app(msgspec.structs.replace(settings, s3=s3))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield client


async def _keys(store: S3Store, tenant_id: str) -> list[str]:
    return [key async for key in store.list_keys(f"tenants/{tenant_id}/")]


async def _multipart_uploads(store: S3Store) -> list[object]:
    response = await store._client.list_multipart_uploads(Bucket=store.bucket)
    return list(response.get("Uploads", []))


async def test_multipart_upload_and_presigned_download(api: Api, bucket_store: S3Store) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    content = pdf_of_size(12 * MiB)  # three parts of 5 MiB
    response = await upload(api, acme, host, content, filename="big guide.pdf")
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["size"] == len(content)
    assert await _keys(bucket_store, acme.id) == [f"tenants/{acme.id}/files/{file['id']}"]

    link = (await api.client.get(f"/api/v1/files/{file['id']}/download", headers=host)).json()
    async with httpx.AsyncClient() as http:
        download = await http.get(link["url"])
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert "big%20guide.pdf" in download.headers["content-disposition"]


async def test_limit_hit_after_parts_were_sent_leaves_nothing(
    api: Api, bucket_store: S3Store
) -> None:
    acme = await api.provision(
        "acme", quotas={"storage_bytes": 100 * MiB, "max_file_bytes": 11 * MiB}
    )
    response = await upload(api, acme, await api.token(acme), pdf_of_size(12 * MiB))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert await _keys(bucket_store, acme.id) == []
    assert await _multipart_uploads(bucket_store) == []


async def test_offboarding_empties_the_tenant_prefix(api: Api, bucket_store: S3Store) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    for tenant in (acme, globex):
        assert (await upload(api, tenant, await api.token(tenant))).status_code == 201
    assert (
        await api.client.delete(f"/platform/v1/tenants/{acme.id}", headers=api.operator)
    ).status_code == 204
    assert await _keys(bucket_store, acme.id) == []
    assert len(await _keys(bucket_store, globex.id)) == 1
