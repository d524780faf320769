"""Direct uploads on S3 (moto in server mode) and on the local store: the client PUTs the parts
to the URLs it was given, the API completes and verifies; liars are refused and leave nothing;
the quota holds against proxied uploads racing direct ones."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.config import Settings
from tests.integration.conftest import ON_EACH_STORE, Api, Tenant
from tests.integration.files_support import (
    CORPUS,
    assert_rollup_matches_scan,
    pdf_of_size,
    reconcile,
    upload,
)

pytestmark = ON_EACH_STORE

MiB = 1024 * 1024
BASE_URL = "http://127.0.0.1"
PNG = (CORPUS / "image.png").read_bytes()


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def acme(api: Api) -> Tenant:
    return await api.provision("acme", quotas={"storage_bytes": 40 * MiB})


async def start(
    api: Api, tenant: Tenant, content: bytes, *, content_type: str = "application/pdf", **extra: Any
) -> httpx.Response:
    body = {
        "title": "Direct",
        "filename": "direct.pdf",
        "content_type": content_type,
        "size": len(content),
        **extra,
    }
    return await api.client.post(
        "/api/v1/uploads", json=body, headers={"Host": tenant.host, **await api.token(tenant)}
    )


async def send(api: Api, method: str, url: str, body: bytes | None = None) -> httpx.Response:
    """A request to a URL the API handed out, as a client would send it: to the app (the local
    store's signed routes, on the tenant's host) or to the bucket."""
    split = urlsplit(url)
    if split.hostname is not None and split.hostname.endswith("localhost"):
        path = split._replace(scheme="", netloc="").geturl()
        return await api.client.request(method, path, content=body, headers={"Host": split.netloc})
    async with httpx.AsyncClient() as http:
        return await http.request(method, url, content=body)


async def put_part(api: Api, url: str, body: bytes) -> httpx.Response:
    return await send(api, "PUT", url, body)


async def send_parts(api: Api, plan: dict[str, Any], content: bytes) -> list[dict[str, Any]]:
    done = []
    for part in plan["parts"]:
        offset = (part["number"] - 1) * plan["part_size"]
        response = await put_part(api, part["url"], content[offset : offset + part["size"]])
        assert response.status_code == 200, response.text
        done.append({"number": part["number"], "etag": response.headers["etag"]})
    return done


async def complete(
    api: Api, tenant: Tenant, upload_id: str, parts: list[dict[str, Any]]
) -> httpx.Response:
    return await api.client.post(
        f"/api/v1/uploads/{upload_id}/complete",
        json={"parts": parts},
        headers={"Host": tenant.host, **await api.token(tenant)},
    )


async def direct_upload(api: Api, tenant: Tenant, content: bytes, **extra: Any) -> httpx.Response:
    started = await start(api, tenant, content, **extra)
    assert started.status_code == 201, started.text
    plan = started.json()
    return await complete(api, tenant, plan["id"], await send_parts(api, plan, content))


async def counters(platform: asyncpg.Connection, tenant: Tenant) -> tuple[int, int, int]:
    row = await platform.fetchrow(
        "SELECT storage_bytes, reserved_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
        uuid.UUID(tenant.id),
    )
    return row["storage_bytes"], row["reserved_bytes"], row["file_count"]


async def stored_keys(app: Litestar, tenant_id: str) -> list[str]:
    return [key async for key in app.state.inspect.list_keys(f"tenants/{tenant_id}/")]


async def leftovers(app: Litestar, platform: asyncpg.Connection, tenant: Tenant) -> Any:
    """Objects, file rows and sessions the tenant still has."""
    tid = uuid.UUID(tenant.id)
    return (
        await stored_keys(app, tenant.id),
        await platform.fetchval("SELECT count(*) FROM files WHERE tenant_id = $1", tid),
        await platform.fetchval("SELECT count(*) FROM upload_sessions WHERE tenant_id = $1", tid),
    )


async def test_direct_upload_round_trip(
    api: Api, acme: Tenant, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    content = pdf_of_size(12 * MiB + 17)  # parts of the store's size and a short last one
    started = await start(api, acme, content)
    assert started.status_code == 201, started.text
    plan = started.json()
    assert sum(part["size"] for part in plan["parts"]) == len(content)
    assert [part["number"] for part in plan["parts"]] == list(range(1, len(plan["parts"]) + 1))
    assert len(plan["parts"]) > 1
    # Reserved, not stored yet.
    assert await counters(platform_connection, acme) == (0, len(content), 0)

    response = await complete(api, acme, plan["id"], await send_parts(api, plan, content))
    assert response.status_code == 200, response.text
    file = response.json()
    assert file["id"] == plan["file_id"]
    assert file["status"] == "ready"
    assert file["size"] == len(content)
    assert file["content_type"] == "application/pdf"
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert await counters(platform_connection, acme) == (len(content), 0, 1)
    await assert_rollup_matches_scan(platform_connection, acme.id)
    events = await platform_connection.fetch(
        "SELECT kind, bytes FROM usage_events WHERE tenant_id = $1 AND kind = 'upload'",
        uuid.UUID(acme.id),
    )
    assert [(e["kind"], e["bytes"]) for e in events] == [("upload", len(content))]

    host = {"Host": acme.host, **await api.token(acme)}
    link = (await api.client.get(f"/api/v1/files/{file['id']}/download", headers=host)).json()
    download = await send(api, "GET", link["url"])
    assert download.status_code == 200
    assert download.content == content
    assert hashlib.sha256(download.content).hexdigest() == file["sha256"]

    # Completing again is the same answer, counted once.
    again = await complete(api, acme, plan["id"], await send_parts_etags(plan))
    assert again.status_code == 200, again.text
    assert again.json() == file
    assert await counters(platform_connection, acme) == (len(content), 0, 1)
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/files/{file['id']}"]
    # A completed upload is not aborted: its file is deleted as a file.
    aborted = await api.client.delete(f"/api/v1/uploads/{plan['id']}", headers=host)
    assert aborted.status_code == 409
    assert aborted.json()["code"] == "upload_completed"


async def send_parts_etags(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Any well-formed list for a completed upload: its answer does not depend on it."""
    return [{"number": part["number"], "etag": '"x"'} for part in plan["parts"]]


