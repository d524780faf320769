"""Tenant and platform authentication over HTTP."""

from __future__ import annotations

import time
import uuid

import asyncpg
import jwt
import pytest
from litestar import Litestar

from tenantry.config import Settings
from tests.integration.conftest import Api


async def test_login_returns_the_contract_shape(api: Api, settings: Settings) -> None:
    acme = await api.provision("acme")
    response = await api.login(acme)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    claims = jwt.decode(
        body["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="tenant"
    )
    assert {"iss", "aud", "sub", "tid", "role", "exp", "iat", "jti"} <= set(claims)
    assert claims["tid"] == acme.id
    assert claims["role"] == "owner"


async def test_unknown_email_and_wrong_password_get_the_same_answer(api: Api) -> None:
    acme = await api.provision("acme")
    wrong_password = await api.login(acme, password="not-the-password")
    unknown_email = await api.login(acme, email="nobody@acme.example", password="not-the-password")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"]


async def test_owner_of_a_cannot_log_in_on_b(api: Api) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    response = await api.login(globex, email=acme.owner_email, password=acme.owner_password)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    acme = await api.provision("acme")
    first = (await api.login(acme)).json()
    host = {"Host": acme.host}

    rotated = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}, headers=host
    )
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]

    # The spent token is presented again: a thief or a replay. The whole family dies.
    reused = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}, headers=host
    )
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    after = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}, headers=host
    )
    assert after.status_code == 401

    # Another login starts a new, healthy family.
    fresh = (await api.login(acme)).json()
    response = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}, headers=host
    )
    assert response.status_code == 200


async def test_refresh_token_of_a_is_unknown_on_b(api: Api) -> None:
    acme, globex = await api.provision("acme"), await api.provision("globex")
    token = (await api.login(acme)).json()["refresh_token"]
    response = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token}, headers={"Host": globex.host}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"
    # And it still works on its own tenant: B's attempt changed nothing.
    response = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token}, headers={"Host": acme.host}
    )
    assert response.status_code == 200


async def test_logout_revokes_the_refresh_token(api: Api) -> None:
    acme = await api.provision("acme")
    tokens = (await api.login(acme)).json()
    headers = {"Host": acme.host, "Authorization": f"Bearer {tokens['access_token']}"}
    response = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert response.status_code == 204
    response = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert response.status_code == 401


async def test_signup_only_where_allowed(api: Api, platform_connection: asyncpg.Connection) -> None:
    open_tenant = await api.provision("open", settings={"allow_signup": True})
    closed = await api.provision("closed")
    body = {"email": "Mentee@Example.com", "password": "mentee-password"}
    response = await api.client.post(
        "/api/v1/auth/signup", json=body, headers={"Host": closed.host}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "signup_disabled"

    response = await api.client.post(
        "/api/v1/auth/signup", json=body, headers={"Host": open_tenant.host}
    )
    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    # The same answer for an email that has an account: signup never tells who is registered,
    # and it changes nothing (the first password stays).
    again = await api.client.post(
        "/api/v1/auth/signup",
        json={**body, "password": "another-password"},
        headers={"Host": open_tenant.host},
    )
    assert (again.status_code, again.json()) == (202, {"status": "accepted"})
    login = await api.login(open_tenant, email="mentee@example.com", password="mentee-password")
    assert login.status_code == 200
    events = await platform_connection.fetch(
        "SELECT kind, user_role FROM usage_events WHERE tenant_id = $1 ORDER BY occurred_at",
        uuid.UUID(open_tenant.id),
    )
    assert [tuple(e) for e in events] == [("signup", "viewer"), ("login", "viewer")]
    role = await platform_connection.fetchval(
        "SELECT role FROM users WHERE tenant_id = $1 AND email = 'mentee@example.com'",
        uuid.UUID(open_tenant.id),
    )
    assert role == "viewer"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "password_too_short"),
        ("é" * 37, "password_too_long"),
        ("x" * 73, "password_too_long"),
    ],
)
async def test_password_rules(api: Api, password: str, code: str) -> None:
    tenant = await api.provision("open", settings={"allow_signup": True})
    response = await api.client.post(
        "/api/v1/auth/signup",
        json={"email": "a@b.example", "password": password},
        headers={"Host": tenant.host},
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert response.json()["errors"][0]["field"] == "password"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda s, c: "not-a-jwt", id="malformed"),
        pytest.param(
            lambda s, c: jwt.encode({**c, "exp": int(time.time()) - 60}, s.jwt_secret), id="expired"
        ),
        pytest.param(
            lambda s, c: jwt.encode(c, "another-secret-" + "y" * 32), id="wrong-signature"
        ),
        pytest.param(
            lambda s, c: jwt.encode({**c, "aud": "platform"}, s.jwt_secret), id="wrong-audience"
        ),
        pytest.param(
            lambda s, c: jwt.encode({**c, "iss": "someone"}, s.jwt_secret), id="wrong-issuer"
        ),
        pytest.param(lambda s, c: jwt.encode(c, None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda s, c: jwt.encode({k: v for k, v in c.items() if k != "exp"}, s.jwt_secret),
            id="no-exp",
        ),
    ],
)
async def test_bad_tokens_are_401_never_500(
    api: Api, settings: Settings, make_token: object
) -> None:
    acme = await api.provision("acme")
    good = (await api.login(acme)).json()["access_token"]
    claims = jwt.decode(good, settings.jwt_secret, algorithms=["HS256"], audience="tenant")
    token = make_token(settings, claims)  # type: ignore[operator]
    response = await api.client.get(
        "/api/v1/auth/me", headers={"Host": acme.host, "Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] in {"invalid_token", "token_expired"}


async def test_platform_login_rejects_wrong_password(api: Api) -> None:
    response = await api.client.post(
        "/platform/v1/auth/login",
        json={"email": "operator@test.example", "password": "wrong-password"},
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_a_login_waiting_for_its_hash_holds_no_database_connection(
    api: Api, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a login storm each hash waits seconds for a bcrypt thread; a connection held
    meanwhile is one the pool's other requests (other tenants') cannot have."""
    tenant = await api.provision("storming")
    services = app.state.services
    held: list[int] = []
    verify = services.passwords.verify

    async def observed(password: str, password_hash: str | None) -> bool:
        held.append(services.tenant_db.get_engine().pool.checkedout())
        return await verify(password, password_hash)

    monkeypatch.setattr(services.passwords, "verify", observed)
    assert (await api.login(tenant)).status_code == 200
    assert (await api.login(tenant, password="wrong-password")).status_code == 401
    assert held == [0, 0]
