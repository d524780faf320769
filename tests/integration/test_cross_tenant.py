"""Cross-tenant attack matrix over HTTP: tenant B attacks tenant A with B's own valid tokens.

Tenant A (acme) holds data: files with taxonomy, a pending upload, two users, live refresh
tokens, an uploaded logo (B has one of its own). Tenant B (globex) calls every tenant-facing endpoint as its owner (the most privileged
tenant role), naming A's ids, A's credentials and A's refresh token, from four places:

- `own-host`: B's host (`globex.localhost`);
- `shared-host`: 127.0.0.1 with no Host override (the tenant comes from B's token);
- `shared-host+X-Tenant`: the same, plus `X-Tenant: acme` (must not switch the tenant);
- `victim-host`: A's host (always 403 `tenant_mismatch`).

Every attack is sent twice: once naming A's real data and once naming decoys that never existed
(random UUIDs, unknown emails, never-issued tokens). The two answers must be the same (status,
code and problem body), so B cannot even tell that A's object exists. After every attack, A's rows
in every tenant table, A's stored objects and B's files are exactly as before, and A still reads,
downloads and refreshes. `test_every_tenant_route_is_in_the_attack_matrix` fails the suite when a
route is added without a case here.

Building that world takes longer than an attack, so the attacks share one (built on first use,
per module and xdist worker): an attack that, answered as expected, changes B's data (`writes`)
gets a world of its own instead, and a failed test drops the shared world so the next test
starts from a new one. Attacks that share it still take their own snapshots before and after.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio.to_thread
import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engines import role_url
from tenantry.lib.zones import route_zone, zone_needs_tenant
from tenantry.storage import LocalStore
from tests.conftest import connect_as, empty_database
from tests.integration.conftest import FAILED, Api, Tenant, operator_login
from tests.integration.files_support import (
    CORPUS,
    PDF,
    pdf_of_size,
    stored_keys,
    upload,
    user_with_role,
)

TUS = {"Tus-Resumable": "1.0.0"}
B_PDF = pdf_of_size(len(PDF) + 1234)  # B's content differs from A's (size and sha256)
A_OTHER_PDF = pdf_of_size(len(PDF) + 99)
# Logos: bytes after a PNG's end are still a PNG, so each tenant's differs.
PNG = (CORPUS / "image.png").read_bytes()
A_LOGO, B_LOGO, B_NEW_LOGO = PNG + b"acme", PNG + b"globex", PNG + b"globex-new"


# -- the world: A's data, B's data ----------------------------------------------------------------


@dataclass
class World:
    acme: Tenant
    globex: Tenant
    a_auth: dict[str, str]
    a_refresh: str
    b_auth: dict[str, str]
    a_file: dict[str, Any]
    b_file: dict[str, Any]
    # Names used in paths and bodies: "{a_file}", "{a_category_name}", ... Keys starting with
    # "a_" are A's data; the control request replaces each with a decoy that never existed.
    values: dict[str, str] = field(default_factory=dict)

    def decoys(self) -> dict[str, str]:
        decoy = {key: str(uuid.uuid4()) for key in self.values if key.startswith("a_")}
        decoy.update(
            a_title="never-existing-title",
            a_category_name="Never Existing Category",
            a_audience_name="Never Existing Audience",
            a_email=f"nobody-{uuid.uuid4().hex[:8]}@acme.example",
            a_password=self.values["a_password"],  # a password is not an identifier
            a_refresh=uuid.uuid4().hex + uuid.uuid4().hex,
            a_invitation=secrets.token_urlsafe(32),
            a_reset=secrets.token_urlsafe(32),
            a_domain=f"never-{uuid.uuid4().hex[:8]}.example",
        )
        decoy["a_category_b64"] = _b64(decoy["a_category"])
        return {**self.values, **decoy}

    def secrets(self) -> list[str]:
        """What must never appear in an answer to B, unless B's own request named it."""
        return [value for key, value in self.values.items() if key.startswith("a_")] + [
            self.acme.id,
            self.a_file["sha256"],
            hashlib.sha256(A_LOGO).hexdigest(),
        ]


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def _login(api: Api, tenant: Tenant) -> tuple[dict[str, str], str]:
    response = await api.login(tenant)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["refresh_token"]


