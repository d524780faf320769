"""Tenant branding: admins edit the plain values and upload a logo (SVG sanitised), the public
reads both per host with HTTP caching, every change is audited, the usage report shows the logo."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import anyio.to_thread
import asyncpg
import httpx
import pytest
from litestar import Litestar

from tenantry.tenancy.branding import MAX_LOGO_BYTES
from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import CORPUS, PDF, stored_keys, user_with_role

PNG = (CORPUS / "image.png").read_bytes()
GIF = (CORPUS / "image.gif").read_bytes()
WEBP = (CORPUS / "image.webp").read_bytes()
JPEG = (CORPUS / "photo-jfif.jpg").read_bytes()
ADMIN = "/api/v1/admin/branding"
LOGO = f"{ADMIN}/logo"
SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
CIRCLE = '<circle cx="5" cy="5" r="4" fill="#123456"/>'


def svg(inner: str, attributes: str = "") -> bytes:
    return f'{SVG_OPEN} viewBox="0 0 10 10"{attributes}>{inner}</svg>'.encode()


async def admin_of(api: Api, slug: str) -> tuple[Tenant, dict[str, str]]:
    tenant = await api.provision(slug)
    return tenant, {"Host": tenant.host, **(await api.token(tenant))}


async def put_logo(
    api: Api, headers: dict[str, str], body: bytes, content_type: str | None
) -> httpx.Response:
    extra = {"Content-Type": content_type} if content_type else {}
    return await api.client.put(LOGO, content=body, headers={**headers, **extra})


async def audit_rows(platform: asyncpg.Connection, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's branding entries of the audit log (provisioning writes its own)."""
    rows = await platform.fetch(
        "SELECT action, actor_type, actor_id, target_type, target_id, summary, request_id "
        "FROM audit_log WHERE tenant_id = $1 AND action LIKE 'branding.%' "
        "ORDER BY occurred_at, action",
        uuid.UUID(tenant.id),
    )
    return [
        {**dict(row), "summary": json.loads(row["summary"])}
        if isinstance(row["summary"], str)
        else dict(row)
        for row in rows
    ]


# -- the plain values ---------------------------------------------------------------------------


async def test_patch_changes_the_brand_everywhere_and_is_audited(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme, headers = await admin_of(api, "acme")
    change = {
        "display_name": "Acme Media",
        "primary_color": "#0a7d5a",
        "support_email": "help@acme.example",
        "theme": {"font": "Inter, sans-serif", "radius": 8, "ratio": 1.5, "dark_mode": True},
    }

    response = await api.client.patch(ADMIN, json=change, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        **change,
        "accent_color": "#f59e0b",
        "logo": None,
    }
    assert (await api.client.get(ADMIN, headers=headers)).json() == response.json()
    public = (await api.client.get("/api/v1/branding", headers={"Host": acme.host})).json()
    assert {key: public[key] for key in change} == change
    # Only what changed is audited: the old and new values, and who changed them.
    [row] = await audit_rows(platform_connection, acme)
    assert (row["action"], row["actor_type"], row["target_type"]) == (
        "branding.updated",
        "user",
        "branding",
    )
    assert row["summary"]["before"] == {
        "display_name": None,
        "primary_color": "#1f6feb",
        "support_email": None,
        "theme": {},
    }
    assert row["summary"]["after"] == change
    assert row["request_id"]

    # The same values again change nothing, and audit nothing.
    again = await api.client.patch(ADMIN, json=change, headers=headers)
    assert again.status_code == 200
    assert len(await audit_rows(platform_connection, acme)) == 1
    cleared = await api.client.patch(ADMIN, json={"display_name": None}, headers=headers)
    assert cleared.json()["display_name"] is None
    public = (await api.client.get("/api/v1/branding", headers={"Host": acme.host})).json()
    assert public["display_name"] == "Acme"  # the tenant's name shows again


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"primary_color": "red"}, "primary_color"),
        ({"primary_color": "#12345"}, "primary_color"),
        ({"accent_color": "#gggggg"}, "accent_color"),
        ({"accent_color": None}, "accent_color"),
        ({"support_email": "not an email"}, "support_email"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"theme": {"font": "Inter; background: red"}}, "theme.font"),
        ({"theme": {"font": "a { color: red }"}}, "theme.font"),
        ({"theme": {"bg": "url(https://evil.example/x.png)"}}, "theme.bg"),
        ({"theme": {"bg": "URL(x)"}}, "theme.bg"),
        ({"theme": {"width": "expression(alert(1))"}}, "theme.width"),
        ({"theme": {"font": "@import 'x'"}}, "theme.font"),
        ({"theme": {"font": "<script>"}}, "theme.font"),
        ({"theme": {"font": "u\\72l(x)"}}, "theme.font"),
        ({"theme": {"font": "two\nlines"}}, "theme.font"),
        ({"theme": {"font": "x" * 201}}, "theme.font"),
        ({"theme": {"nested": {"a": 1}}}, "theme.nested"),
        ({"theme": {"list": [1]}}, "theme.list"),
        ({"theme": {"radius": 10**7}}, "theme.radius"),
        ({"theme": {"Font": "Inter"}}, "theme.Font"),
        ({"theme": {"1x": "Inter"}}, "theme.1x"),
        ({"theme": {"a" * 33: 1}}, "theme." + "a" * 33),
        ({"theme": {f"k{n}": n for n in range(33)}}, "theme"),
        ({"theme": "font: Inter"}, "theme"),
        ({"logo_url": "https://cdn.example/logo.png"}, "logo_url"),
        ({"logo": {"content_type": "image/png", "size": 1, "sha256": "00"}}, "logo"),
        ({"colour": "#000000"}, "colour"),
    ],
)
async def test_bad_values_are_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    _, headers = await admin_of(api, "acme")

    response = await api.client.patch(ADMIN, json=change, headers=headers)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_field"
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert (await api.client.get(ADMIN, headers=headers)).json()["theme"] == {}