@pytest.mark.parametrize(
    ("declared", "sent", "code"),
    [
        ("size", pdf_of_size(6 * MiB - 1), "upload_size_mismatch"),
        ("type", PNG, "upload_type_mismatch"),
    ],
    ids=["short-by-one", "png-declared-pdf"],
)
async def test_a_lying_client_is_refused_and_leaves_nothing(
    api: Api,
    acme: Tenant,
    app: Litestar,
    platform_connection: asyncpg.Connection,
    declared: str,
    sent: bytes,
    code: str,
) -> None:
    declared_size = 6 * MiB if declared == "size" else len(sent)
    started = await start(api, acme, b"x" * declared_size)
    assert started.status_code == 201, started.text
    plan = started.json()
    etags = []
    for part in plan["parts"]:
        offset = (part["number"] - 1) * plan["part_size"]
        body = sent[offset : offset + part["size"]]
        response = await put_part(api, part["url"], body)
        if response.status_code != 200:  # the local store refuses a part of the wrong size
            assert response.json()["code"] == "part_size_mismatch"
            response = await _put_unchecked(app, api, part["url"], body)
        etags.append({"number": part["number"], "etag": response.headers["etag"]})
    response = await complete(api, acme, plan["id"], etags)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert await counters(platform_connection, acme) == (0, 0, 0)
    assert await leftovers(app, platform_connection, acme) == ([], 0, 0)
    gone = await complete(api, acme, plan["id"], etags)
    assert gone.status_code == 404
    assert gone.json()["code"] == "upload_not_found"