async def _term(api: Api, tenant: Tenant, auth: dict[str, str], plural: str, name: str) -> str:
    response = await api.client.post(
        f"/api/v1/admin/{plural}", json={"name": name}, headers={"Host": tenant.host, **auth}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _logo(api: Api, tenant: Tenant, auth: dict[str, str], logo: bytes) -> dict[str, Any]:
    response = await api.client.put(
        "/api/v1/admin/branding/logo",
        content=logo,
        headers={"Host": tenant.host, "Content-Type": "image/png", **auth},
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["logo"])


async def _me(api: Api, tenant: Tenant, auth: dict[str, str]) -> dict[str, Any]:
    response = await api.client.get("/api/v1/auth/me", headers={"Host": tenant.host, **auth})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def build_world(api: Api, platform_connection: asyncpg.Connection) -> World:
    acme = await api.provision("acme")
    globex = await api.provision("globex", settings={"allow_signup": True})
    a_auth, a_refresh = await _login(api, acme)
    b_auth, _ = await _login(api, globex)

    a_category = await _term(api, acme, a_auth, "categories", "Acme Secret Category")
    a_audience = await _term(api, acme, a_auth, "audiences", "Acme Secret Audience")
    a_file = await upload(
        api,
        acme,
        a_auth,
        title="Acme-confidential-roadmap",
        description="acme internal",
        category=a_category,
        language="en",
        audiences=[a_audience],
    )
    assert a_file.status_code == 201, a_file.text
    a_editor = await user_with_role(api, acme, platform_connection, "editor")
    a_other = await upload(api, acme, a_editor, A_OTHER_PDF, title="Acme-other-file")
    assert a_other.status_code == 201, a_other.text
    a_pending = await api.client.post(
        "/api/v1/files",
        json={"title": "Acme-pending-upload", "filename": "pending.pdf"},
        headers={"Host": acme.host, **a_auth},
    )
    assert a_pending.status_code == 201, a_pending.text
    a_upload = await api.client.post(
        "/api/v1/uploads",
        json={
            "title": "Acme-direct-upload",
            "filename": "direct.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
        },
        headers={"Host": acme.host, **a_auth},
    )
    assert a_upload.status_code == 201, a_upload.text
    a_tus = await api.client.post(
        "/api/v1/uploads/tus",
        headers={
            "Host": acme.host,
            **a_auth,
            **TUS,
            "Upload-Length": str(len(PDF)),
            "Upload-Metadata": "title QWNtZS10dXMtdXBsb2Fk",  # "Acme-tus-upload"
        },
    )
    assert a_tus.status_code == 201, a_tus.text

    b_category = await _term(api, globex, b_auth, "categories", "Globex Category")
    b_audience = await _term(api, globex, b_auth, "audiences", "Globex Audience")
    b_file = await upload(
        api,
        globex,
        b_auth,
        B_PDF,
        title="Globex handbook",
        category=b_category,
        audiences=[b_audience],
    )
    assert b_file.status_code == 201, b_file.text
    a_logo = await _logo(api, acme, a_auth, A_LOGO)
    await _logo(api, globex, b_auth, B_LOGO)

    a_invited = await api.client.post(
        "/api/v1/admin/users",
        json={"email": "invited@acme.example", "role": "editor"},
        headers={"Host": acme.host, **a_auth},
    )
    assert a_invited.status_code == 201, a_invited.text
    a_key = await api.client.post(
        "/api/v1/admin/api-keys",
        json={"name": "acme back end", "role": "editor"},
        headers={"Host": acme.host, **a_auth},
    )
    assert a_key.status_code == 201, a_key.text
    a_domain = await api.client.post(
        "/api/v1/admin/domains",
        json={"domain": "media.acme.example"},
        headers={"Host": acme.host, **a_auth},
    )
    assert a_domain.status_code == 201, a_domain.text
    a_reset = secrets.token_urlsafe(32)
    await platform_connection.execute(
        "INSERT INTO user_tokens (tenant_id, user_id, purpose, token_hash, expires_at) "
        "VALUES ($1, $2, 'password_reset', $3, now() + interval '1 hour')",
        uuid.UUID(acme.id),
        uuid.UUID(str((await _me(api, acme, a_auth))["id"])),
        hashlib.sha256(a_reset.encode()).hexdigest(),
    )

    values = {
        "a_file": a_file.json()["id"],
        "a_invited": a_invited.json()["user"]["id"],
        "a_invitation": a_invited.json()["invitation"]["token"],
        "a_reset": a_reset,
        "a_api_key": a_key.json()["api_key"]["id"],
        "a_domain": "media.acme.example",
        "a_other_file": a_other.json()["id"],
        "a_pending": a_pending.json()["file"]["id"],
        "a_upload": a_upload.json()["id"],
        "a_upload_file": a_upload.json()["file_id"],
        "a_tus": a_tus.headers["location"].rsplit("/", 1)[1],
        "a_tus_file": a_tus.headers["tenantry-file-id"],
        "a_category": a_category,
        "a_category_b64": _b64(a_category),  # as tus metadata carries it
        "a_audience": a_audience,
        "a_owner": str((await _me(api, acme, a_auth))["id"]),
        "a_editor": str(a_other.json()["uploaded_by"]),
        "a_title": a_file.json()["title"],
        "a_category_name": "Acme Secret Category",
        "a_audience_name": "Acme Secret Audience",
        "a_email": acme.owner_email,
        "a_password": acme.owner_password,
        "a_refresh": a_refresh,
        "a_logo_version": a_logo["sha256"][:16],
        "b_file": b_file.json()["id"],
        "b_category": b_category,
        "b_audience": b_audience,
    }
    return World(acme, globex, a_auth, a_refresh, b_auth, a_file.json(), b_file.json(), values)


@dataclass
class Scene:
    """An app with its client, the operator's API helper and the world in its database."""

    settings: Settings
    app: Litestar
    api: Api
    world: World
    stack: AsyncExitStack

    @classmethod
    async def open(cls, settings: Settings) -> Scene:
        app = create_app(settings)
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                AsyncTestClient(app=app, base_url="http://127.0.0.1")
            )
            api = Api(client, await operator_login(settings, client))
            async with connect_as(role_url(settings, "platform")) as connection:
                world = await build_world(api, connection)
            # A's usage is in the rollups too, so that a report that leaked would show it.
            await anyio.to_thread.run_sync(
                client.blocking_portal.call, app.state.services.rollups.catch_up
            )
        except BaseException:
            await stack.aclose()
            await empty_database(settings)
            raise
        return cls(settings, app, api, world, stack)

    async def close(self) -> None:
        """Stop the app, then leave the database (and the local store) empty."""
        await self.stack.aclose()
        await empty_database(self.settings)


