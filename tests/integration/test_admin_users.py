"""Tenant admins manage their people: invitations by real SMTP (aiosmtpd), roles and the
last-owner rule, password reset and change, and revocation that reaches every replica."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api, Tenant, operator_login
from tests.integration.mail import Inbox, smtp_server

USERS = "/api/v1/admin/users"


@pytest.fixture
def inbox(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    with smtp_server() as (mail, port):
        yield mail, msgspec.structs.replace(settings, smtp_host="127.0.0.1", smtp_port=port)


@pytest.fixture
async def mail_api(inbox: tuple[Inbox, Settings], clean_database: None) -> AsyncIterator[Api]:
    app = create_app(inbox[1])
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield Api(client, await operator_login(inbox[1], client))


def _host(tenant: Tenant, auth: dict[str, str] | None = None) -> dict[str, str]:
    return {"Host": tenant.host, **(auth or {})}


async def _member(
    api: Api, tenant: Tenant, owner: dict[str, str], role: str, password: str = "member-password"
) -> tuple[str, dict[str, str]]:
    email = f"{role}-{uuid.uuid4().hex[:6]}@{tenant.slug}.example"
    made = await api.client.post(
        USERS, json={"email": email, "role": role, "password": password}, headers=owner
    )
    assert made.status_code == 201, made.text
    login = await api.login(tenant, email=email, password=password)
    assert login.status_code == 200, login.text
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return made.json()["user"]["id"], _host(tenant, token)


async def test_an_invitation_is_mailed_and_redeemed_once(
    mail_api: Api, inbox: tuple[Inbox, Settings]
) -> None:
    mail, _ = inbox
    acme, globex = await mail_api.provision("acme"), await mail_api.provision("globex")
    owner = _host(acme, await mail_api.token(acme))
    made = await mail_api.client.post(
        USERS, json={"email": "New.Person@Acme.example", "role": "editor"}, headers=owner
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["user"]["active"] is False
    assert body["invitation"]["mailed"] is True and "token" not in body["invitation"]
    token = mail.token_sent_to("new.person@acme.example")
    # An invited user cannot log in before choosing a password.
    assert (await mail_api.login(acme, "new.person@acme.example", "")).status_code in (401, 422)

    accept = {"token": token, "password": "chosen-password"}
    elsewhere = await mail_api.client.post(
        "/api/v1/auth/accept-invite", json=accept, headers=_host(globex)
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "token_not_found")
    accepted = await mail_api.client.post(
        "/api/v1/auth/accept-invite", json=accept, headers=_host(acme)
    )
    assert accepted.status_code == 200, accepted.text
    assert (
        await mail_api.login(acme, "new.person@acme.example", "chosen-password")
    ).status_code == 200
    again = await mail_api.client.post(
        "/api/v1/auth/accept-invite", json=accept, headers=_host(acme)
    )
    assert (again.status_code, again.json()["code"]) == (404, "token_not_found")


async def test_without_mail_the_token_comes_back_once_and_expires(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    owner = _host(acme, await api.token(acme))
    made = await api.client.post(USERS, json={"email": "late@acme.example"}, headers=owner)
    invitation = made.json()["invitation"]
    assert invitation["mailed"] is False and len(invitation["token"]) > 30
    stored = await platform_connection.fetchval("SELECT token_hash FROM user_tokens")
    assert invitation["token"] not in stored  # only a hash is kept
    await platform_connection.execute(
        "UPDATE user_tokens SET expires_at = now() - interval '1 second'"
    )
    expired = await api.client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invitation["token"], "password": "chosen-password"},
        headers=_host(acme),
    )
    assert (expired.status_code, expired.json()["code"]) == (404, "token_not_found")


async def test_role_rules_and_the_last_owner(api: Api) -> None:
    acme = await api.provision("acme")
    owner = _host(acme, await api.token(acme))
    owner_id = (await api.client.get("/api/v1/auth/me", headers=owner)).json()["id"]
    admin_id, admin = await _member(api, acme, owner, "admin")
    editor_id, _ = await _member(api, acme, owner, "editor")

    # Admins manage editors and viewers, never owners or admins.
    assert (
        await api.client.patch(f"{USERS}/{editor_id}", json={"role": "viewer"}, headers=admin)
    ).status_code == 200
    for attempt in (
        api.client.patch(f"{USERS}/{editor_id}", json={"role": "admin"}, headers=admin),
        api.client.patch(f"{USERS}/{owner_id}", json={"disabled": True}, headers=admin),
        api.client.delete(f"{USERS}/{owner_id}", headers=admin),
        api.client.post(USERS, json={"email": "x@acme.example", "role": "owner"}, headers=admin),
    ):
        refused = await attempt
        assert (refused.status_code, refused.json()["code"]) == (403, "owner_required"), (
            refused.text
        )

    # The only owner cannot be demoted, disabled or deleted, not even by themselves.
    for attempt in (
        api.client.patch(f"{USERS}/{owner_id}", json={"role": "admin"}, headers=owner),
        api.client.patch(f"{USERS}/{owner_id}", json={"disabled": True}, headers=owner),
        api.client.delete(f"{USERS}/{owner_id}", headers=owner),
    ):
        refused = await attempt
        assert (refused.status_code, refused.json()["code"]) == (409, "last_owner"), refused.text
    # With a second owner, the first may step down.
    promoted = await api.client.patch(f"{USERS}/{admin_id}", json={"role": "owner"}, headers=owner)
    assert promoted.status_code == 200, promoted.text
    stepped_down = await api.client.patch(
        f"{USERS}/{owner_id}", json={"role": "admin"}, headers=owner
    )
    assert stepped_down.status_code == 200, stepped_down.text
    # Their old token carried "owner": it is revoked with the role change.
    assert (await api.client.get("/api/v1/auth/me", headers=owner)).status_code == 401


async def test_two_owners_cannot_demote_each_other_at_once(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    first = _host(acme, await api.token(acme))
    first_id = (await api.client.get("/api/v1/auth/me", headers=first)).json()["id"]
    second_id, second = await _member(api, acme, first, "owner")
    answers = await asyncio.gather(
        api.client.patch(f"{USERS}/{second_id}", json={"role": "admin"}, headers=first),
        api.client.patch(f"{USERS}/{first_id}", json={"role": "admin"}, headers=second),
    )
    # One wins; the other finds it is the last owner (or its token already revoked).
    assert sorted(a.status_code for a in answers) in ([200, 401], [200, 409]), [
        a.text for a in answers
    ]
    owners = await platform_connection.fetchval(
        "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND NOT disabled",
        uuid.UUID(acme.id),
    )
    assert owners == 1


async def test_list_filters(api: Api) -> None:
    acme = await api.provision("acme")
    owner = _host(acme, await api.token(acme))
    await _member(api, acme, owner, "viewer")
    viewer_id, _ = await _member(api, acme, owner, "viewer")
    await api.client.patch(f"{USERS}/{viewer_id}", json={"disabled": True}, headers=owner)
    everyone = (await api.client.get(USERS, headers=owner)).json()
    assert everyone["total"] == 3
    viewers = (await api.client.get(f"{USERS}?role=viewer&disabled=false", headers=owner)).json()
    assert viewers["total"] == 1
    found = (await api.client.get(f"{USERS}?email=OWNER@", headers=owner)).json()
    assert [u["email"] for u in found["items"]] == [acme.owner_email]
    # LIKE's wildcards are matched as themselves.
    for term in ("%", "_", "\\"):
        assert (await api.client.get(USERS, params={"email": term}, headers=owner)).json()[
            "total"
        ] == 0


async def test_forgot_password_answers_alike_and_mails_only_accounts(
    mail_api: Api, inbox: tuple[Inbox, Settings]
) -> None:
    mail, _ = inbox
    acme = await mail_api.provision("acme")
    old_session = _host(acme, await mail_api.token(acme))
    answers = [
        await mail_api.client.post(
            "/api/v1/auth/forgot-password", json={"email": email}, headers=_host(acme)
        )
        for email in (acme.owner_email, "nobody@acme.example")
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(202, {"status": "accepted"})] * 2
    assert mail.to("nobody@acme.example", wait_seconds=0.2) == []
    token = mail.token_sent_to(acme.owner_email)
    reset = await mail_api.client.post(
        "/api/v1/auth/reset-password",
        json={"token": token, "password": "a-new-password"},
        headers=_host(acme),
    )
    assert reset.status_code == 204, reset.text
    # Every session ended; the new password works, the old does not; the token is spent.
    assert (await mail_api.client.get("/api/v1/auth/me", headers=old_session)).status_code == 401
    assert (await mail_api.login(acme)).status_code == 401
    assert (await mail_api.login(acme, password="a-new-password")).status_code == 200
    again = await mail_api.client.post(
        "/api/v1/auth/reset-password",
        json={"token": token, "password": "another-password"},
        headers=_host(acme),
    )
    assert again.status_code == 404


async def test_changing_the_password_ends_the_other_sessions(api: Api) -> None:
    acme = await api.provision("acme")
    phone, laptop = _host(acme, await api.token(acme)), _host(acme, await api.token(acme))
    wrong = await api.client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it", "new_password": "brand-new-password"},
        headers=laptop,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (403, "invalid_password")
    changed = await api.client.post(
        "/api/v1/auth/password",
        json={"current_password": acme.owner_password, "new_password": "brand-new-password"},
        headers=laptop,
    )
    assert changed.status_code == 200, changed.text
    fresh = _host(acme, {"Authorization": f"Bearer {changed.json()['access_token']}"})
    assert (await api.client.get("/api/v1/auth/me", headers=phone)).status_code == 401
    me = await api.client.patch("/api/v1/auth/me", json={"display_name": "Ada"}, headers=fresh)
    assert me.status_code == 200 and me.json()["display_name"] == "Ada"
    assert (await api.client.get("/api/v1/auth/me", headers=fresh)).json()["display_name"] == "Ada"


async def test_revocation_reaches_a_second_app_within_a_second(
    settings: Settings, clean_database: None, api: Api
) -> None:
    """Two apps on one database; the change is made through the first."""
    acme = await api.provision("acme")
    owner = _host(acme, await api.token(acme))
    disabled_id, disabled = await _member(api, acme, owner, "viewer")
    deleted_id, deleted = await _member(api, acme, owner, "viewer")
    second_app: Litestar = create_app(settings)
    async with AsyncTestClient(app=second_app, base_url="http://127.0.0.1") as second:
        for member in (disabled, deleted):  # cached as valid in the second app
            assert (await second.get("/api/v1/files", headers=member)).status_code == 200
        await api.client.patch(f"{USERS}/{disabled_id}", json={"disabled": True}, headers=owner)
        await api.client.delete(f"{USERS}/{deleted_id}", headers=owner)
        for member in (disabled, deleted):
            deadline = time.monotonic() + 1.0
            while (await second.get("/api/v1/files", headers=member)).status_code != 401:
                assert time.monotonic() < deadline, "still accepted after a second"
                await asyncio.sleep(0.02)


async def test_admin_changes_are_audited_without_secrets(
    api: Api, platform_connection: asyncpg.Connection
) -> None:
    acme = await api.provision("acme")
    owner = _host(acme, await api.token(acme))
    user_id, _ = await _member(api, acme, owner, "editor", password="secret-password-1")
    await api.client.patch(f"{USERS}/{user_id}", json={"role": "viewer"}, headers=owner)
    await api.client.delete(f"{USERS}/{user_id}", headers=owner)
    rows = await platform_connection.fetch(
        "SELECT action, actor_type, target_id, summary::text AS summary, request_id "
        "FROM audit_log WHERE tenant_id = $1 AND action LIKE 'user.%' ORDER BY occurred_at",
        uuid.UUID(acme.id),
    )
    assert [r["action"] for r in rows] == ["user.created", "user.updated", "user.deleted"]
    assert all(r["actor_type"] == "user" and r["target_id"] == user_id for r in rows)
    assert all(r["request_id"] for r in rows)
    summary = json.loads(rows[1]["summary"])
    assert (summary["before"]["role"], summary["after"]["role"]) == ("editor", "viewer")
    assert all("secret-password" not in r["summary"] and "hash" not in r["summary"] for r in rows)


async def test_no_credential_change_holds_a_connection_while_it_hashes(
    mail_api: Api, inbox: tuple[Inbox, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset and a password change hash with no transaction open (each hash may wait its
    turn for a bcrypt thread for seconds, in a storm), and still spend their token and check
    the password they replace."""
    mail, _ = inbox
    acme = await mail_api.provision("acme")
    services = mail_api.client.app.state.services
    held: list[tuple[str, int]] = []
    original_hash, original_verify = services.passwords.hash, services.passwords.verify

    async def hashed(password: str, field: str = "password") -> str:
        held.append(("hash", services.tenant_db.get_engine().pool.checkedout()))
        return await original_hash(password, field)

    async def verified(password: str, password_hash: str | None) -> bool:
        held.append(("verify", services.tenant_db.get_engine().pool.checkedout()))
        return await original_verify(password, password_hash)

    monkeypatch.setattr(services.passwords, "hash", hashed)
    monkeypatch.setattr(services.passwords, "verify", verified)
    forgot = await mail_api.client.post(
        "/api/v1/auth/forgot-password", json={"email": acme.owner_email}, headers=_host(acme)
    )
    assert forgot.status_code == 202
    reset = {"token": mail.token_sent_to(acme.owner_email), "password": "a-new-password"}
    done = await mail_api.client.post(
        "/api/v1/auth/reset-password", json=reset, headers=_host(acme)
    )
    assert done.status_code == 204, done.text
    spent = await mail_api.client.post(
        "/api/v1/auth/reset-password", json=reset, headers=_host(acme)
    )
    assert spent.status_code == 404  # refused before any hash
    login = await mail_api.login(acme, password="a-new-password")
    auth = _host(acme, {"Authorization": f"Bearer {login.json()['access_token']}"})
    change = {"current_password": "a-new-password", "new_password": "brand-new-password"}
    changed = await mail_api.client.post("/api/v1/auth/password", json=change, headers=auth)
    assert changed.status_code == 200, changed.text
    assert held == [("hash", 0), ("verify", 0), ("verify", 0), ("hash", 0)]
    assert (await mail_api.login(acme, password="brand-new-password")).status_code == 200