async def _put_unchecked(app: Litestar, api: Api, url: str, body: bytes) -> httpx.Response:
    """The local store checks each part's size on PUT; a client that lies about the total
    could still send a short last part, so this writes one as the store's PUT would for a
    URL signed with the short size (what a lie at start would have obtained)."""
    store = app.state.services.store
    split = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(split.query).items()}
    key = split.path.removeprefix("/_store/")
    signed = await store.presign_part(
        key,
        query["upload"],
        int(query["part"]),
        size=len(body),
        expires_in=60,
        origin=f"{split.scheme}://{split.netloc}",
    )
    return await put_part(api, signed, body)


async def test_parts_that_do_not_match_leave_the_upload_open(
    api: Api, acme: Tenant, platform_connection: asyncpg.Connection
) -> None:
    content = pdf_of_size(6 * MiB)
    plan = (await start(api, acme, content)).json()
    parts = await send_parts(api, plan, content)
    wrong_etag = [{**part, "etag": '"' + "0" * 32 + '"'} for part in parts]
    for body, code in (
        (wrong_etag, "upload_parts_invalid"),
        (parts[:1] if len(parts) > 1 else parts + parts, "upload_parts_invalid"),
    ):
        response = await complete(api, acme, plan["id"], body)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    assert await counters(platform_connection, acme) == (0, len(content), 0)
    response = await complete(api, acme, plan["id"], parts)
    assert response.status_code == 200, response.text


async def test_abort_and_abandon_release_the_quota(
    api: Api,
    acme: Tenant,
    app: Litestar,
    settings: Settings,
    platform_connection: asyncpg.Connection,
) -> None:
    content = pdf_of_size(6 * MiB)
    host = {"Host": acme.host, **await api.token(acme)}
    aborted = (await start(api, acme, content)).json()
    await send_parts(api, aborted, content)
    abandoned = (await start(api, acme, content)).json()
    await send_parts(api, abandoned, content)
    assert await counters(platform_connection, acme) == (0, 2 * len(content), 0)

    response = await api.client.delete(f"/api/v1/uploads/{aborted['id']}", headers=host)
    assert response.status_code == 204
    assert await counters(platform_connection, acme) == (0, len(content), 0)
    response = await api.client.delete(f"/api/v1/uploads/{aborted['id']}", headers=host)
    assert response.status_code == 404

    # Never completed: past its expiry the reconciler aborts it.
    await platform_connection.execute(
        "UPDATE upload_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(abandoned["id"]),
    )
    expired = await complete(api, acme, abandoned["id"], [{"number": 1, "etag": "x"}])
    assert expired.status_code == 410
    assert expired.json()["code"] == "upload_expired"
    report = await reconcile(app, settings)
    assert report.abandoned_uploads_aborted == 1
    assert await counters(platform_connection, acme) == (0, 0, 0)
    assert await leftovers(app, platform_connection, acme) == ([], 0, 0)
    assert await _open_multipart_uploads(app) == 0


async def _open_multipart_uploads(app: Litestar) -> int:
    store = app.state.inspect
    if hasattr(store, "_client"):
        response = await store._client.list_multipart_uploads(Bucket=store.bucket)
        return len(response.get("Uploads", []))
    return sum(1 for path in store._multipart.rglob("content-type"))