class SharedScene:
    """The scene of the attacks that leave it as it was: opened on first use, until dropped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._scene: Scene | None = None

    async def get(self) -> Scene:
        if self._scene is None:
            self._scene = await Scene.open(self.settings)
        return self._scene

    async def drop(self) -> None:
        if self._scene is not None:
            scene, self._scene = self._scene, None
            await scene.close()


@pytest.fixture(scope="module")
async def shared_scene(settings: Settings) -> AsyncIterator[SharedScene]:
    shared = SharedScene(settings)
    yield shared
    await shared.drop()


@pytest.fixture
async def scene(
    request: pytest.FixtureRequest, settings: Settings, shared_scene: SharedScene
) -> AsyncIterator[Scene]:
    callspec = getattr(request.node, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    if isinstance(case, Case) and case.writes:
        await shared_scene.drop()  # the two worlds cannot coexist: same tenant slugs
        own = await Scene.open(settings)
        try:
            yield own
        finally:
            await own.close()
        return
    yield await shared_scene.get()
    if request.node.stash.get(FAILED, False):
        await shared_scene.drop()  # whatever the failure left behind, the next test has a new one


# These replace the conftest's per-test app and client (and its clean database after each test):
# the scene's own are used, and closing a scene empties the database.
@pytest.fixture
def app(scene: Scene) -> Litestar:
    return scene.app


@pytest.fixture
def api(scene: Scene) -> Api:
    return scene.api


@pytest.fixture
def world(scene: Scene) -> World:
    return scene.world


# -- the attack table -----------------------------------------------------------------------------

Check = Callable[[World, httpx.Response], None]


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # a template over World.values
    status: int  # the expected answer on B's own host and on the shared host
    code: str | None = None  # the problem `code`, for error answers
    params: dict[str, str] | None = None
    json: Any = None
    form: dict[str, Any] | None = None  # multipart upload: these fields, then a PDF part
    raw: bytes | None = None  # a raw body (the two-step upload's content, a logo)
    raw_type: str = "application/pdf"
    headers: dict[str, str] | None = None  # more request headers (tus's)
    check: Check | None = None  # more about a successful answer
    # The expected answer changes B's data (a new term, user, revoked tokens): a world of its own.
    writes: bool = False
    # The expected answer revokes B's own access token: B logs in again before the control.
    revokes: bool = False

    def __str__(self) -> str:
        return self.id


def _fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format_map(values)
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, values) for value in template]
    return template


def files_listed(*keys: str, total: int | None = None) -> Check:
    """The listing holds exactly these files of `World.values` (B's own, never A's)."""

    def check(world: World, response: httpx.Response) -> None:
        page = response.json()
        assert {item["id"] for item in page["items"]} == {world.values[key] for key in keys}
        assert page["total"] == (len(keys) if total is None else total)

    return check


def terms_listed(key: str) -> Check:
    def check(world: World, response: httpx.Response) -> None:
        page = response.json()
        assert [item["id"] for item in page["items"]] == [world.values[key]]
        assert page["total"] == 1

    return check


def only_b_counted(world: World, response: httpx.Response) -> None:
    stats = response.json()
    assert (stats["files"], stats["bytes"]) == (1, len(B_PDF))
    assert [(g["key"], g["files"]) for g in stats["by_category"]] == [
        (world.values["b_category"], 1)
    ]
    assert [(g["key"], g["files"]) for g in stats["by_audience"]] == [
        (world.values["b_audience"], 1)
    ]
    for breakdown in ("by_language", "by_content_type"):
        assert sum(g["files"] for g in stats[breakdown]) == 1, breakdown
        assert sum(g["bytes"] for g in stats[breakdown]) == len(B_PDF), breakdown


def is_b_owner(world: World, response: httpx.Response) -> None:
    me = response.json()
    assert me["email"] == world.globex.owner_email
    assert me["tenant"] == {"id": world.globex.id, "slug": "globex", "name": "Globex"}


def is_b_branding(world: World, response: httpx.Response) -> None:
    branding = response.json()
    assert branding["slug"] == world.globex.slug
    assert branding["logo_url"].endswith(f"?v={hashlib.sha256(B_LOGO).hexdigest()[:16]}")


def is_b_logo(world: World, response: httpx.Response) -> None:
    assert response.content == B_LOGO
    assert response.headers["etag"] == f'"{hashlib.sha256(B_LOGO).hexdigest()}"'


def b_logo_recorded(logo: bytes) -> Check:
    """The admin's view of B's brand, with `logo` as B's logo."""

    def check(world: World, response: httpx.Response) -> None:
        assert response.json()["logo"]["sha256"] == hashlib.sha256(logo).hexdigest()

    return check


def b_renamed(world: World, response: httpx.Response) -> None:
    assert response.json()["display_name"] == "Globex Rebranded"


def only_b_users(world: World, response: httpx.Response) -> None:
    page = response.json()
    assert [u["email"] for u in page["items"]] == [world.globex.owner_email]
    assert page["total"] == 1


def no_items(world: World, response: httpx.Response) -> None:
    assert response.json()["total"] == 0


def no_domains(world: World, response: httpx.Response) -> None:
    assert response.json() == []


def is_b_settings(world: World, response: httpx.Response) -> None:
    assert response.json()["allow_signup"] is True  # B's; A does not allow signup


def only_b_audited(world: World, response: httpx.Response) -> None:
    """B's log names B and B's own things (its terms); the secrets check keeps A's out."""
    targets = {entry["target_id"] for entry in response.json()["items"]}
    b_own = {value for key, value in world.values.items() if key.startswith("b_")}
    assert world.globex.id in targets and targets <= {world.globex.id, *b_own}, targets


def only_b_usage(world: World, response: httpx.Response) -> None:
    """B's report counts B's upload and login only; groups and top files are B's keys."""
    report = response.json()
    assert report["tenant"]["id"] == world.globex.id
    totals = report["totals"]
    assert (totals["uploads"], totals["bytes_in"]) == (1, len(B_PDF)), totals
    assert (totals["storage_bytes"], totals["file_count"]) == (len(B_PDF), 1), totals
    assert (totals["logins"], totals["active_users"]) == (1, 1), totals
    assert totals["downloads"] == totals["deletes"] == 0, totals
    b_keys = {"", world.values["b_category"], world.values["b_audience"], world.values["b_file"]}
    b_keys |= {"upload", "download", "delete", "login", "signup", "serve", "owner", "en"}
    b_keys |= {"application/pdf"}
    assert {group["key"] for group in report["groups"]} <= b_keys, report["groups"]
    assert all(f["file_id"] == world.values["b_file"] for f in report["top_files"])


