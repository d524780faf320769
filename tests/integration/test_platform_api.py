"""The operator's provisioning API."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import Api


async def test_create_returns_the_tenant_with_default_plan(api: Api) -> None:
    response = await api.client.post(
        "/platform/v1/tenants",
        json={
            "slug": "acme",
            "name": "Acme",
            "domains": ["Learn.Acme.Example"],
            "admin": {"email": "owner@acme.example", "password": "owner-password"},
        },
        headers=api.operator,
    )
    assert response.status_code == 201
    body = response.json()
    uuid.UUID(body["id"])
    assert body["slug"] == "acme"
    assert body["status"] == "active"
    assert body["domains"] == ["learn.acme.example"]
    assert body["quotas"] == {"storage_bytes": 10 * 1024**3, "max_file_bytes": 2 * 1024**3}
    assert body["host"] == "acme.localhost"
    assert body["created_at"].endswith("Z")


async def test_taken_slug_is_409_and_nothing_half_written(api: Api) -> None:
    await api.provision("acme")
    response = await api.client.post(
        "/platform/v1/tenants",
        json={
            "slug": "acme",
            "name": "Other",
            "admin": {"email": "x@y.example", "password": "password123"},
        },
        headers=api.operator,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "slug_taken"
    listed = (await api.client.get("/platform/v1/tenants", headers=api.operator)).json()
    assert listed["total"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "Bad Slug", "name": "x"}, "slug"),
        ({"slug": "www", "name": "x"}, "slug"),
        ({"slug": "ok", "name": ""}, "name"),
        ({"slug": "ok", "name": "x", "domains": ["not a domain"]}, "domain"),
        ({"slug": "ok", "name": "x", "quotas": {"storage_bytes": -1}}, "quotas.storage_bytes"),
        (
            {"slug": "ok", "name": "x", "admin": {"email": "nope", "password": "password123"}},
            "admin.email",
        ),
        (
            {"slug": "ok", "name": "x", "admin": {"email": "a@b.example", "password": "short"}},
            "admin.password",
        ),
    ],
)
async def test_bad_input_names_the_field(api: Api, body: dict[str, object], field: str) -> None:
    payload = {"admin": {"email": "a@b.example", "password": "password123"}, **body}
    response = await api.client.post("/platform/v1/tenants", json=payload, headers=api.operator)
    assert response.status_code in (400, 422)
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(
        field in error["field"] or field in error["message"] for error in problem["errors"]
    ), problem


async def test_list_paginates_and_filters_by_status(api: Api) -> None:
    tenants = [await api.provision(f"tenant-{i}") for i in range(5)]
    await api.client.post(f"/platform/v1/tenants/{tenants[0].id}/suspend", headers=api.operator)
    page = (
        await api.client.get("/platform/v1/tenants?limit=2&offset=2", headers=api.operator)
    ).json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 2
    assert [t["slug"] for t in page["items"]] == ["tenant-2", "tenant-3"]
    suspended = (
        await api.client.get("/platform/v1/tenants?status=suspended", headers=api.operator)
    ).json()
    assert [t["slug"] for t in suspended["items"]] == ["tenant-0"]
    response = await api.client.get("/platform/v1/tenants?limit=101", headers=api.operator)
    assert response.status_code == 400


async def test_patch_changes_plan_quotas_settings_and_branding(api: Api) -> None:
    acme = await api.provision("acme")
    response = await api.client.patch(
        f"/platform/v1/tenants/{acme.id}",
        json={
            "name": "Acme Corp",
            "plan": "pro",
            "quotas": {"max_file_bytes": 1024},
            "settings": {"allow_signup": True},
            "branding": {"primary_color": "#112233"},
        },
        headers=api.operator,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Acme Corp"
    assert body["plan"] == "pro"
    assert body["quotas"] == {"storage_bytes": 10 * 1024**3, "max_file_bytes": 1024}
    assert body["settings"]["allow_signup"] is True
    assert body["branding"]["primary_color"] == "#112233"
    # The change is visible to the tenant's public branding at once (cache invalidated).
    branding = (await api.client.get("/api/v1/branding", headers={"Host": acme.host})).json()
    assert branding["primary_color"] == "#112233"
    assert branding["name"] == "Acme Corp"
    assert branding["allow_signup"] is True


async def test_patch_rejects_bad_settings(api: Api) -> None:
    acme = await api.provision("acme")
    response = await api.client.patch(
        f"/platform/v1/tenants/{acme.id}",
        json={"settings": {"download_url_ttl_seconds": 1}},
        headers=api.operator,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "settings.download_url_ttl_seconds"


async def test_missing_tenant_is_404_and_bad_id_is_400(api: Api) -> None:
    response = await api.client.get(f"/platform/v1/tenants/{uuid.uuid4()}", headers=api.operator)
    assert response.status_code == 404
    assert response.json()["code"] == "tenant_not_found"
    response = await api.client.get("/platform/v1/tenants/not-a-uuid", headers=api.operator)
    assert response.status_code in (400, 404)
    assert response.status_code != 500


async def test_platform_routes_need_an_operator(api: Api) -> None:
    response = await api.client.get("/platform/v1/tenants")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"
