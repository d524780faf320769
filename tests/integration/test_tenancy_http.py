"""Attacks across tenants over HTTP, and the tenancy rules of the design."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import Api


async def test_owner_logs_in_on_own_host_and_sees_own_tenant(api: Api) -> None:
    acme = await api.provision("acme")
    response = await api.client.get(
        "/api/v1/auth/me", headers={"Host": acme.host, **await api.token(acme)}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == acme.owner_email
    assert body["role"] == "owner"
    assert body["tenant"] == {"id": acme.id, "slug": "acme", "name": "Acme"}


async def test_token_of_a_on_host_of_b_is_tenant_mismatch(api: Api) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    response = await api.client.get(
        "/api/v1/auth/me", headers={"Host": globex.host, **await api.token(acme)}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "tenant_mismatch"


async def test_token_on_shared_host_reaches_only_its_tenant(api: Api) -> None:
    acme, _ = await api.provision("acme"), await api.provision("globex")
    response = await api.client.get("/api/v1/auth/me", headers=await api.token(acme))
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "acme"
    # X-Tenant cannot redirect an authenticated request to another tenant.
    response = await api.client.get(
        "/api/v1/auth/me", headers={"X-Tenant": "globex", **await api.token(acme)}
    )
    assert response.json()["tenant"]["slug"] == "acme"


async def test_unknown_host_is_404_unknown_tenant(api: Api) -> None:
    await api.provision("acme")
    for host in ("nobody.localhost", "evil.example.com"):
        response = await api.client.get("/api/v1/branding", headers={"Host": host})
        assert response.status_code == 404
        assert response.json()["code"] == "unknown_tenant"


async def test_custom_domain_resolves_and_is_exclusive(api: Api) -> None:
    acme = await api.provision("acme", domains=["learn.acme.example"])
    response = await api.client.get("/api/v1/branding", headers={"Host": "learn.acme.example"})
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"
    # The same domain for another tenant is a conflict, at creation and when added later.
    response = await api.client.post(
        "/platform/v1/tenants",
        json={
            "slug": "globex",
            "name": "Globex",
            "domains": ["learn.acme.example"],
            "admin": {"email": "o@globex.example", "password": "password123"},
        },
        headers=api.operator,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "domain_taken"
    globex = await api.provision("globex")
    response = await api.client.post(
        f"/platform/v1/tenants/{globex.id}/domains",
        json={"domain": "LEARN.acme.example."},
        headers=api.operator,
    )
    assert response.status_code == 409
    # Removing it frees it at once.
    response = await api.client.delete(
        f"/platform/v1/tenants/{acme.id}/domains/learn.acme.example", headers=api.operator
    )
    assert response.status_code == 204
    response = await api.client.get("/api/v1/branding", headers={"Host": "learn.acme.example"})
    assert response.status_code == 404


async def test_domain_under_base_domain_is_refused(api: Api) -> None:
    acme = await api.provision("acme")
    await api.provision("globex")
    response = await api.client.post(
        f"/platform/v1/tenants/{acme.id}/domains",
        json={"domain": "globex.localhost"},
        headers=api.operator,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_domain"


async def test_suspension_refuses_login_and_tokens_on_the_next_request(api: Api) -> None:
    acme = await api.provision("acme")
    headers = {"Host": acme.host, **await api.token(acme)}
    assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200

    response = await api.client.post(
        f"/platform/v1/tenants/{acme.id}/suspend", headers=api.operator
    )
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"

    response = await api.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"
    response = await api.login(acme)
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"
    # The token on the shared host is refused too.
    response = await api.client.get(
        "/api/v1/auth/me", headers={"Authorization": headers["Authorization"]}
    )
    assert response.json()["code"] == "tenant_suspended"

    await api.client.post(f"/platform/v1/tenants/{acme.id}/resume", headers=api.operator)
    assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200


async def test_offboarded_tenant_no_longer_resolves(api: Api) -> None:
    acme = await api.provision("acme")
    headers = {"Host": acme.host, **await api.token(acme)}
    response = await api.client.delete(f"/platform/v1/tenants/{acme.id}", headers=api.operator)
    assert response.status_code == 204
    response = await api.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_tenant"
    listed = await api.client.get("/platform/v1/tenants", headers=api.operator)
    assert acme.id not in [tenant["id"] for tenant in listed.json()["items"]]
    deleted = await api.client.get("/platform/v1/tenants?status=deleted", headers=api.operator)
    assert [tenant["id"] for tenant in deleted.json()["items"]] == [acme.id]


async def test_platform_and_tenant_tokens_are_not_interchangeable(api: Api) -> None:
    acme = await api.provision("acme")
    tenant_token = await api.token(acme)
    response = await api.client.get("/platform/v1/tenants", headers=tenant_token)
    assert response.status_code == 401
    response = await api.client.get("/api/v1/auth/me", headers={"Host": acme.host, **api.operator})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_x_tenant_only_on_public_routes(api: Api, client: AsyncTestClient[Litestar]) -> None:
    acme = await api.provision("acme")
    response = await client.get("/api/v1/branding", headers={"X-Tenant": "acme"})
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": acme.owner_email, "password": acme.owner_password},
        headers={"X-Tenant": "acme"},
    )
    assert response.status_code == 200
    # On a protected route X-Tenant alone gets nobody in.
    response = await client.get("/api/v1/auth/me", headers={"X-Tenant": "acme"})
    assert response.status_code == 401
    # No tenant at all on a public route of the shared host.
    response = await client.get("/api/v1/branding")
    assert response.status_code == 404
    assert response.json()["code"] == "tenant_required"


async def test_ops_routes_need_no_tenant(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health/live")).status_code == 200
    ready = await client.get("/health/ready")
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "read_pool": "ok", "store": "ok", "tenant_listener": "ok"},
    }
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/files" in schema.json()["paths"]
    # Every response names its request, errors included.
    missing = await client.get("/api/v1/auth/me", headers={"X-Request-ID": "trace-123"})
    assert missing.headers["x-request-id"] == "trace-123"
    assert missing.json()["request_id"] == "trace-123"