async def test_malformed_and_oversized_bodies(api: Api) -> None:
    _, headers = await admin_of(api, "acme")
    for body, status, code in [
        (b"{", 400, "invalid_json"),
        (b"[]", 422, "invalid_field"),
        (b"", 400, "invalid_json"),
        (b'{"display_name": "' + b"x" * 70_000 + b'"}', 413, "body_too_large"),
    ]:
        response = await api.client.patch(
            ADMIN, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()["code"]) == (status, code), body[:20]


async def test_only_admins_and_owners_manage_the_brand(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme, owner = await admin_of(api, "acme")
    host = {"Host": acme.host}
    admin = await user_with_role(api, acme, platform_connection, "admin")
    assert (await api.client.patch(ADMIN, json={}, headers={**host, **admin})).status_code == 200
    for role in ("editor", "viewer"):
        auth = {**host, **(await user_with_role(api, acme, platform_connection, role))}
        for method, path, kwargs in [
            ("GET", ADMIN, {}),
            ("PATCH", ADMIN, {"json": {"display_name": "pwned"}}),
            ("PUT", LOGO, {"content": PNG, "headers": {**auth, "Content-Type": "image/png"}}),
            ("DELETE", LOGO, {}),
        ]:
            response = await api.client.request(method, path, **{"headers": auth, **kwargs})
            assert (response.status_code, response.json()["code"]) == (
                403,
                "insufficient_role",
            ), (role, method, path)
    anonymous = await api.client.get(ADMIN, headers=host)
    assert anonymous.status_code == 401
    assert await stored_keys(api.client.app, acme.id) == []
    assert (await api.client.get(ADMIN, headers=owner)).json()["display_name"] is None


# -- the logo -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (JPEG, "image/jpg"), (WEBP, "image/webp")],
)
async def test_raster_logos_are_stored_as_sent(
    api: Api, app: Litestar, body: bytes, content_type: str
) -> None:
    acme, headers = await admin_of(api, "acme")

    response = await put_logo(api, headers, body, content_type)

    assert response.status_code == 200, response.text
    logo = response.json()["logo"]
    sha256 = hashlib.sha256(body).hexdigest()
    assert {key: logo[key] for key in ("size", "sha256")} == {"size": len(body), "sha256": sha256}
    assert logo["url"] == f"http://{acme.host}/api/v1/branding/logo?v={sha256[:16]}"
    assert await stored_keys(app, acme.id) == [f"tenants/{acme.id}/branding/logo"]
    served = await api.client.get(logo["url"])
    assert (served.status_code, served.content) == (200, body)
    assert served.headers["content-type"] == logo["content_type"]