async def test_quota_holds_between_direct_and_proxied_uploads(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    """Quota 20 MiB; six uploads of 6 MiB at once, three direct and three proxied: at most
    three fit, whatever the order, and the counters end equal to what is stored."""
    tenant = await api.provision("race", quotas={"storage_bytes": 20 * MiB})
    content = pdf_of_size(6 * MiB)
    token = await api.token(tenant)

    async def direct() -> int:
        started = await start(api, tenant, content)
        if started.status_code != 201:
            return started.status_code
        plan = started.json()
        return (
            await complete(api, tenant, plan["id"], await send_parts(api, plan, content))
        ).status_code

    async def proxied() -> int:
        return (await upload(api, tenant, token, content)).status_code

    statuses = await asyncio.gather(*(f() for f in (direct, proxied) * 3))
    # Every refusal is for space held by uploads that then succeed: exactly three fit.
    assert statuses.count(413) == 3, statuses
    assert all(status in (200, 201, 413) for status in statuses), statuses
    storage, reserved, files = await counters(platform_connection, tenant)
    assert reserved == 0
    assert files == 3
    assert storage == 3 * len(content) <= 20 * MiB
    await assert_rollup_matches_scan(platform_connection, tenant.id)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"size": 0}, "validation_error"),
        ({"size": -1}, "validation_error"),
        ({"size": 2**63}, "validation_error"),
        ({"size": 2**70}, "validation_error"),
        ({"size": 41 * MiB}, "quota_exceeded"),
        ({"title": "a\x00b"}, "invalid_value"),
        ({"filename": "a\x00b.pdf"}, None),
        ({"content_type": "application/pdf\x00"}, "invalid_value"),
        ({"content_type": ""}, "validation_error"),
        ({"unknown": 1}, "validation_error"),
    ],
)
async def test_bad_starts_are_clear_problems(
    api: Api,
    acme: Tenant,
    platform_connection: asyncpg.Connection,
    change: dict[str, Any],
    code: str | None,
) -> None:
    body = {"title": "T", "filename": "f.pdf", "content_type": "application/pdf", "size": 10}
    response = await api.client.post(
        "/api/v1/uploads",
        content=msgspec.json.encode({**body, **change}),
        headers={"Host": acme.host, "Content-Type": "application/json", **await api.token(acme)},
    )
    if code is None:  # a NUL in a filename is dropped, like any control character
        assert response.status_code == 201, response.text
        return
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] == code, response.text
    assert await counters(platform_connection, acme) == (0, 0, 0)


async def test_bad_completes_are_clear_problems(api: Api, acme: Tenant) -> None:
    headers = {"Host": acme.host, **await api.token(acme)}
    plan = (await start(api, acme, pdf_of_size(1000))).json()
    for body, status in (
        ({"parts": [{"number": n, "etag": "x"} for n in range(1, 10_002)]}, 400),
        ({"parts": [{"number": 0, "etag": "x"}]}, 400),
        ({"parts": [{"number": 1, "etag": "x\x00"}]}, 400),
        ({"parts": [{"number": 2, "etag": "x"}]}, 422),
        ({"parts": []}, 400),
    ):
        response = await api.client.post(
            f"/api/v1/uploads/{plan['id']}/complete", json=body, headers=headers
        )
        assert response.status_code == status, (body, response.text)
    unknown = await api.client.post(
        f"/api/v1/uploads/{uuid.uuid4()}/complete",
        json={"parts": [{"number": 1, "etag": "x"}]},
        headers=headers,
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "upload_not_found"


async def test_part_urls_write_their_own_part_only(api: Api, acme: Tenant, app: Litestar) -> None:
    """Local store: the signature covers key, upload, part and size; any change is 403."""
    if hasattr(app.state.services.store, "_client"):
        pytest.skip("moto serves presigned URLs without checking them (MinIO does)")
    globex = await api.provision("globex")
    content = pdf_of_size(1000)
    mine = (await start(api, acme, content)).json()
    theirs = (await start(api, globex, content)).json()
    url = mine["parts"][0]["url"]
    split = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(split.query).items()}
    their_key = urlsplit(theirs["parts"][0]["url"]).path
    their_upload = parse_qs(urlsplit(theirs["parts"][0]["url"]).query)["upload"][0]
    tampered = [
        split._replace(path=their_key).geturl(),  # another tenant's object
        split._replace(path=f"/_store/tenants/{acme.id}/files/{uuid.uuid4()}").geturl(),
        split._replace(query=urlencode({**query, "upload": their_upload})).geturl(),
        split._replace(query=urlencode({**query, "part": "2"})).geturl(),
        split._replace(query=urlencode({**query, "size": "999"})).geturl(),
        split._replace(query=urlencode({**query, "exp": str(int(query["exp"]) + 1)})).geturl(),
    ]
    for attempt in tampered:
        response = await put_part(api, attempt, content)
        assert response.status_code == 403, (attempt, response.text)
        assert response.json()["code"] == "part_refused"
    too_long = await put_part(api, url, content + b"x")
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "part_size_mismatch"
    assert (await put_part(api, url, content)).status_code == 200
