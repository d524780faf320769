"""The OpenAPI document tells the truth about security, tenancy, bodies and problems."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.lib.errors import PROBLEM_JSON

METHODS = {"get", "post", "put", "patch", "delete"}


async def document(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


async def test_security_follows_the_zone(client: AsyncTestClient[Litestar]) -> None:
    doc = await document(client)
    schemes = doc["components"]["securitySchemes"]
    for name in ("tenantBearer", "platformBearer"):
        assert schemes[name] == {**schemes[name], "type": "http", "scheme": "bearer"}
        assert schemes[name]["bearerFormat"] == "JWT"
    security = {(method, path): op.get("security") for method, path, op in operations(doc)}
    assert security["GET", "/api/v1/files"] == [{"tenantBearer": []}]
    assert security["POST", "/platform/v1/tenants"] == [{"platformBearer": []}]
    for public in (
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/branding"),
        ("POST", "/platform/v1/auth/login"),
        ("GET", "/health/live"),
    ):
        assert security[public] == []


async def test_x_tenant_only_on_tenant_public_routes(client: AsyncTestClient[Litestar]) -> None:
    doc = await document(client)
    with_header = {
        (method, path)
        for method, path, op in operations(doc)
        if any(p["name"] == "X-Tenant" for p in op.get("parameters", []))
    }
    assert with_header == {
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/signup"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/accept-invite"),
        ("POST", "/api/v1/auth/forgot-password"),
        ("POST", "/api/v1/auth/reset-password"),
        ("GET", "/api/v1/branding"),
        ("GET", "/api/v1/branding/logo"),
    }
    assert "Host" in doc["info"]["description"]


async def test_every_error_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    doc = await document(client)
    assert "Problem" in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        assert op.get("description"), (method, path)
        for status, response in op["responses"].items():
            if int(status) >= 400 and path != "/health/ready":  # its 503 is a HealthStatus
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
                assert "`" in response["description"], (method, path, status)
        if path.startswith("/api/") or path.startswith("/platform/v1/tenants"):
            assert "503" in op["responses"], (method, path)
    files = doc["paths"]["/api/v1/files"]
    assert "`insufficient_role`" in files["post"]["responses"]["403"]["description"]
    assert "`file_too_large`" in files["post"]["responses"]["413"]["description"]
    assert "`missing_token`" in files["get"]["responses"]["401"]["description"]
    assert (
        "`slug_taken`"
        in (doc["paths"]["/platform/v1/tenants"]["post"]["responses"]["409"]["description"])
    )
    assert not any(path.startswith("/schema") for path in doc["paths"])


async def test_raw_bodies_and_redirect_are_documented(client: AsyncTestClient[Litestar]) -> None:
    doc = await document(client)
    upload = doc["paths"]["/api/v1/files"]["post"]["requestBody"]["content"]
    form = upload["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {
        "title",
        "description",
        "category",
        "language",
        "audiences",
        "file",
    }
    assert form["properties"]["file"]["format"] == "binary"
    assert form["properties"]["audiences"]["type"] == "array"
    assert upload["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PendingFileCreate"
    }
    assert "filename" in doc["components"]["schemas"]["PendingFileCreate"]["properties"]
    content = doc["paths"]["/api/v1/files/{file_id}/content"]["put"]["requestBody"]["content"]
    assert content["application/octet-stream"]["schema"]["format"] == "binary"
    download = doc["paths"]["/api/v1/files/{file_id}/download"]["get"]["responses"]
    assert download["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DownloadLink"
    }
    assert "307" in download and "content" not in download["307"]
