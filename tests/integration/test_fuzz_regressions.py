"""What the schemathesis run found, pinned as plain regression tests."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import Api


async def test_offset_beyond_postgres_integers_is_a_validation_error(
    client: AsyncTestClient[Litestar], operator_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/platform/v1/tenants", params={"offset": 257154032067148349440}, headers=operator_headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"


async def test_unknown_nested_body_field_is_a_validation_error(
    client: AsyncTestClient[Litestar], operator_headers: dict[str, str]
) -> None:
    body = {
        "slug": "nested",
        "name": "Nested",
        "admin": {"email": "owner@nested.example", "password": "nested-password"},
        "settings": {"not_a_setting": True},
    }
    response = await client.post("/platform/v1/tenants", json=body, headers=operator_headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["field"] == "settings"


async def test_nul_in_a_term_name_is_invalid_value(api: Api) -> None:
    tenant = await api.provision("nulterm")
    headers = {"Host": tenant.host, **await api.token(tenant)}
    response = await api.client.post(
        "/api/v1/admin/categories", json={"name": "a\u0000b"}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_value"


async def test_a_body_nested_beyond_the_decoder_is_invalid_json(
    client: AsyncTestClient[Litestar], operator_headers: dict[str, str], api: Api
) -> None:
    acme = await api.provision("acme")
    deep = b'{"settings": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    for method, url in (
        ("PATCH", f"/platform/v1/tenants/{acme.id}"),
        ("POST", "/platform/v1/tenants"),
    ):
        response = await client.request(
            method,
            url,
            content=deep,
            headers={"Content-Type": "application/json", **operator_headers},
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] in ("invalid_json", "validation_error")
    owner = {"Host": acme.host, **await api.token(acme)}
    # Under the two-step form's 64 KiB body limit, still deeper than any decoder recursion.
    two_step = (
        b'{"title": "x", "filename": "a.pdf", "audiences": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    )
    response = await client.post(
        "/api/v1/files", content=two_step, headers={"Content-Type": "application/json", **owner}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"


async def test_quotas_beyond_bigint_and_script_logo_urls_are_validation_errors(
    client: AsyncTestClient[Litestar], operator_headers: dict[str, str], api: Api
) -> None:
    acme = await api.provision("acme")
    url = f"/platform/v1/tenants/{acme.id}"
    too_big = await client.patch(
        url, json={"quotas": {"storage_bytes": 2**70}}, headers=operator_headers
    )
    assert too_big.status_code == 400, too_big.text
    assert too_big.json()["code"] == "validation_error"
    script = await client.patch(
        url, json={"branding": {"logo_url": "javascript:alert(1)"}}, headers=operator_headers
    )
    assert script.status_code == 422, script.text
    assert script.json()["errors"][0]["field"] == "branding.logo_url"
    fine = await client.patch(
        url,
        json={"branding": {"logo_url": "https://cdn.acme.example/logo.svg"}},
        headers=operator_headers,
    )
    assert fine.status_code == 200, fine.text


def test_links_never_carry_an_impossible_port() -> None:
    from litestar.datastructures import Headers

    from tenantry.lib.http import request_origin

    scope = {"type": "http", "headers": [(b"host", b"acme.localhost:99999")], "scheme": "http"}
    assert request_origin(scope, Headers.from_scope(scope), ()) == "http://acme.localhost"  # type: ignore[arg-type]
