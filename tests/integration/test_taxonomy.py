"""Taxonomy: per-tenant categories and audiences, admin CRUD, read-only lists, manifest seeding."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from tenantry.commands import apply_manifests
from tenantry.config import Settings
from tenantry.manifests import ManifestError, load_manifests
from tests.integration.conftest import Api, Tenant

RESOURCES = [("categories", "category"), ("audiences", "audience")]


async def _owner(api: Api, tenant: Tenant) -> dict[str, str]:
    return {"Host": tenant.host, **(await api.token(tenant))}


async def _viewer(api: Api, tenant: Tenant) -> dict[str, str]:
    body = {"email": "viewer@example.com", "password": "viewer-password"}
    signup = await api.client.post("/api/v1/auth/signup", json=body, headers={"Host": tenant.host})
    assert signup.status_code == 202, signup.text
    login = await api.login(tenant, **body)
    assert login.status_code == 200, login.text
    return {"Host": tenant.host, "Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.mark.parametrize(("plural", "noun"), RESOURCES)
async def test_crud_happy_path(api: Api, plural: str, noun: str) -> None:
    acme = await api.provision("acme")
    headers = await _owner(api, acme)
    base = f"/api/v1/admin/{plural}"

    created = await api.client.post(base, json={"name": "  Soft skills "}, headers=headers)
    assert created.status_code == 201, created.text
    term = created.json()
    assert set(term) == {"id", "name", "created_at"}
    assert term["name"] == "Soft skills"  # trimmed
    uuid.UUID(term["id"])
    assert term["created_at"].endswith("Z")
    for name in ("Conflict resolution", "Skills"):
        response = await api.client.post(base, json={"name": name}, headers=headers)
        assert response.status_code == 201, response.text

    listed = (await api.client.get(base, headers=headers)).json()
    assert [item["name"] for item in listed["items"]] == [
        "Conflict resolution",
        "Skills",
        "Soft skills",
    ]
    assert (listed["total"], listed["limit"], listed["offset"]) == (3, 20, 0)
    page = (await api.client.get(f"{base}?limit=1&offset=1", headers=headers)).json()
    assert [item["name"] for item in page["items"]] == ["Skills"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)

    one = await api.client.get(f"{base}/{term['id']}", headers=headers)
    assert one.status_code == 200
    assert one.json() == term

    renamed = await api.client.patch(
        f"{base}/{term['id']}", json={"name": "People skills"}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**term, "name": "People skills"}
    # Renaming to its own name is not a conflict.
    same = await api.client.patch(
        f"{base}/{term['id']}", json={"name": "People skills"}, headers=headers
    )
    assert same.status_code == 200

    deleted = await api.client.delete(f"{base}/{term['id']}", headers=headers)
    assert deleted.status_code == 204
    gone = await api.client.get(f"{base}/{term['id']}", headers=headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == f"{noun}_not_found"
    again = await api.client.delete(f"{base}/{term['id']}", headers=headers)
    assert again.status_code == 404
    assert (await api.client.get(base, headers=headers)).json()["total"] == 2


@pytest.mark.parametrize(("plural", "noun"), RESOURCES)
async def test_duplicate_name_is_409(api: Api, plural: str, noun: str) -> None:
    acme = await api.provision("acme")
    headers = await _owner(api, acme)
    base = f"/api/v1/admin/{plural}"
    first = (await api.client.post(base, json={"name": "Skills"}, headers=headers)).json()
    other = (await api.client.post(base, json={"name": "Other"}, headers=headers)).json()

    for response in (
        await api.client.post(base, json={"name": " Skills "}, headers=headers),
        await api.client.patch(f"{base}/{other['id']}", json={"name": "Skills"}, headers=headers),
    ):
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["code"] == f"{noun}_exists"
        assert problem["errors"][0]["field"] == "name"
    # The failed writes changed nothing.
    names = [item["name"] for item in (await api.client.get(base, headers=headers)).json()["items"]]
    assert names == ["Other", "Skills"]
    assert (await api.client.get(f"{base}/{first['id']}", headers=headers)).status_code == 200

    # Another tenant may use the same name.
    globex = await api.provision("globex")
    response = await api.client.post(
        base, json={"name": "Skills"}, headers=await _owner(api, globex)
    )
    assert response.status_code == 201


@pytest.mark.parametrize(("plural", "noun"), RESOURCES)
async def test_another_tenants_term_is_404(api: Api, plural: str, noun: str) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    acme_headers, globex_headers = await _owner(api, acme), await _owner(api, globex)
    base = f"/api/v1/admin/{plural}"
    secret = (await api.client.post(base, json={"name": "Acme only"}, headers=acme_headers)).json()
    url = f"{base}/{secret['id']}"

    attacks = [
        await api.client.get(url, headers=globex_headers),
        await api.client.patch(url, json={"name": "Pwned"}, headers=globex_headers),
        await api.client.delete(url, headers=globex_headers),
        await api.client.get(f"{base}/{uuid.uuid4()}", headers=globex_headers),
    ]
    for response in attacks:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == f"{noun}_not_found"
    # The cross-tenant answer is the same as for an id that never existed.
    assert attacks[0].json()["title"] == attacks[3].json()["title"]

    for path in (base, f"/api/v1/{plural}"):
        listed = (await api.client.get(path, headers=globex_headers)).json()
        assert listed["items"] == []
        assert listed["total"] == 0
    # Untouched on its own tenant.
    response = await api.client.get(url, headers=acme_headers)
    assert response.status_code == 200
    assert response.json()["name"] == "Acme only"


@pytest.mark.parametrize(("plural", "noun"), RESOURCES)
async def test_viewers_read_but_do_not_manage(api: Api, plural: str, noun: str) -> None:
    tenant = await api.provision("open", settings={"allow_signup": True})
    owner = await _owner(api, tenant)
    term = (
        await api.client.post(f"/api/v1/admin/{plural}", json={"name": "Skills"}, headers=owner)
    ).json()
    viewer = await _viewer(api, tenant)
    base = f"/api/v1/admin/{plural}"

    refused = [
        await api.client.get(base, headers=viewer),
        await api.client.post(base, json={"name": "Mine"}, headers=viewer),
        await api.client.get(f"{base}/{term['id']}", headers=viewer),
        await api.client.patch(f"{base}/{term['id']}", json={"name": "Mine"}, headers=viewer),
        await api.client.delete(f"{base}/{term['id']}", headers=viewer),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "insufficient_role"

    readable = await api.client.get(f"/api/v1/{plural}", headers=viewer)
    assert readable.status_code == 200
    assert readable.json() == {"items": [term], "total": 1, "limit": 20, "offset": 0}
    # Nothing changed behind the refusals.
    assert (await api.client.get(f"{base}/{term['id']}", headers=owner)).json() == term


async def test_taxonomy_needs_a_token_of_the_tenant(api: Api) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    for path in ("/api/v1/categories", "/api/v1/admin/audiences"):
        anonymous = await api.client.get(path, headers={"Host": acme.host})
        assert anonymous.status_code == 401
        foreign = await api.client.get(
            path, headers={"Host": acme.host, **(await api.token(globex))}
        )
        assert foreign.status_code in (401, 403)


@pytest.mark.parametrize(("plural", "noun"), RESOURCES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": ""}, id="empty"),
        pytest.param({"name": "   "}, id="blank"),
        pytest.param({"name": "x" * 101}, id="too-long"),
        pytest.param({"name": 7}, id="not-a-string"),
        pytest.param({}, id="missing"),
        pytest.param({"name": "ok", "extra": 1}, id="unknown-field"),
    ],
)
async def test_bad_names_are_rejected_with_the_field_named(
    api: Api, plural: str, noun: str, body: dict[str, object]
) -> None:
    acme = await api.provision("acme")
    headers = await _owner(api, acme)
    base = f"/api/v1/admin/{plural}"
    term = (await api.client.post(base, json={"name": "Skills"}, headers=headers)).json()

    for response in (
        await api.client.post(base, json=body, headers=headers),
        await api.client.patch(f"{base}/{term['id']}", json=body, headers=headers),
    ):
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "validation_error"
        field = "extra" if "extra" in body else "name"
        assert any(
            field in error["field"] or field in error["message"] for error in problem["errors"]
        ), problem
    assert (await api.client.get(base, headers=headers)).json()["total"] == 1


async def test_longest_name_is_accepted(api: Api) -> None:
    acme = await api.provision("acme")
    response = await api.client.post(
        "/api/v1/admin/categories", json={"name": "x" * 100}, headers=await _owner(api, acme)
    )
    assert response.status_code == 201
    assert response.json()["name"] == "x" * 100


@pytest.mark.parametrize("plural", ["categories", "audiences"])
@pytest.mark.parametrize("term_id", ["not-a-uuid", "1", "' OR 1=1 --"])
async def test_non_uuid_ids_are_never_500(api: Api, plural: str, term_id: str) -> None:
    acme = await api.provision("acme")
    headers = await _owner(api, acme)
    url = f"/api/v1/admin/{plural}/{term_id}"
    for response in (
        await api.client.get(url, headers=headers),
        await api.client.patch(url, json={"name": "x"}, headers=headers),
        await api.client.delete(url, headers=headers),
    ):
        assert response.status_code in (400, 404), response.text


@pytest.mark.parametrize("limit", ["0", "101", "x"])
async def test_bad_paging_is_400(api: Api, limit: str) -> None:
    acme = await api.provision("acme")
    response = await api.client.get(
        f"/api/v1/categories?limit={limit}", headers=await _owner(api, acme)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


async def test_deleting_terms_keeps_the_files(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    headers = await _owner(api, acme)
    category = (
        await api.client.post("/api/v1/admin/categories", json={"name": "Skills"}, headers=headers)
    ).json()
    audience = (
        await api.client.post("/api/v1/admin/audiences", json={"name": "Mentees"}, headers=headers)
    ).json()
    # A file filed under both, written directly: this test is about the taxonomy's deletes.
    file_id = await platform_connection.fetchval(
        """INSERT INTO files (tenant_id, title, category_id, original_filename, storage_key)
           VALUES ($1, 'Guide', $2, 'guide.pdf', 'k') RETURNING id""",
        uuid.UUID(acme.id),
        uuid.UUID(category["id"]),
    )
    await platform_connection.execute(
        "INSERT INTO file_audiences (tenant_id, file_id, audience_id) VALUES ($1, $2, $3)",
        uuid.UUID(acme.id),
        file_id,
        uuid.UUID(audience["id"]),
    )

    response = await api.client.delete(
        f"/api/v1/admin/categories/{category['id']}", headers=headers
    )
    assert response.status_code == 204
    row = await platform_connection.fetchrow("SELECT title, category_id FROM files")
    assert tuple(row) == ("Guide", None)

    response = await api.client.delete(f"/api/v1/admin/audiences/{audience['id']}", headers=headers)
    assert response.status_code == 204
    assert await platform_connection.fetchval("SELECT count(*) FROM file_audiences") == 0
    assert await platform_connection.fetchval("SELECT count(*) FROM files") == 1


async def _taxonomy(connection: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await connection.fetch(
        f"SELECT t.slug, x.name FROM {table} x JOIN tenants t ON t.id = x.tenant_id "
        "ORDER BY t.slug, x.name"
    )
    return [tuple(row) for row in rows]


async def test_manifests_seed_the_taxonomy_idempotently(
    api: Api,
    settings: Settings,
    project_root: Path,
    tmp_path: Path,
    platform_connection: asyncpg.Connection,
) -> None:
    manifests = load_manifests(project_root / "tenants")
    assert await apply_manifests(settings, manifests) == {"acme": "created", "pack": "created"}
    assert await _taxonomy(platform_connection, "categories") == [
        ("acme", "Compliance"),
        ("acme", "Onboarding"),
        ("pack", "Conflict resolution"),
        ("pack", "Skills"),
        ("pack", "Soft skills"),
    ]
    assert await _taxonomy(platform_connection, "audiences") == [
        ("acme", "Employees"),
        ("acme", "Managers"),
        ("pack", "Mentee/Coachee"),
        ("pack", "Mentor/Coach"),
    ]
    snapshot = await platform_connection.fetch("SELECT * FROM categories ORDER BY id")

    # The seeded names are the tenant's own, through its API.
    pack = Tenant("", "pack", "pack.localhost", "admin@pack.example", "pack-dev-password")
    headers = await _owner(api, pack)
    listed = (await api.client.get("/api/v1/categories", headers=headers)).json()
    assert [item["name"] for item in listed["items"]] == [
        "Conflict resolution",
        "Skills",
        "Soft skills",
    ]

    # An admin's own addition survives a re-apply, which changes nothing.
    response = await api.client.post(
        "/api/v1/admin/audiences", json={"name": "Parents"}, headers=headers
    )
    assert response.status_code == 201
    assert await apply_manifests(settings, manifests) == {"acme": "unchanged", "pack": "unchanged"}
    assert await platform_connection.fetch("SELECT * FROM categories ORDER BY id") == snapshot
    assert ("pack", "Parents") in await _taxonomy(platform_connection, "audiences")

    # A name added to the manifest is created and counts as an update; deleted ones come back.
    text = (project_root / "tenants" / "acme.toml").read_text()
    assert 'categories = ["Onboarding", "Compliance"]' in text
    text = text.replace(
        'categories = ["Onboarding", "Compliance"]',
        'categories = ["Onboarding", "Compliance", "Safety"]',
    )
    (tmp_path / "acme.toml").write_text(text)
    assert await apply_manifests(settings, load_manifests(tmp_path)) == {"acme": "updated"}
    assert ("acme", "Safety") in await _taxonomy(platform_connection, "categories")
    assert await apply_manifests(settings, load_manifests(tmp_path)) == {"acme": "unchanged"}


@pytest.mark.parametrize("name", ['""', '"   "', f'"{"x" * 101}"'])
def test_manifest_with_a_bad_name_is_refused(project_root: Path, tmp_path: Path, name: str) -> None:
    text = (project_root / "tenants" / "acme.toml").read_text()
    text = text.replace('categories = ["Onboarding", "Compliance"]', f"categories = [{name}]")
    (tmp_path / "acme.toml").write_text(text)
    with pytest.raises(ManifestError, match="categories"):
        load_manifests(tmp_path)