def is_b_report(world: World, response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "Globex" in response.text


def is_b_term(world: World, response: httpx.Response) -> None:
    assert response.json()["name"] in {"Acme Secret Category", "Acme Secret Audience"}


FILE = "/api/v1/files/{a_file}"
ADMIN_BRANDING = "/api/v1/admin/branding"
CASES = [
    # files: A's objects by id are 404, exactly like ids that never existed
    Case("file.get", "GET", FILE, 404, "file_not_found"),
    Case("file.patch", "PATCH", FILE, 404, "file_not_found", json={"title": "pwned"}),
    Case(
        "file.patch-to-b-category",
        "PATCH",
        FILE,
        404,
        "file_not_found",
        json={"category": "{b_category}"},
    ),
    Case("file.delete", "DELETE", FILE, 404, "file_not_found"),
    Case("file.download", "GET", FILE + "/download", 404, "file_not_found"),
    Case(
        "file.download-redirect",
        "GET",
        FILE + "/download",
        404,
        "file_not_found",
        params={"redirect": "true"},
    ),
    Case(
        "file.download-other",
        "GET",
        "/api/v1/files/{a_other_file}/download",
        404,
        "file_not_found",
    ),
    Case(
        "file.put-content-of-pending",
        "PUT",
        "/api/v1/files/{a_pending}/content",
        404,
        "file_not_found",
        raw=B_PDF,
    ),
    Case("file.get-pending", "GET", "/api/v1/files/{a_pending}", 404, "file_not_found"),
    # direct uploads: A's upload ids are 404 to B, and so is A's pending file
    Case(
        "upload-direct.complete",
        "POST",
        "/api/v1/uploads/{a_upload}/complete",
        404,
        "upload_not_found",
        json={"parts": [{"number": 1, "etag": '"' + "0" * 32 + '"'}]},
    ),
    Case("upload-direct.abort", "DELETE", "/api/v1/uploads/{a_upload}", 404, "upload_not_found"),
    Case("upload-direct.get-file", "GET", "/api/v1/files/{a_upload_file}", 404, "file_not_found"),
    # tus uploads: A's upload URLs are 404 to B (HEAD too: test_tus_uploads)
    Case(
        "upload-tus.patch",
        "PATCH",
        "/api/v1/uploads/tus/{a_tus}",
        404,
        "upload_not_found",
        raw=PDF,
        raw_type="application/offset+octet-stream",
        headers={**TUS, "Upload-Offset": "0"},
    ),
    Case(
        "upload-tus.terminate",
        "DELETE",
        "/api/v1/uploads/tus/{a_tus}",
        404,
        "upload_not_found",
        headers=TUS,
    ),
    Case("upload-tus.get-file", "GET", "/api/v1/files/{a_tus_file}", 404, "file_not_found"),
    Case(
        "upload-tus.a-category",
        "POST",
        "/api/v1/uploads/tus",
        422,
        "unknown_category",
        headers={
            **TUS,
            "Upload-Length": "10",
            "Upload-Metadata": "title eA==,category {a_category_b64}",
        },
    ),
    Case(
        "upload-direct.a-category",
        "POST",
        "/api/v1/uploads",
        422,
        "unknown_category",
        json={
            "title": "x",
            "filename": "x.pdf",
            "content_type": "application/pdf",
            "size": 10,
            "category": "{a_category}",
        },
    ),
    # B's own file cannot be pointed at A's taxonomy
    Case(
        "b-file.patch-a-category",
        "PATCH",
        "/api/v1/files/{b_file}",
        422,
        "unknown_category",
        json={"category": "{a_category}"},
    ),
    Case(
        "b-file.patch-a-audience",
        "PATCH",
        "/api/v1/files/{b_file}",
        422,
        "unknown_audience",
        json={"audiences": ["{b_audience}", "{a_audience}"]},
    ),
    # uploads naming A's taxonomy: refused, nothing stored
    Case(
        "upload.a-category",
        "POST",
        "/api/v1/files",
        422,
        "unknown_category",
        form={"title": "x", "category": "{a_category}"},
    ),
    Case(
        "upload.a-audience",
        "POST",
        "/api/v1/files",
        422,
        "unknown_audience",
        form={"title": "x", "audiences": ["{b_audience}", "{a_audience}"]},
    ),
    Case(
        "upload-pending.a-category",
        "POST",
        "/api/v1/files",
        422,
        "unknown_category",
        json={"title": "x", "filename": "x.pdf", "category": "{a_category}"},
    ),
    Case(
        "upload-pending.a-audience",
        "POST",
        "/api/v1/files",
        422,
        "unknown_audience",
        json={"title": "x", "filename": "x.pdf", "audiences": ["{a_audience}"]},
    ),
    # listings and stats: B sees and counts only its own
    Case("files.list", "GET", "/api/v1/files", 200, check=files_listed("b_file")),
    Case(
        "files.list-all-pages",
        "GET",
        "/api/v1/files",
        200,
        params={"limit": "100", "sort": "title"},
        check=files_listed("b_file"),
    ),
    Case(
        "files.list-offset",
        "GET",
        "/api/v1/files",
        200,
        params={"offset": "5"},
        check=files_listed(total=1),
    ),
    *(
        Case(f"files.list-{name}", "GET", "/api/v1/files", 200, params=params, check=files_listed())
        for name, params in [
            ("category", {"category": "{a_category}"}),
            ("audience", {"audience": "{a_audience}"}),
            ("uploaded_by-owner", {"uploaded_by": "{a_owner}"}),
            ("uploaded_by-editor", {"uploaded_by": "{a_editor}"}),
            ("q-title", {"q": "{a_title}"}),
            ("q-title-fragment", {"q": "Acme"}),
            ("language", {"language": "en"}),
            ("all-filters", {"category": "{a_category}", "audience": "{a_audience}"}),
        ]
    ),
    Case(
        "files.list-content_type",
        "GET",
        "/api/v1/files",
        200,
        params={"content_type": "application/pdf", "created_after": "2000-01-01T00:00:00Z"},
        check=files_listed("b_file"),
    ),
    Case("files.stats", "GET", "/api/v1/files/stats", 200, check=only_b_counted),
    # taxonomy: A's terms are 404 and never listed; A's names do not collide with B's
    *(
        case
        for plural, noun, key in [
            ("categories", "category", "a_category"),
            ("audiences", "audience", "a_audience"),
        ]
        for term in [f"/api/v1/admin/{plural}/{{{key}}}"]
        for case in [
            Case(f"{plural}.admin-get", "GET", term, 404, f"{noun}_not_found"),
            Case(
                f"{plural}.admin-rename",
                "PATCH",
                term,
                404,
                f"{noun}_not_found",
                json={"name": "pwned"},
            ),
            Case(f"{plural}.admin-delete", "DELETE", term, 404, f"{noun}_not_found"),
            Case(
                f"{plural}.admin-list",
                "GET",
                f"/api/v1/admin/{plural}",
                200,
                params={"limit": "100"},
                check=terms_listed(f"b_{key[2:]}"),
            ),
            Case(
                f"{plural}.list",
                "GET",
                f"/api/v1/{plural}",
                200,
                params={"limit": "100"},
                check=terms_listed(f"b_{key[2:]}"),
            ),
            Case(
                f"{plural}.admin-create-a-name",
                "POST",
                f"/api/v1/admin/{plural}",
                201,
                json={"name": f"{{{key}_name}}"},
                check=is_b_term,
                writes=True,
            ),
        ]
    ),
    # auth: A's credentials and refresh token mean nothing to B's tenant
    Case(
        "auth.login-a-credentials",
        "POST",
        "/api/v1/auth/login",
        401,
        "invalid_credentials",
        json={"email": "{a_email}", "password": "{a_password}"},
    ),
    Case(
        "auth.refresh-a-token",
        "POST",
        "/api/v1/auth/refresh",
        401,
        "invalid_refresh_token",
        json={"refresh_token": "{a_refresh}"},
    ),
    Case(
        "auth.logout-a-token",
        "POST",
        "/api/v1/auth/logout",
        204,
        json={"refresh_token": "{a_refresh}"},
    ),
    Case("auth.logout-all", "POST", "/api/v1/auth/logout", 204, writes=True, revokes=True),
    Case("auth.me", "GET", "/api/v1/auth/me", 200, check=is_b_owner),
    Case(
        "auth.signup-a-email",  # B cannot probe A's accounts (nor its own: always 202)
        "POST",
        "/api/v1/auth/signup",
        202,
        json={"email": "{a_email}", "password": "globex-signup-password"},
        writes=True,
    ),
    # branding: B sees, changes and serves only its own brand and logo
    Case("branding", "GET", "/api/v1/branding", 200, check=is_b_branding),
    Case("branding.logo", "GET", "/api/v1/branding/logo", 200, check=is_b_logo),
    Case(
        "branding.logo-a-version",
        "GET",
        "/api/v1/branding/logo",
        200,
        params={"v": "{a_logo_version}"},
        check=is_b_logo,
    ),
    Case("branding.admin-get", "GET", ADMIN_BRANDING, 200, check=b_logo_recorded(B_LOGO)),
    Case(
        "branding.admin-patch",
        "PATCH",
        ADMIN_BRANDING,
        200,
        json={"display_name": "Globex Rebranded", "theme": {"font": "Pwned"}},
        check=b_renamed,
        writes=True,
    ),
    Case(
        "branding.admin-put-logo",
        "PUT",
        ADMIN_BRANDING + "/logo",
        200,
        raw=B_NEW_LOGO,
        raw_type="image/png",
        check=b_logo_recorded(B_NEW_LOGO),
        writes=True,
    ),
    Case("branding.admin-delete-logo", "DELETE", ADMIN_BRANDING + "/logo", 204, writes=True),
    # tenant administration: A's users are not B's to see or change
    Case("admin.users.list", "GET", "/api/v1/admin/users", 200, check=only_b_users),
    Case(
        "admin.users.search-a-email",
        "GET",
        "/api/v1/admin/users",
        200,
        params={"email": "{a_email}"},
        check=no_items,
    ),
    *(
        Case(
            f"admin.users.get-{who}",
            "GET",
            "/api/v1/admin/users/{" + who + "}",
            404,
            "user_not_found",
        )
        for who in ("a_owner", "a_editor", "a_invited")
    ),
    Case(
        "admin.users.patch-a-owner",
        "PATCH",
        "/api/v1/admin/users/{a_owner}",
        404,
        "user_not_found",
        json={"disabled": True, "role": "viewer"},
    ),
    Case(
        "admin.users.delete-a-editor",
        "DELETE",
        "/api/v1/admin/users/{a_editor}",
        404,
        "user_not_found",
    ),
    Case(
        "admin.users.create-a-email",  # A's email is free in B: another tenant's people
        "POST",
        "/api/v1/admin/users",
        201,
        json={"email": "{a_email}", "role": "viewer", "password": "globex-member-password"},
        writes=True,
    ),
    Case("admin.api-keys.list", "GET", "/api/v1/admin/api-keys", 200, check=no_items),
    Case("admin.settings", "GET", "/api/v1/admin/settings", 200, check=is_b_settings),
    Case(
        "admin.settings.patch",
        "PATCH",
        "/api/v1/admin/settings",
        200,
        json={"allow_signup": False, "download_url_ttl_seconds": 60},
        writes=True,
    ),
    Case("admin.audit", "GET", "/api/v1/admin/audit", 200, check=only_b_audited),
    Case("admin.domains", "GET", "/api/v1/admin/domains", 200, check=no_domains),
    Case(
        "admin.domains.verify-a-domain",
        "POST",
        "/api/v1/admin/domains/{a_domain}/verify",
        404,
        "domain_not_found",
    ),
    Case(
        "admin.domains.remove-a-domain",
        "DELETE",
        "/api/v1/admin/domains/{a_domain}",
        404,
        "domain_not_found",
    ),
    Case(
        "admin.domains.request",
        "POST",
        "/api/v1/admin/domains",
        201,
        json={"domain": "b-{a_domain}"},  # a fresh name each time (attack and control)
        writes=True,
    ),
    Case(
        "admin.api-keys.revoke-a-key",
        "DELETE",
        "/api/v1/admin/api-keys/{a_api_key}",
        404,
        "api_key_not_found",
    ),
    Case(
        "admin.api-keys.create",
        "POST",
        "/api/v1/admin/api-keys",
        201,
        json={"name": "{a_title}", "role": "viewer"},
        writes=True,
    ),
    Case(
        "auth.accept-a-invitation",
        "POST",
        "/api/v1/auth/accept-invite",
        404,
        "token_not_found",
        json={"token": "{a_invitation}", "password": "taken-over-password"},
    ),
    Case(
        "auth.reset-with-a-token",
        "POST",
        "/api/v1/auth/reset-password",
        404,
        "token_not_found",
        json={"token": "{a_reset}", "password": "taken-over-password"},
    ),
    Case(
        "auth.forgot-a-email",
        "POST",
        "/api/v1/auth/forgot-password",
        202,
        json={"email": "{a_email}"},
    ),
    Case(
        "auth.password-with-a-password",
        "POST",
        "/api/v1/auth/password",
        403,
        "invalid_password",
        json={"current_password": "{a_password}", "new_password": "taken-over-password"},
    ),
    Case(
        "auth.me-rename",
        "PATCH",
        "/api/v1/auth/me",
        200,
        json={"display_name": "B renamed"},
        check=is_b_owner,
        writes=True,
    ),
    # usage: B's reports hold B's numbers only, whatever the grouping
    Case("usage", "GET", "/api/v1/usage", 200, check=only_b_usage),
    *(
        Case(
            f"usage-by-{group}",
            "GET",
            "/api/v1/usage",
            200,
            params={"group_by": group, "granularity": "month"},
            check=only_b_usage,
        )
        for group in ("kind", "category", "language", "audience", "role", "content_type")
    ),
    Case("usage.report", "GET", "/api/v1/usage/report", 200, check=is_b_report),
]

HOSTS: dict[str, Callable[[World], dict[str, str]]] = {
    "own-host": lambda world: {"Host": world.globex.host},
    "shared-host": lambda world: {},
    "shared-host+X-Tenant": lambda world: {"X-Tenant": world.acme.slug},
    "victim-host": lambda world: {"Host": world.acme.host},
}


async def send(
    api: Api, case: Case, values: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if case.json is not None:
        kwargs["json"] = _fill(case.json, values)
    if case.form is not None:
        kwargs["data"] = _fill(case.form, values)
        kwargs["files"] = {"file": ("attack.pdf", B_PDF, "application/pdf")}
    if case.raw is not None:
        kwargs["content"] = case.raw
        headers = {**headers, "Content-Type": case.raw_type}
    headers = {**headers, **_fill(case.headers or {}, values)}
    return await api.client.request(
        case.method,
        _fill(case.path, values),
        params=_fill(case.params, values),
        headers=headers,
        follow_redirects=False,
        **kwargs,
    )


def _request_text(case: Case, values: dict[str, str]) -> str:
    headers = _fill(case.headers or {}, values)
    metadata = [  # tus metadata names its values in base64
        base64.b64decode(item.partition(" ")[2]).decode()
        for item in headers.get("Upload-Metadata", "").split(",")
    ]
    return json.dumps(
        [
            _fill(case.path, values),
            _fill([case.params, case.json, case.form], values),
            headers,
            metadata,
        ]
    )


def _problem(response: httpx.Response, values: dict[str, str]) -> Any:
    """An error body with the request's own values put back as their names."""
    text = response.text
    for key, value in sorted(values.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, "{" + key + "}")
    body = json.loads(text)
    body.pop("request_id", None)
    return body


# -- invariants -----------------------------------------------------------------------------------


async def tenant_rows(connection: asyncpg.Connection, tenant_id: str) -> dict[str, list[str]]:
    """Every row of the tenant in every tenant table (and its tenants and domains rows)."""
    tables = await connection.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'tenant_id' ORDER BY table_name"
    )
    assert {"files", "users", "refresh_tokens", "categories", "audiences"} <= {
        t["table_name"] for t in tables
    }
    tid = uuid.UUID(tenant_id)
    snapshot = {
        "tenants": [
            repr(tuple(await connection.fetchrow("SELECT * FROM tenants WHERE id = $1", tid)))
        ]
    }
    for table in (t["table_name"] for t in tables):
        rows = await connection.fetch(f"SELECT * FROM {table} WHERE tenant_id = $1", tid)
        snapshot[table] = sorted(repr(tuple(row)) for row in rows)
    return snapshot


async def b_files(
    connection: asyncpg.Connection, app: Litestar, tenant_id: str
) -> tuple[list[str], list[str]]:
    """B's file rows and their objects (its logo is the branding cases' to check)."""
    rows = await connection.fetch(
        "SELECT * FROM files WHERE tenant_id = $1 ORDER BY id", uuid.UUID(tenant_id)
    )
    keys = [key for key in await stored_keys(app, tenant_id) if "/files/" in key]
    return [repr(tuple(row)) for row in rows], keys


async def assert_a_still_served(api: Api, world: World) -> None:
    host = {"Host": world.acme.host, **world.a_auth}
    file_id = world.a_file["id"]
    response = await api.client.get(f"/api/v1/files/{file_id}", headers=host)
    assert response.status_code == 200, response.text
    assert response.json() == world.a_file
    link = await api.client.get(f"/api/v1/files/{file_id}/download", headers=host)
    assert link.status_code == 200, link.text
    content = await api.client.get(link.json()["url"])
    assert (content.status_code, content.content) == (200, PDF)
    logo = await api.client.get("/api/v1/branding/logo", headers={"Host": world.acme.host})
    assert (logo.status_code, logo.content) == (200, A_LOGO)
    refreshed = await api.client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": world.a_refresh},
        headers={"Host": world.acme.host},
    )
    assert refreshed.status_code == 200, refreshed.text
    # The refresh rotated A's token: the world keeps A's live one, for the next attack on it.
    world.a_refresh = world.values["a_refresh"] = refreshed.json()["refresh_token"]
    # The download's served bytes are metered in the background: in the table before the next
    # attack takes its snapshot of A's rows.
    served = api.client.app.state.services.served
    await anyio.to_thread.run_sync(api.client.blocking_portal.call, served.drain)


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", list(HOSTS))
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_b_cannot_reach_a(
    api: Api,
    app: Litestar,
    platform_connection: asyncpg.Connection,
    world: World,
    case: Case,
    where: str,
) -> None:
    a_before = await tenant_rows(platform_connection, world.acme.id)
    a_keys = await stored_keys(app, world.acme.id)
    b_before = await b_files(platform_connection, app, world.globex.id)
    headers = {**HOSTS[where](world), **world.b_auth}
    decoys = world.decoys()

    attack = await send(api, case, world.values, headers)
    if case.revokes and attack.status_code < 400:
        world.b_auth, _ = await _login(api, world.globex)
        headers = {**HOSTS[where](world), **world.b_auth}
    control = await send(api, case, decoys, headers)

    request = f"{case.method} {_fill(case.path, world.values)} {where}"
    expected = (403, "tenant_mismatch") if where == "victim-host" else (case.status, case.code)
    for response in (attack, control):
        code = response.json().get("code") if response.status_code >= 400 else None
        assert (response.status_code, code) == expected, f"{request}: {response.text}"
    if attack.status_code >= 400:  # the same problem, word for word, as for a decoy
        assert _problem(attack, world.values) == _problem(control, decoys), request
    elif case.check is not None:
        case.check(world, attack)
    asked = _request_text(case, world.values)
    for secret in world.secrets():
        if secret not in asked:
            assert secret not in attack.text, f"{request} leaks {secret!r}: {attack.text}"

    assert await tenant_rows(platform_connection, world.acme.id) == a_before, request
    assert await stored_keys(app, world.acme.id) == a_keys, request
    assert await b_files(platform_connection, app, world.globex.id) == b_before, request
    await assert_a_still_served(api, world)


