"""The file API: uploads that keep nothing on failure, reads, downloads, changes, stats."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import anyio.to_thread
import asyncpg
import httpx
import pytest
from litestar import Litestar

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api
from tests.integration.files_support import (
    CORPUS,
    PDF,
    add_taxonomy,
    assert_rollup_matches_scan,
    file_rows,
    pdf_of_size,
    stored_keys,
    upload,
    usage,
    user_with_role,
)
from tests.integration.live import serve


async def test_upload_list_get_download(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    host = {"Host": acme.host, **auth}
    category = await add_taxonomy(platform_connection, acme.id, "categories", "Skills")
    audience = await add_taxonomy(platform_connection, acme.id, "audiences", "Mentor/Coach")

    response = await upload(
        api,
        acme,
        auth,
        filename="Résumé guide.pdf",
        description="How to",
        category=category,
        language="EN",
        audiences=[audience],
    )
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["content_type"] == "application/pdf"
    assert file["size"] == len(PDF)
    assert file["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert file["filename"] == "Résumé guide.pdf"
    assert file["category"] == category
    assert file["language"] == "en"
    assert file["audiences"] == [audience]
    assert file["status"] == "ready"

    assert (await api.client.get(f"/api/v1/files/{file['id']}", headers=host)).json() == file
    listed = (await api.client.get("/api/v1/files", headers=host)).json()
    assert [f["id"] for f in listed["items"]] == [file["id"]]
    assert listed["total"] == 1
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/files/{file['id']}"]
    assert await usage(platform_connection, acme.id) == (len(PDF), 1)

    link = (await api.client.get(f"/api/v1/files/{file['id']}/download", headers=host)).json()
    assert link["expires_at"].endswith("Z")
    content = await api.client.get(link["url"])
    assert content.status_code == 200
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20guide.pdf" in content.headers["content-disposition"]
    # Seekable: a video player asks for ranges.
    partial = await api.client.get(link["url"], headers={"Range": "bytes=5-9"})
    assert partial.status_code == 206
    assert partial.content == PDF[5:10]
    assert partial.headers["content-range"] == f"bytes 5-9/{len(PDF)}"
    redirect = await api.client.get(
        f"/api/v1/files/{file['id']}/download?redirect=true", headers=host, follow_redirects=False
    )
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith("http://")

    events = await platform_connection.fetch(
        "SELECT kind, user_role, bytes, category_id::text, language, audience_ids::text[] FROM usage_events "
        "WHERE tenant_id = $1 AND kind NOT IN ('login', 'serve') ORDER BY occurred_at",
        uuid.UUID(acme.id),
    )
    assert [tuple(e) for e in events] == [
        ("upload", "owner", len(PDF), category, "en", [audience]),
        ("download", "owner", len(PDF), category, "en", [audience]),
        ("download", "owner", len(PDF), category, "en", [audience]),
    ]


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("clip.mp4", "video/mp4", "video/mp4"),
        ("photo-exif.jpg", "image/jpeg", "image/jpeg"),
        ("photo-jfif.jpg", None, "image/jpeg"),
        ("notes.txt", "text/plain", "text/plain"),
        ("notes-bom.txt", "text/plain; charset=utf-8", "text/plain"),
        ("image.png", "application/octet-stream", "image/png"),
        ("song-id3.mp3", "audio/mpeg", "audio/mpeg"),
    ],
)
async def test_real_type_is_sniffed(
    api: Api, name: str, declared: str | None, expected: str
) -> None:
    acme = await api.provision("acme")
    response = await upload(
        api,
        acme,
        await api.token(acme),
        (CORPUS / name).read_bytes(),
        filename=name,
        content_type=declared,
    )
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == expected


@pytest.mark.parametrize(
    ("name", "declared", "status", "code"),
    [
        ("jpeg-renamed.pdf", "application/pdf", 415, "content_type_mismatch"),
        ("junk.bin", None, 415, "unsupported_file_type"),
        ("empty.bin", None, 422, "empty_file"),
    ],
)
async def test_refused_files_leave_nothing(
    api: Api,
    app: Litestar,
    platform_connection: asyncpg.Connection,
    name: str,
    declared: str | None,
    status: int,
    code: str,
) -> None:
    acme = await api.provision("acme")
    response = await upload(
        api,
        acme,
        await api.token(acme),
        (CORPUS / name).read_bytes(),
        filename=name,
        content_type=declared,
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert await file_rows(platform_connection, acme.id) == []
    assert await stored_keys(app, acme.id) == []
    assert await usage(platform_connection, acme.id) == (0, 0)


async def test_type_not_allowed_for_tenant(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme", settings={"allowed_content_types": ["application/pdf"]})
    auth = await api.token(acme)
    png = (CORPUS / "image.png").read_bytes()
    response = await upload(api, acme, auth, png, filename="a.png", content_type="image/png")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_file_type"
    assert (await upload(api, acme, auth)).status_code == 201


async def test_file_too_large_and_quota_exceeded_leave_nothing(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme", quotas={"storage_bytes": 100_000, "max_file_bytes": 60_000})
    auth = await api.token(acme)
    response = await upload(api, acme, auth, pdf_of_size(60_001))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    first = await upload(api, acme, auth, pdf_of_size(60_000))
    assert first.status_code == 201
    response = await upload(api, acme, auth, pdf_of_size(50_000))
    assert response.status_code == 413
    assert response.json()["code"] == "quota_exceeded"
    assert [row["id"] for row in await file_rows(platform_connection, acme.id)] == [
        uuid.UUID(first.json()["id"])
    ]
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/files/{first.json()['id']}"]
    assert await usage(platform_connection, acme.id) == (60_000, 1)


async def test_concurrent_uploads_never_exceed_the_quota(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection, settings: Settings
) -> None:
    quota, size = 100_000, 12_000  # 20 x 12,000 = 240,000: at most 8 fit
    acme = await api.provision("acme", quotas={"storage_bytes": quota, "max_file_bytes": size})
    auth = await api.token(acme)
    # A second instance of the app under uvicorn: the uploads really overlap there.
    with serve(create_app(settings)) as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Host": acme.host, **auth}, timeout=60
        ) as http:
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/files",
                        data={"title": "Guide"},
                        files={"file": ("guide.pdf", pdf_of_size(size), "application/pdf")},
                    )
                    for _ in range(20)
                )
            )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 413}
    stored, count = await usage(platform_connection, acme.id)
    assert stored <= quota
    assert stored == count * size == statuses.count(201) * size
    assert statuses.count(201) == 8
    assert len(await stored_keys(app, acme.id)) == count
    assert len(await file_rows(platform_connection, acme.id)) == count


async def test_store_failure_mid_stream_leaves_nothing(
    api: Api,
    app: Litestar,
    platform_connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tenantry.storage import StoreError

    acme = await api.provision("acme")
    store = app.state.services.store
    real_put = store.put_stream

    async def failing_put(key, chunks, *, content_type):  # type: ignore[no-untyped-def]
        async def first_chunk_then_fail():  # type: ignore[no-untyped-def]
            async for chunk in chunks:
                yield chunk
                raise StoreError("disk on fire")

        return await real_put(key, first_chunk_then_fail(), content_type=content_type)

    monkeypatch.setattr(store, "put_stream", failing_put)
    response = await upload(api, acme, await api.token(acme), pdf_of_size(200_000))
    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert await file_rows(platform_connection, acme.id) == []
    assert await stored_keys(app, acme.id) == []
    assert await usage(platform_connection, acme.id) == (0, 0)


async def test_client_disconnect_mid_stream_leaves_nothing(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    auth = await api.token(acme)
    boundary = "tenantryboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nCut\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode() + pdf_of_size(100_000)
    messages = [
        {"type": "http.request", "body": head[:70_000], "more_body": True},
        {"type": "http.request", "body": head[70_000:], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/files",
        "raw_path": b"/api/v1/files",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"host", acme.host.encode()),
            (b"authorization", auth["Authorization"].encode()),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
    }
    # The app's pools live on the test client's event loop (its own thread): run it there.
    await anyio.to_thread.run_sync(api.client.blocking_portal.call, app, scope, receive, send)
    assert await file_rows(platform_connection, acme.id) == []
    assert await stored_keys(app, acme.id) == []
    assert await usage(platform_connection, acme.id) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "files", "field"),
    [
        ({}, {"file": ("a.pdf", PDF, "application/pdf")}, "title"),
        ({"title": "x" * 201}, {"file": ("a.pdf", PDF, "application/pdf")}, "title"),
        (
            {"title": "t", "language": "english"},
            {"file": ("a.pdf", PDF, "application/pdf")},
            "language",
        ),
        ({"title": "t", "language": "qq"}, {"file": ("a.pdf", PDF, "application/pdf")}, "language"),
        (
            {"title": "t", "category": str(uuid.uuid4())},
            {"file": ("a.pdf", PDF, "application/pdf")},
            "category",
        ),
        (
            {"title": "t", "category": "not-a-uuid"},
            {"file": ("a.pdf", PDF, "application/pdf")},
            "category",
        ),
        (
            {"title": "t", "audiences": [str(uuid.uuid4())]},
            {"file": ("a.pdf", PDF, "application/pdf")},
            "audiences",
        ),
        ({"title": "t", "colour": "red"}, {"file": ("a.pdf", PDF, "application/pdf")}, "colour"),
    ],
)
async def test_bad_input_names_the_field(
    api: Api,
    platform_connection: asyncpg.Connection,
    fields: dict[str, object],
    files: object,
    field: str,
) -> None:
    acme = await api.provision("acme")
    response = await api.client.post(
        "/api/v1/files",
        data=fields,
        files=files or {"unused": ("", b"")},  # type: ignore[arg-type]
        headers={"Host": acme.host, **await api.token(acme)},
    )
    assert response.status_code in (400, 422), response.text
    assert any(error["field"].startswith(field) for error in response.json()["errors"]), (
        response.json()
    )
    assert await file_rows(platform_connection, acme.id) == []


async def test_form_without_file_part(api: Api) -> None:
    acme = await api.provision("acme")
    boundary = "b0undary"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nNo file\r\n--{boundary}--\r\n'
    response = await api.client.post(
        "/api/v1/files",
        content=body.encode(),
        headers={
            "Host": acme.host,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **await api.token(acme),
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "missing_file"
    assert response.json()["errors"][0]["field"] == "file"


async def test_metadata_after_the_file_part_is_refused(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nLate\r\n--{boundary}--\r\n'
        ).encode()
    )
    response = await api.client.post(
        "/api/v1/files",
        content=body,
        headers={
            "Host": acme.host,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **await api.token(acme),
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"
    # With the title before the file, the same body shape is fine; only the order was wrong.
    assert await file_rows(platform_connection, acme.id) == []
    assert await stored_keys(app, acme.id) == []


async def test_two_step_upload(api: Api, platform_connection: asyncpg.Connection) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    response = await api.client.post(
        "/api/v1/files", json={"title": "Raw", "filename": "raw.pdf"}, headers=host
    )
    assert response.status_code == 201, response.text
    pending = response.json()
    assert pending["file"]["status"] == "pending"
    # Pending files are not listed and cannot be downloaded.
    assert (await api.client.get("/api/v1/files", headers=host)).json()["total"] == 0
    assert (
        await api.client.get(f"/api/v1/files/{pending['file']['id']}", headers=host)
    ).status_code == 404

    bad = await api.client.put(
        pending["upload_url"],
        content=b"\x00\x01junk",
        headers={**host, "Content-Type": "application/pdf"},
    )
    assert bad.status_code == 415
    response = await api.client.put(
        pending["upload_url"], content=PDF, headers={**host, "Content-Type": "application/pdf"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["size"] == len(PDF)
    again = await api.client.put(pending["upload_url"], content=PDF, headers=host)
    assert again.status_code == 404
    assert await usage(platform_connection, acme.id) == (len(PDF), 1)


async def test_patch_and_delete(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    category = await add_taxonomy(platform_connection, acme.id, "categories", "Skills")
    file = (await upload(api, acme, host, category=category, language="it")).json()

    response = await api.client.patch(
        f"/api/v1/files/{file['id']}",
        json={"title": "Renamed", "category": None, "language": "de"},
        headers=host,
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["title"], changed["category"], changed["language"]) == ("Renamed", None, "de")
    assert changed["sha256"] == file["sha256"]
    response = await api.client.patch(f"/api/v1/files/{file['id']}", json={"size": 1}, headers=host)
    assert response.status_code in (400, 422)

    assert (await api.client.delete(f"/api/v1/files/{file['id']}", headers=host)).status_code == 204
    assert (await api.client.get(f"/api/v1/files/{file['id']}", headers=host)).status_code == 404
    assert (await api.client.delete(f"/api/v1/files/{file['id']}", headers=host)).status_code == 404
    assert await stored_keys(app, acme.id) == []
    assert await usage(platform_connection, acme.id) == (0, 0)
    kinds = await platform_connection.fetch(
        "SELECT kind FROM usage_events WHERE tenant_id = $1 AND kind NOT IN ('login', 'serve') ORDER BY occurred_at",
        uuid.UUID(acme.id),
    )
    assert [k["kind"] for k in kinds] == ["upload", "delete"]


async def test_roles(api: Api, platform_connection: asyncpg.Connection) -> None:
    acme = await api.provision("acme")
    file = (await upload(api, acme, await api.token(acme))).json()
    viewer = {"Host": acme.host, **await user_with_role(api, acme, platform_connection, "viewer")}
    editor = {"Host": acme.host, **await user_with_role(api, acme, platform_connection, "editor")}

    assert (await api.client.get("/api/v1/files", headers=viewer)).status_code == 200
    assert (
        await api.client.get(f"/api/v1/files/{file['id']}/download", headers=viewer)
    ).status_code == 200
    for response in (
        await upload(api, acme, viewer),
        await api.client.patch(f"/api/v1/files/{file['id']}", json={"title": "x"}, headers=viewer),
        await api.client.delete(f"/api/v1/files/{file['id']}", headers=viewer),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_role"
    assert (await upload(api, acme, editor)).status_code == 201
    assert (
        await api.client.delete(f"/api/v1/files/{file['id']}", headers=editor)
    ).status_code == 204


async def test_list_filters_sort_and_search(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    skills = await add_taxonomy(platform_connection, acme.id, "categories", "Skills")
    mentors = await add_taxonomy(platform_connection, acme.id, "audiences", "Mentor/Coach")
    a = (
        await upload(
            api, acme, host, title="Alpha 100%", category=skills, language="en", audiences=[mentors]
        )
    ).json()
    b = (
        await upload(
            api,
            acme,
            host,
            pdf_of_size(2000),
            title="Beta",
            description="about conflict",
            language="it",
        )
    ).json()
    png = (CORPUS / "image.png").read_bytes()
    c = (
        await upload(
            api, acme, host, png, filename="c.png", content_type="image/png", title="Gamma"
        )
    ).json()

    async def ids(query: str) -> list[str]:
        response = await api.client.get(f"/api/v1/files?{query}", headers=host)
        assert response.status_code == 200, response.text
        return [f["id"] for f in response.json()["items"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]
    assert await ids("sort=title") == [a["id"], b["id"], c["id"]]
    assert (
        await ids("sort=-size") == [b["id"], a["id"], c["id"]]
        or (await ids("sort=-size"))[0] == b["id"]
    )
    assert await ids(f"category={skills}") == [a["id"]]
    assert await ids("language=it") == [b["id"]]
    assert await ids(f"audience={mentors}") == [a["id"]]
    assert await ids("content_type=image/png") == [c["id"]]
    assert await ids("q=conflict") == [b["id"]]
    assert await ids("q=100%25") == [a["id"]]  # % is searched literally
    assert await ids("q=_") == []
    assert await ids("limit=1&offset=1") == [b["id"]]
    page = (await api.client.get("/api/v1/files?limit=1&offset=5", headers=host)).json()
    assert page["items"] == []
    assert page["total"] == 3
    assert (await api.client.get("/api/v1/files?sort=owner", headers=host)).status_code == 400
    assert (await api.client.get("/api/v1/files?category=nope", headers=host)).status_code == 400


async def test_stats_include_empty_groups(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    skills = await add_taxonomy(platform_connection, acme.id, "categories", "Skills")
    await add_taxonomy(platform_connection, acme.id, "categories", "Soft skills")
    mentors = await add_taxonomy(platform_connection, acme.id, "audiences", "Mentor/Coach")
    await add_taxonomy(platform_connection, acme.id, "audiences", "Mentee/Coachee")
    await upload(api, acme, host, category=skills, language="en", audiences=[mentors])
    await upload(api, acme, host, pdf_of_size(1000), language="en")

    stats = (await api.client.get("/api/v1/files/stats", headers=host)).json()
    assert stats["files"] == 2
    assert stats["bytes"] == len(PDF) + 1000
    assert {(g["name"], g["files"]) for g in stats["by_category"]} == {
        ("Skills", 1),
        ("Soft skills", 0),
        (None, 1),
    }
    assert {(g["name"], g["files"]) for g in stats["by_audience"]} == {
        ("Mentor/Coach", 1),
        ("Mentee/Coachee", 0),
    }
    assert stats["by_language"] == [
        {"key": "en", "name": "en", "files": 2, "bytes": len(PDF) + 1000}
    ]
    assert stats["by_content_type"][0]["key"] == "application/pdf"


async def test_concurrent_puts_to_one_pending_file_store_it_once(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection, settings: Settings
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    pending = (
        await api.client.post(
            "/api/v1/files", json={"title": "Raw", "filename": "raw.pdf"}, headers=host
        )
    ).json()
    content = pdf_of_size(2_000_000)
    with serve(create_app(settings)) as base_url:  # real overlap, as above
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            responses = await asyncio.gather(
                *(
                    http.put(
                        pending["upload_url"],
                        content=content,
                        headers={**host, "Content-Type": "application/pdf"},
                    )
                    for _ in range(3)
                )
            )
    assert sorted(r.status_code for r in responses) == [200, 404, 404]
    assert await usage(platform_connection, acme.id) == (len(content), 1)
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/files/{pending['file']['id']}"]


async def test_stats_rollup_follows_every_change(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    host = {"Host": acme.host, **await api.token(acme)}
    skills = await add_taxonomy(platform_connection, acme.id, "categories", "Skills")
    soft = await add_taxonomy(platform_connection, acme.id, "categories", "Soft skills")
    mentors = await add_taxonomy(platform_connection, acme.id, "audiences", "Mentor/Coach")
    mentees = await add_taxonomy(platform_connection, acme.id, "audiences", "Mentee/Coachee")
    a = (
        await upload(api, acme, host, category=skills, language="en", audiences=[mentors, mentees])
    ).json()
    b = (
        await upload(
            api, acme, host, pdf_of_size(5000), category=soft, language="it", audiences=[mentors]
        )
    ).json()
    await upload(
        api,
        acme,
        host,
        (CORPUS / "image.png").read_bytes(),
        filename="p.png",
        content_type="image/png",
    )
    await assert_rollup_matches_scan(platform_connection, acme.id)

    patched = await api.client.patch(
        f"/api/v1/files/{a['id']}",
        json={"category": soft, "language": None, "audiences": [mentees]},
        headers=host,
    )
    assert patched.status_code == 200
    await assert_rollup_matches_scan(platform_connection, acme.id)
    assert (await api.client.delete(f"/api/v1/files/{b['id']}", headers=host)).status_code == 204
    await assert_rollup_matches_scan(platform_connection, acme.id)
    # Taxonomy deleted under the files: the database changes the files, the rollup follows.
    assert (
        await api.client.delete(f"/api/v1/admin/categories/{soft}", headers=host)
    ).status_code == 204
    assert (
        await api.client.delete(f"/api/v1/admin/audiences/{mentees}", headers=host)
    ).status_code == 204
    await assert_rollup_matches_scan(platform_connection, acme.id)

    stats = (await api.client.get("/api/v1/files/stats", headers=host)).json()
    assert stats["files"] == 2
    assert {(g["name"], g["files"]) for g in stats["by_category"]} == {("Skills", 0), (None, 2)}
    assert {(g["name"], g["files"]) for g in stats["by_audience"]} == {("Mentor/Coach", 0)}
    assert [g["key"] for g in stats["by_language"]] == [None]