@pytest.mark.parametrize(
    ("name", "document", "kept", "removed"),
    [
        (
            "script",
            svg(f"<script>alert(document.cookie)</script>{CIRCLE}"),
            [CIRCLE.removesuffix("/>")],
            ["<script", "alert"],
        ),
        (
            "onload",
            svg(CIRCLE.replace("/>", ' onclick="steal()"/>'), ' onload="alert(1)"'),
            ['<circle cx="5"'],
            ["onload", "onclick", "alert", "steal"],
        ),
        (
            "external-href",
            svg(
                '<defs><path id="mark" d="M0 0h9v9z"/></defs><use href="#mark"/>'
                '<use xlink:href="#mark" x="1"/>'
                '<use href="https://evil.example/sprite.svg#mark"/>'
                '<use xlink:href="data:image/svg+xml;base64,PHN2Zz4="/>'
                '<image href="https://evil.example/track.png"/>'
            ),
            ['<use href="#mark">', '<use xlink:href="#mark" x="1">'],
            ["evil.example", "data:", "<image"],
        ),
        (
            "foreign-object",
            svg(
                "<foreignObject><div xmlns='http://www.w3.org/1999/xhtml'>"
                "<script>alert(1)</script><iframe src='https://evil.example'/></div>"
                f"</foreignObject>{CIRCLE}"
            ),
            ["<circle"],
            ["foreignObject", "<div", "iframe", "alert"],
        ),
        (
            "style",
            svg(
                "<style>@import url(https://evil.example/x.css);</style>"
                "<style>circle { stroke: #000 }</style>"
                '<rect width="2" height="2" style="fill: url(https://evil.example/p)"/>'
                '<rect width="3" height="3" fill="url(#grad)" style="fill: blue"/>'
                '<linearGradient id="grad"><stop offset="0" stop-color="#fff"/></linearGradient>'
            ),
            [
                "<style>circle { stroke: #000 }</style>",
                '<rect width="2" height="2">',
                'fill="url(#grad)" style="fill: blue"',
            ],
            ["@import", "evil.example"],
        ),
        (
            "links-and-animation",
            svg(
                '<a href="javascript:alert(1)"><circle r="1"/></a>'
                '<set attributeName="href" to="javascript:alert(1)"/>'
                '<text x="1" y="5">Acme &amp; Co</text>'
            ),
            ['<text x="1" y="5">Acme &amp; Co</text>'],
            ["javascript", "<a ", "<set"],
        ),
    ],
)
async def test_svg_logos_are_sanitised(
    api: Api, name: str, document: bytes, kept: list[str], removed: list[str]
) -> None:
    _, headers = await admin_of(api, "acme")

    response = await put_logo(api, headers, document, "image/svg+xml")

    assert response.status_code == 200, response.text
    served = await api.client.get(response.json()["logo"]["url"])
    assert served.status_code == 200
    cleaned = served.text
    assert cleaned.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    for part in kept:
        assert part in cleaned, (name, cleaned)
    for part in removed:
        assert part not in cleaned, (name, cleaned)
    assert response.json()["logo"]["size"] == len(served.content)
    assert response.json()["logo"]["sha256"] == hashlib.sha256(served.content).hexdigest()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'.encode()
        for n in range(1, 10)
    )
    + b']><svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>'
)


