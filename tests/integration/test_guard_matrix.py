"""Every tenant route against every role, an API key of every role, and no token: generated from
the app's route table, so a route added without a line in `MINIMUM` fails here.

Below a route's minimum the answer is 403 `insufficient_role`; at or above it, never a 401 or
403 of authorisation (the request may still be 404 or 422: the ids are random, the bodies empty).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar

from tenantry.db.enums import Role
from tenantry.lib.zones import TENANT_PUBLIC, route_zone, zone_needs_tenant
from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import user_with_role

PUBLIC, USER = "public", "user"  # no token needed; a user's own account (no API key)
V, E, A = Role.VIEWER, Role.EDITOR, Role.ADMIN
MINIMUM: dict[tuple[str, str], str | Role] = {
    ("GET", "/api/v1/branding"): PUBLIC,
    ("GET", "/api/v1/branding/logo"): PUBLIC,
    ("GET", "/api/v1/admin/branding"): A,
    ("PATCH", "/api/v1/admin/branding"): A,
    ("PUT", "/api/v1/admin/branding/logo"): A,
    ("DELETE", "/api/v1/admin/branding/logo"): A,
    **{
        ("POST", f"/api/v1/auth/{name}"): PUBLIC
        for name in (
            "login",
            "signup",
            "refresh",
            "accept-invite",
            "forgot-password",
            "reset-password",
        )
    },
    ("POST", "/api/v1/auth/logout"): USER,
    ("GET", "/api/v1/auth/me"): USER,
    ("PATCH", "/api/v1/auth/me"): USER,
    ("POST", "/api/v1/auth/password"): USER,
    ("GET", "/api/v1/files"): V,
    ("GET", "/api/v1/files/stats"): V,
    ("GET", "/api/v1/files/{file_id:uuid}"): V,
    ("GET", "/api/v1/files/{file_id:uuid}/download"): V,
    ("POST", "/api/v1/files"): E,
    ("PATCH", "/api/v1/files/{file_id:uuid}"): E,
    ("DELETE", "/api/v1/files/{file_id:uuid}"): E,
    ("PUT", "/api/v1/files/{file_id:uuid}/content"): E,
    ("POST", "/api/v1/uploads"): E,
    ("POST", "/api/v1/uploads/{upload_id:uuid}/complete"): E,
    ("DELETE", "/api/v1/uploads/{upload_id:uuid}"): E,
    ("POST", "/api/v1/uploads/tus"): E,
    ("PATCH", "/api/v1/uploads/tus/{upload_id:uuid}"): E,
    ("DELETE", "/api/v1/uploads/tus/{upload_id:uuid}"): E,
    ("GET", "/api/v1/categories"): V,
    ("GET", "/api/v1/audiences"): V,
    **{
        (method, f"/api/v1/admin/{kind}{suffix}"): A
        for kind in ("categories", "audiences")
        for method, suffix in (
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{term_id:uuid}"),
            ("PATCH", "/{term_id:uuid}"),
            ("DELETE", "/{term_id:uuid}"),
        )
    },
    **{
        (method, f"/api/v1/admin/users{suffix}"): A
        for method, suffix in (
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{user_id:uuid}"),
            ("PATCH", "/{user_id:uuid}"),
            ("DELETE", "/{user_id:uuid}"),
        )
    },
    ("GET", "/api/v1/admin/api-keys"): A,
    ("POST", "/api/v1/admin/api-keys"): A,
    ("DELETE", "/api/v1/admin/api-keys/{key_id:uuid}"): A,
    ("GET", "/api/v1/admin/settings"): A,
    ("PATCH", "/api/v1/admin/settings"): A,
    ("GET", "/api/v1/admin/audit"): A,
    ("GET", "/api/v1/admin/domains"): A,
    ("POST", "/api/v1/admin/domains"): A,
    ("POST", "/api/v1/admin/domains/{domain:str}/verify"): A,
    ("DELETE", "/api/v1/admin/domains/{domain:str}"): A,
    ("GET", "/api/v1/usage"): A,
    ("GET", "/api/v1/usage/report"): A,
}
ROLES = [Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER]


def tenant_routes(app: Litestar) -> dict[tuple[str, str], str]:
    """(method, path) -> zone of every route a tenant's callers reach."""
    routes = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            zone = route_zone({"route_handler": handler})  # type: ignore[typeddict-item]
            if route.path.startswith("/api/") or zone_needs_tenant(zone):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    routes[(method, route.path)] = zone
    return routes


def test_every_tenant_route_has_a_minimum(app: Litestar) -> None:
    routes = tenant_routes(app)
    assert set(routes) == set(MINIMUM), "routes without an expected minimum, or gone"
    for key, minimum in MINIMUM.items():
        assert (routes[key] == TENANT_PUBLIC) == (minimum == PUBLIC), key


def _url(path: str) -> str:
    for name in ("file_id", "term_id", "user_id", "key_id", "upload_id"):
        path = path.replace("{" + name + ":uuid}", str(uuid.uuid4()))
    return path.replace("{domain:str}", "nothing.example")


async def _callers(
    api: Api, tenant: Tenant, platform: Any
) -> dict[str, tuple[str, dict[str, str]]]:
    """caller name -> (its kind and role, its Authorization header)."""
    owner = await api.token(tenant)
    callers = {"user:owner": ("owner", owner)}
    for role in ROLES[1:]:
        callers[f"user:{role}"] = (str(role), await user_with_role(api, tenant, platform, role))
    for role in ROLES:
        made = await api.client.post(
            "/api/v1/admin/api-keys",
            json={"name": f"{role} key", "role": role},
            headers={"Host": tenant.host, **owner},
        )
        assert made.status_code == 201, made.text
        callers[f"key:{role}"] = (str(role), {"Authorization": f"Bearer {made.json()['key']}"})
    return callers


@pytest.mark.parametrize(("method", "path"), sorted(MINIMUM), ids=lambda v: str(v))
async def test_the_guard_of(api: Api, platform_connection: Any, method: str, path: str) -> None:
    tenant = await api.provision("acme")
    callers = await _callers(api, tenant, platform_connection)
    minimum = MINIMUM[(method, path)]
    url = _url(path)

    anonymous = await api.client.request(method, url, headers={"Host": tenant.host}, json={})
    if minimum == PUBLIC:
        assert anonymous.status_code != 401, anonymous.text
    else:
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "missing_token")

    for name, (role, auth) in callers.items():
        response = await api.client.request(
            method, url, headers={"Host": tenant.host, **auth}, json={}
        )
        code = response.json().get("code") if response.status_code >= 400 else None
        if minimum == USER and name.startswith("key:"):
            expected: tuple[int, str | None] | None = (403, "user_required")
        elif isinstance(minimum, Role) and Role(role).rank < minimum.rank:
            expected = (403, "insufficient_role")
        else:
            expected = None
        if expected is not None:
            assert (response.status_code, code) == expected, (name, response.text)
        else:
            assert response.status_code not in (401, 403), (name, response.text)
