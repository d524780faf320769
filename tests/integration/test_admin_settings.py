"""A tenant's own settings within its plan, the audit log as its admins and the operator read
it, and a tenant provisioned with an invited owner."""

from __future__ import annotations

from tests.integration.conftest import Api, Tenant
from tests.integration.files_support import PDF, pdf_of_size, upload

SETTINGS = "/api/v1/admin/settings"


async def _owner(api: Api, tenant: Tenant) -> dict[str, str]:
    return {"Host": tenant.host, **await api.token(tenant)}


async def test_settings_stay_within_the_plan_and_apply_at_once(api: Api) -> None:
    acme = await api.provision(
        "acme",
        quotas={"storage_bytes": 10_000_000, "max_file_bytes": 1_000_000},
        settings={"allowed_content_types": ["application/pdf", "image/png"]},
    )
    owner = await _owner(api, acme)
    current = (await api.client.get(SETTINGS, headers=owner)).json()
    assert current["plan_max_file_bytes"] == 1_000_000
    assert current["plan_content_types"] == ["application/pdf", "image/png"]

    for body, field in (
        ({"max_file_bytes": 1_000_001}, "max_file_bytes"),
        ({"accepted_content_types": ["video/mp4"]}, "accepted_content_types"),
    ):
        refused = await api.client.patch(SETTINGS, json=body, headers=owner)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["errors"][0]["field"]) == (
            "beyond_plan",
            field,
        )
        assert "plan" in refused.json()["detail"]
    for ttl in (29, 24 * 3600 + 1):
        refused = await api.client.patch(
            SETTINGS, json={"download_url_ttl_seconds": ttl}, headers=owner
        )
        assert refused.status_code == 400, refused.text

    changed = await api.client.patch(
        SETTINGS,
        json={"max_file_bytes": len(PDF) + 10, "accepted_content_types": ["application/pdf"]},
        headers=owner,
    )
    assert changed.status_code == 200, changed.text
    # The very next upload meets the tenant's own limit.
    too_big = await upload(api, acme, owner, pdf_of_size(len(PDF) + 11))
    assert (too_big.status_code, too_big.json()["code"]) == (413, "file_too_large")
    assert (await upload(api, acme, owner)).status_code == 201


async def test_a_tenant_with_an_invited_owner(api: Api) -> None:
    """Without a mail server the token comes back once (with one, see test_admin_users)."""
    response = await api.client.post(
        "/platform/v1/tenants",
        json={"slug": "initech", "name": "Initech", "admin": {"email": "boss@initech.example"}},
        headers=api.operator,
    )
    assert response.status_code == 201, response.text
    invitation = response.json()["owner_invitation"]
    assert invitation["mailed"] is False
    host = {"Host": response.json()["host"]}
    accepted = await api.client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invitation["token"], "password": "initech-owner-password"},
        headers=host,
    )
    assert accepted.status_code == 200, accepted.text
    me = await api.client.get(
        "/api/v1/auth/me",
        headers={**host, "Authorization": f"Bearer {accepted.json()['access_token']}"},
    )
    assert me.json()["role"] == "owner"
    # Shown once: reading the tenant again does not carry it.
    again = await api.client.get(
        f"/platform/v1/tenants/{response.json()['id']}", headers=api.operator
    )
    assert again.json().get("owner_invitation") is None


async def test_the_audit_log_for_admins_and_the_operator(api: Api) -> None:
    acme = await api.provision("acme")
    owner = await _owner(api, acme)
    await api.client.patch(SETTINGS, json={"allow_signup": True}, headers=owner)
    await api.client.post(f"/platform/v1/tenants/{acme.id}/suspend", headers=api.operator)
    await api.client.post(f"/platform/v1/tenants/{acme.id}/resume", headers=api.operator)

    entries = (await api.client.get("/api/v1/admin/audit", headers=owner)).json()["items"]
    actions = [entry["action"] for entry in entries]
    assert actions[:4] == [
        "tenant.active",
        "tenant.suspended",
        "settings.updated",
        "tenant.created",
    ]
    settings = next(e for e in entries if e["action"] == "settings.updated")
    assert settings["actor_type"] == "user" and settings["summary"]["after"] == {
        "allow_signup": True
    }
    assert settings["request_id"] and settings["client_address"]
    operator_only = await api.client.get("/api/v1/admin/audit?actor_type=operator", headers=owner)
    assert {e["actor_type"] for e in operator_only.json()["items"]} == {"operator"}
    seen_by_operator = await api.client.get(
        f"/platform/v1/tenants/{acme.id}/audit", headers=api.operator
    )
    assert [e["action"] for e in seen_by_operator.json()["items"]] == actions