@pytest.mark.parametrize(
    ("name", "document", "detail"),
    [
        ("billion-laughs", BILLION_LAUGHS, "DTD or declare entities"),
        (
            "external-entity",
            b'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "DTD or declare entities",
        ),
        ("only-script", svg("<script>alert(1)</script>"), "nothing drawable"),
        ("only-defs", svg("<defs><circle r='3'/></defs>"), "nothing drawable"),
        ("only-foreign", svg("<foreignObject><p>hi</p></foreignObject>"), "nothing drawable"),
        ("external-use-only", svg('<use href="https://evil.example/a.svg#x"/>'), "nothing"),
        ("malformed", b'<svg xmlns="http://www.w3.org/2000/svg"><circle>', "not well-formed"),
        ("no-namespace", b'<svg><circle r="1"/></svg>', "SVG's namespace"),
        ("html", b"<html><body><svg/></body></html>", "SVG's namespace"),
        ("too-deep", svg("<g>" * 40 + CIRCLE + "</g>" * 40), "nests deeper"),
    ],
)
async def test_svgs_that_cannot_be_made_safe_are_refused(
    api: Api, app: Litestar, name: str, document: bytes, detail: str
) -> None:
    acme, headers = await admin_of(api, "acme")

    response = await put_logo(api, headers, document, "image/svg+xml")

    assert (response.status_code, response.json()["code"]) == (422, "invalid_svg"), response.text
    assert detail in response.json()["detail"]
    assert await stored_keys(app, acme.id) == []
    assert (await api.client.get(ADMIN, headers=headers)).json()["logo"] is None


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (GIF, "image/png", 415, "content_type_mismatch"),
        (PDF, "image/png", 415, "content_type_mismatch"),
        (PNG, "image/jpeg", 415, "content_type_mismatch"),
        (PNG, "image/svg+xml", 415, "content_type_mismatch"),
        (svg(CIRCLE), "image/png", 415, "content_type_mismatch"),
        (b"just text", "image/svg+xml", 415, "content_type_mismatch"),
        (GIF, "image/gif", 415, "unsupported_media_type"),
        (PDF, "application/pdf", 415, "unsupported_media_type"),
        (PNG, "application/octet-stream", 415, "unsupported_media_type"),
        (PNG, None, 415, "unsupported_media_type"),
        (b"", "image/png", 422, "empty_file"),
    ],
)
async def test_logos_that_are_not_what_they_claim_are_refused(
    api: Api, app: Litestar, body: bytes, content_type: str | None, status: int, code: str
) -> None:
    acme, headers = await admin_of(api, "acme")

    response = await put_logo(api, headers, body, content_type)

    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await stored_keys(app, acme.id) == []