def _route_pattern(path: str) -> re.Pattern[str]:
    uuid_pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    parts = re.split(r"(\{[^}]+\})", path)
    regex = ""
    for part in parts:
        if match := re.fullmatch(r"\{(\w+):(\w+)\}", part):
            regex += {"uuid": uuid_pattern, "path": ".+"}.get(match[2], "[^/]+")
        else:
            regex += re.escape(part)
    return re.compile(regex)


def test_every_tenant_route_is_in_the_attack_matrix(app: Litestar) -> None:
    """A tenant-facing route (under /api/, or in a zone that needs a tenant) without a case in
    CASES fails here: add its attack before shipping it."""
    tenant_routes: set[tuple[str, str]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            zone = route_zone({"route_handler": handler})  # type: ignore[typeddict-item]
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                if route.path.startswith("/api/") or zone_needs_tenant(zone):
                    tenant_routes.add((method, route.path))
    assert tenant_routes, "no tenant routes found"

    covered: set[tuple[str, str]] = set()
    for case in CASES:
        url = case.path.format_map(_Anything())
        matches = [
            route.path
            for route in app.routes
            if (case.method, route.path) in tenant_routes
            and _route_pattern(route.path).fullmatch(url)
        ]
        assert matches, f"case {case.id} names no tenant route: {case.method} {case.path}"
        covered.update((case.method, path) for path in matches)
    assert tenant_routes - covered == set(), "tenant routes with no cross-tenant attack case"


class _Anything(dict[str, str]):
    """Fills any placeholder with a fresh UUID (enough to route the path)."""

    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


# -- public routes on A's tenant, with no token ---------------------------------------------------

PUBLIC = [
    ("login-b-credentials", "/api/v1/auth/login", "b_credentials", 401, "invalid_credentials"),
    ("refresh-b-token", "/api/v1/auth/refresh", "b_refresh", 401, "invalid_refresh_token"),
]


@pytest.mark.parametrize("where", ["victim-host", "shared-host+X-Tenant"])
@pytest.mark.parametrize(
    ("name", "path", "body", "status", "code"), PUBLIC, ids=[p[0] for p in PUBLIC]
)
async def test_b_credentials_mean_nothing_to_a(
    api: Api,
    platform_connection: asyncpg.Connection,
    world: World,
    name: str,
    path: str,
    body: str,
    status: int,
    code: str,
    where: str,
) -> None:
    """B's owner logs in, or refreshes, against A's tenant (no bearer token): refused."""
    _, b_refresh = await _login(api, world.globex)
    bodies = {
        "b_credentials": {
            "email": world.globex.owner_email,
            "password": world.globex.owner_password,
        },
        "b_refresh": {"refresh_token": b_refresh},
    }
    headers = {"Host": world.acme.host} if where == "victim-host" else {"X-Tenant": "acme"}
    a_before = await tenant_rows(platform_connection, world.acme.id)
    response = await api.client.post(path, json=bodies[body], headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await tenant_rows(platform_connection, world.acme.id) == a_before
    # B's refresh token is still B's: the failed attempt did not spend or revoke it
    own = await api.client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": b_refresh},
        headers={"Host": world.globex.host},
    )
    assert own.status_code == 200, own.text


# -- signed download URLs -------------------------------------------------------------------------


def _key_of(tenant_id: str, file_id: str) -> str:
    return f"tenants/{tenant_id}/files/{file_id}"


Tamper = Callable[[World, str, dict[str, str]], tuple[str, dict[str, str]]]


def _swap_key(tenant: str, file: str) -> Tamper:
    """Keep the signed query, point the path at another object (`tenant`/`file` name World
    attributes or values)."""

    def tamper(world: World, key: str, query: dict[str, str]) -> tuple[str, dict[str, str]]:
        tenant_id = getattr(world, tenant).id
        file_id = world.values[file]
        return _key_of(tenant_id, file_id), query

    return tamper


def _change(name: str, value: Callable[[str], str] | None) -> Tamper:
    def tamper(world: World, key: str, query: dict[str, str]) -> tuple[str, dict[str, str]]:
        if value is None:
            return key, {k: v for k, v in query.items() if k != name}
        return key, {**query, name: value(query[name])}

    return tamper


# (name, whose signed URL is forged, how, expected status)
TAMPERING: list[tuple[str, str, Tamper, int]] = [
    ("a-url-key-swapped-to-b-object", "acme", _swap_key("globex", "b_file"), 404),
    ("a-url-key-swapped-to-other-a-object", "acme", _swap_key("acme", "a_other_file"), 404),
    ("a-url-key-under-b-prefix", "acme", _swap_key("globex", "a_file"), 404),
    ("b-url-key-swapped-to-a-object", "globex", _swap_key("acme", "a_file"), 404),
    ("b-url-key-swapped-to-other-a-object", "globex", _swap_key("acme", "a_other_file"), 404),
    ("a-url-expiry-extended", "acme", _change("exp", lambda v: str(int(v) + 3600)), 404),
    ("a-url-expiry-shortened", "acme", _change("exp", lambda v: str(int(v) - 1)), 404),
    ("a-url-expiry-in-the-past", "acme", _change("exp", lambda v: "1000000000"), 404),
    ("a-url-filename-changed", "acme", _change("fn", lambda v: "other.pdf"), 404),
    ("a-url-content-type-changed", "acme", _change("ct", lambda v: "text/html"), 404),
    ("a-url-signature-altered", "acme", _change("sig", lambda v: v[::-1]), 404),
    ("a-url-signature-dropped", "acme", _change("sig", None), 400),
]


async def _signed_url(api: Api, tenant: Tenant, auth: dict[str, str], file_id: str) -> str:
    response = await api.client.get(
        f"/api/v1/files/{file_id}/download", headers={"Host": tenant.host, **auth}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


@pytest.mark.parametrize(
    ("name", "source", "tamper", "status"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
async def test_a_signed_url_opens_exactly_one_object(
    api: Api, app: Litestar, world: World, name: str, source: str, tamper: Tamper, status: int
) -> None:
    if not isinstance(app.state.services.store, LocalStore):
        pytest.skip("app-signed URLs belong to the local store")
    tenant, auth, file, content = {
        "acme": (world.acme, world.a_auth, world.a_file, PDF),
        "globex": (world.globex, world.b_auth, world.b_file, B_PDF),
    }[source]
    url = urlsplit(await _signed_url(api, tenant, auth, file["id"]))
    key = url.path.removeprefix("/_store/")
    assert key == _key_of(tenant.id, file["id"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    new_key, new_query = tamper(world, key, query)
    assert (new_key, new_query) != (key, query)
    forged = f"/_store/{new_key}?{urlencode(new_query)}"
    for host in ({}, {"Host": world.acme.host}, {"Host": world.globex.host}):
        response = await api.client.get(forged, headers=host)
        assert response.status_code == status, f"GET {forged} {host}: {response.text}"
        for served in (PDF, A_OTHER_PDF, B_PDF):
            assert served not in response.content
    # the original URL still serves exactly its own bytes
    original = await api.client.get(url.geturl())
    assert (original.status_code, original.content) == (200, content)


# -- object keys ----------------------------------------------------------------------------------


async def test_every_object_key_is_under_its_tenants_prefix(
    app: Litestar, platform_connection: asyncpg.Connection, world: World
) -> None:
    store = app.state.services.store
    everything = sorted([key async for key in store.list_keys("tenants/")])
    rows = await platform_connection.fetch(
        "SELECT tenant_id::text AS tenant_id, id::text AS id, storage_key, status FROM files"
    )
    for row in rows:  # the key names the row's own tenant and file, pending or not
        assert row["storage_key"] == _key_of(row["tenant_id"], row["id"])
    logos = [f"tenants/{tenant.id}/branding/logo" for tenant in (world.acme, world.globex)]
    ready = sorted(row["storage_key"] for row in rows if row["status"] == "ready")
    assert everything == sorted(ready + logos)
    for tenant in (world.acme, world.globex):
        keys = await stored_keys(app, tenant.id)
        assert keys, tenant.slug
        assert all(key.startswith(f"tenants/{tenant.id}/") for key in keys)
        assert sorted(keys) == sorted(
            [
                row["storage_key"]
                for row in rows
                if row["status"] == "ready" and row["tenant_id"] == tenant.id
            ]
            + [f"tenants/{tenant.id}/branding/logo"]
        )
