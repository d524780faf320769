"""Second review of 2ce128d..main: each test fails while its defect is present."""

from __future__ import annotations

import errno
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tenantry.storage import LocalStore, StoreError
from tenantry.storage import local as local_module
from tests.integration.conftest import Api
from tests.integration.files_support import PDF

# -- 1. A failed two-step PUT deletes the object of the retry that succeeded after it ---------
# `FileUploads.upload_content` (files/uploads.py), on failure: release_claim + commit (the row
# is `pending` again, claimable) and only THEN `delete_object_later(store, key)`. Every attempt
# writes the same key (`file_key(tenant, file_id)`), so a retry that claims the row in between
# writes its object, goes `ready`, and the first attempt's late delete removes it: a ready,
# counted file with no content. Fixed: the delete comes before the claim is released.


async def test_a_failed_put_does_not_delete_the_object_of_a_later_successful_put(
    api: Api, app: Litestar
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    pending = (
        await api.client.post(
            "/api/v1/files", json={"title": "Raw", "filename": "raw.pdf"}, headers=host
        )
    ).json()
    file_id = pending["file"]["id"]
    key = f"tenants/{acme.id}/files/{file_id}"
    store: Any = app.state.services.store
    real_delete = store.delete
    retries: list[httpx.Response] = []

    async def slow_delete(deleted_key: str) -> None:
        # A slow store: before the failed attempt's delete lands, a retry claims the row again
        # and completes (sent straight to the app, on the app's own loop).
        if deleted_key == key and not retries:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                retries.append(
                    await c.put(
                        pending["upload_url"],
                        content=PDF,
                        headers={**host, "Content-Type": "application/pdf"},
                    )
                )
        await real_delete(deleted_key)

    store.delete = slow_delete
    try:
        failing = await api.client.put(
            pending["upload_url"],
            content=b"\x00\x01junk",
            headers={**host, "Content-Type": "application/pdf"},
        )
    finally:
        store.delete = real_delete
    assert failing.status_code == 415, failing.text
    # While the failed attempt still cleans up, it holds the claim: the retry is refused, so
    # nothing it writes can be removed by that cleanup.
    assert retries and retries[0].status_code == 404, retries and retries[0].text
    retry = await api.client.put(
        pending["upload_url"], content=PDF, headers={**host, "Content-Type": "application/pdf"}
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "ready"
    assert await store.head(key) is not None, "the ready file's object was deleted"
    link = await api.client.get(f"/api/v1/files/{file_id}/download", headers=host)
    assert link.status_code == 200
    assert (await api.client.get(link.json()["url"])).content == PDF


# -- 2. Malformed JSON on PATCH answers `bad_request`, which its OpenAPI 400 does not list -----
# The document (lib/openapi.py) promises `invalid_json` for a body that is not JSON; POST
# /api/v1/files answers that, PATCH /api/v1/files/{id} (a `JSONBody` handler) answers Litestar's
# generic `bad_request` ("JSON is malformed"), and a non-JSON Content-Type there is parsed as
# JSON too (no 415).


async def test_patch_with_malformed_json_answers_a_documented_code(api: Api) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    schema = (await api.client.get("/schema/openapi.json")).json()
    documented = schema["paths"]["/api/v1/files/{file_id}"]["patch"]["responses"]
    response = await api.client.patch(
        "/api/v1/files/00000000-0000-0000-0000-000000000000",
        content=b'{"title": ',
        headers={**host, "Content-Type": "application/json"},
    )
    assert response.headers["content-type"] == "application/problem+json"
    status, code = str(response.status_code), response.json()["code"]
    assert status in documented, response.text
    assert f"`{code}`" in documented[status]["description"], (status, code)


async def test_local_delete_prefix_reports_a_disk_that_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offboarding must not look finished when the disk refused to delete (review 2, item 3)."""
    store = LocalStore(tmp_path / "store", signing_key=b"k" * 32)
    tenant = uuid.uuid4()
    key = f"tenants/{tenant}/files/{uuid.uuid4()}"

    async def one_chunk() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4 content"

    await store.put_stream(key, one_chunk(), content_type="application/pdf")

    def read_only_disk(path: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(local_module.shutil, "rmtree", read_only_disk)
    with pytest.raises(StoreError):
        await store.delete_prefix(f"tenants/{tenant}/")
    monkeypatch.undo()
    assert await store.delete_prefix(f"tenants/{tenant}/") == 1
    assert await store.delete_prefix(f"tenants/{tenant}/") == 0  # gone already: not an error