async def test_a_logo_over_1_mib_is_413(api: Api, app: Litestar) -> None:
    acme, headers = await admin_of(api, "acme")
    exactly = PNG + b"\0" * (MAX_LOGO_BYTES - len(PNG))  # bytes after IEND: still a PNG

    too_large = await put_logo(api, headers, exactly + b"\0", "image/png")
    assert (too_large.status_code, too_large.json()["code"]) == (413, "body_too_large")
    # Without a Content-Length the body is counted as it arrives.
    half = PNG + b"\0" * (MAX_LOGO_BYTES // 2)
    assert await _status_of_streamed_put(api, app, headers, [half, half, half]) == 413
    assert await stored_keys(app, acme.id) == []

    fits = await put_logo(api, headers, exactly, "image/png")
    assert fits.status_code == 200, fits.text
    assert fits.json()["logo"]["size"] == MAX_LOGO_BYTES


async def _status_of_streamed_put(
    api: Api, app: Litestar, headers: dict[str, str], chunks: list[bytes]
) -> int:
    """PUT the logo as ASGI body messages with no Content-Length; the answer's status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": LOGO,
        "raw_path": LOGO.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"host", headers["Host"].encode()),
            (b"authorization", headers["Authorization"].encode()),
            (b"content-type", b"image/png"),
        ],
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # The app's pools live on the test client's event loop (its own thread): run it there.
    await anyio.to_thread.run_sync(api.client.blocking_portal.call, app, scope, receive, send)
    return statuses[0]


async def test_logo_replace_and_remove_are_audited_without_the_bytes(
    api: Api, app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    acme, headers = await admin_of(api, "acme")
    first = (await put_logo(api, headers, PNG, "image/png")).json()["logo"]
    second = (await put_logo(api, headers, svg(CIRCLE), "image/svg+xml")).json()["logo"]

    removed = await api.client.delete(LOGO, headers=headers)

    assert removed.status_code == 204
    assert await stored_keys(app, acme.id) == []
    assert (await api.client.get(ADMIN, headers=headers)).json()["logo"] is None
    gone = await api.client.get("/api/v1/branding/logo", headers={"Host": acme.host})
    assert (gone.status_code, gone.json()["code"]) == (404, "logo_not_found")
    again = await api.client.delete(LOGO, headers=headers)  # nothing left: no change
    assert again.status_code == 204

    rows = await audit_rows(platform_connection, acme)
    assert [row["action"] for row in rows] == [
        "branding.logo_set",
        "branding.logo_set",
        "branding.logo_removed",
    ]
    record = {key: first[key] for key in ("content_type", "size", "sha256")}
    replaced = {key: second[key] for key in ("content_type", "size", "sha256")}
    assert [row["summary"] for row in rows] == [
        {"before": {"logo": None}, "after": {"logo": record}},
        {"before": {"logo": record}, "after": {"logo": replaced}},
        {"before": {"logo": replaced}, "after": {"logo": None}},
    ]
    token = headers["Authorization"].removeprefix("Bearer ")
    text = json.dumps([row["summary"] for row in rows])
    for secret in (token, acme.owner_password, base64.b64encode(PNG).decode(), "<circle"):
        assert secret not in text
    owner_id = (await api.client.get("/api/v1/auth/me", headers=headers)).json()["id"]
    assert {str(row["actor_id"]) for row in rows} == {owner_id}


async def test_the_operator_cannot_forge_the_logo_record_and_keeps_it_when_editing(
    api: Api,
) -> None:
    acme, headers = await admin_of(api, "acme")
    logo = (await put_logo(api, headers, PNG, "image/png")).json()["logo"]
    tenant_url = f"/platform/v1/tenants/{acme.id}"

    forged = await api.client.patch(
        tenant_url,
        json={"branding": {"logo": {"content_type": "image/svg+xml", "size": 1, "sha256": "0"}}},
        headers=api.operator,
    )
    assert (forged.status_code, forged.json()["errors"][0]["field"]) == (422, "branding.logo")
    edited = await api.client.patch(
        tenant_url, json={"branding": {"accent_color": "#000000"}}, headers=api.operator
    )
    assert edited.status_code == 200, edited.text
    assert "logo" not in edited.json()["branding"]

    current = (await api.client.get(ADMIN, headers=headers)).json()
    assert (current["accent_color"], current["logo"]) == ("#000000", logo)


# -- what the public sees -----------------------------------------------------------------------


async def test_public_branding_is_per_host_with_its_logo_and_an_etag(api: Api) -> None:
    acme, acme_admin = await admin_of(api, "acme")
    globex, globex_admin = await admin_of(api, "globex")
    await api.client.patch(
        ADMIN, json={"primary_color": "#aa0000", "theme": {"font": "Acme"}}, headers=acme_admin
    )
    await api.client.patch(ADMIN, json={"primary_color": "#00bb00"}, headers=globex_admin)
    logo = (await put_logo(api, acme_admin, PNG, "image/png")).json()["logo"]

    acme_public = await api.client.get("/api/v1/branding", headers={"Host": acme.host})
    globex_public = await api.client.get("/api/v1/branding", headers={"Host": globex.host})

    assert acme_public.status_code == globex_public.status_code == 200
    a, b = acme_public.json(), globex_public.json()
    assert (a["slug"], a["primary_color"], a["theme"]) == ("acme", "#aa0000", {"font": "Acme"})
    assert (b["slug"], b["primary_color"], b["theme"]) == ("globex", "#00bb00", {})
    assert a["logo_url"] == logo["url"]
    assert a["logo_url"].startswith(f"http://{acme.host}/api/v1/branding/logo?v=")
    assert b["logo_url"] is None
    assert acme_public.headers["etag"] != globex_public.headers["etag"]
    for response in (acme_public, globex_public):
        assert response.headers["cache-control"] == "public, max-age=60"
        assert response.headers["etag"].startswith('"')
        assert "X-Tenant" in response.headers["vary"]

    etag = acme_public.headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await api.client.get(
            "/api/v1/branding", headers={"Host": acme.host, "If-None-Match": if_none_match}
        )
        assert (cached.status_code, cached.content) == (304, b""), if_none_match
        assert cached.headers["etag"] == etag
    # Globex's tag means nothing to Acme's host, and a change makes a new tag.
    stale = await api.client.get(
        "/api/v1/branding",
        headers={"Host": acme.host, "If-None-Match": globex_public.headers["etag"]},
    )
    assert stale.status_code == 200
    await api.client.patch(ADMIN, json={"display_name": "Acme Media"}, headers=acme_admin)
    changed = await api.client.get(
        "/api/v1/branding", headers={"Host": acme.host, "If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.json()["display_name"] == "Acme Media"
    assert changed.headers["etag"] != etag


async def test_the_logo_route_serves_the_bytes_with_cache_and_safety_headers(api: Api) -> None:
    acme, headers = await admin_of(api, "acme")
    host = {"Host": acme.host}
    missing = await api.client.get("/api/v1/branding/logo", headers=host)
    assert (missing.status_code, missing.json()["code"]) == (404, "logo_not_found")

    png = (await put_logo(api, headers, PNG, "image/png")).json()["logo"]
    version = png["sha256"][:16]
    served = await api.client.get("/api/v1/branding/logo", params={"v": version}, headers=host)
    assert (served.status_code, served.content) == (200, PNG)
    assert served.headers["content-type"] == "image/png"
    assert served.headers["etag"] == f'"{png["sha256"]}"'
    assert served.headers["cache-control"] == "public, max-age=86400"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in served.headers
    for params in ({}, {"v": "0123456789abcdef"}):  # no version, or an old one: a short life
        short = await api.client.get("/api/v1/branding/logo", params=params, headers=host)
        assert (short.content, short.headers["cache-control"]) == (PNG, "public, max-age=60")
    cached = await api.client.get(
        "/api/v1/branding/logo", headers={**host, "If-None-Match": served.headers["etag"]}
    )
    assert (cached.status_code, cached.content) == (304, b"")

    drawing = (await put_logo(api, headers, svg(CIRCLE), "image/svg+xml")).json()["logo"]
    served = await api.client.get(drawing["url"])
    assert served.headers["content-type"] == "image/svg+xml"
    assert served.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert served.headers["x-content-type-options"] == "nosniff"
    old = await api.client.get(
        "/api/v1/branding/logo", headers={**host, "If-None-Match": f'"{png["sha256"]}"'}
    )
    assert (old.status_code, old.headers["etag"]) == (200, f'"{drawing["sha256"]}"')


async def test_a_tenants_logo_is_not_served_for_another_tenant(api: Api) -> None:
    acme, acme_admin = await admin_of(api, "acme")
    globex, globex_admin = await admin_of(api, "globex")
    await put_logo(api, acme_admin, PNG, "image/png")

    for headers in (
        {"Host": globex.host},
        {"X-Tenant": "globex"},
        {"Authorization": globex_admin["Authorization"]},  # a shared host: B's token decides
        {"Authorization": globex_admin["Authorization"], "X-Tenant": "acme"},
    ):
        response = await api.client.get("/api/v1/branding/logo", headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "logo_not_found")
        branding = await api.client.get("/api/v1/branding", headers=headers)
        assert (branding.json()["slug"], branding.json()["logo_url"]) == ("globex", None)
    foreign = await api.client.get(
        "/api/v1/branding/logo",
        headers={"Host": acme.host, "Authorization": globex_admin["Authorization"]},
    )
    assert (foreign.status_code, foreign.json()["code"]) == (403, "tenant_mismatch")


async def test_the_usage_report_inlines_the_uploaded_logo(api: Api) -> None:
    acme, headers = await admin_of(api, "acme")
    before = await api.client.get("/api/v1/usage/report", headers=headers)
    assert 'class="monogram"' in before.text
    assert "data:image" not in before.text

    await put_logo(api, headers, PNG, "image/png")
    after = await api.client.get("/api/v1/usage/report", headers=headers)

    assert after.status_code == 200
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in after.text
    assert 'class="monogram"' not in after.text
    assert "img-src data:" in after.headers["content-security-policy"]
    operator = await api.client.get(
        f"/platform/v1/tenants/{acme.id}/usage/report", headers=api.operator
    )
    assert "data:image/png;base64," in operator.text
