"""Custom domains proven by DNS: a real DNS server on 127.0.0.1 serves the records the test
sets; a domain serves its tenant only once verified."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api, operator_login
from tests.integration.dns_server import DnsServer, dns_server

DOMAINS = "/api/v1/admin/domains"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with dns_server() as server:
        yield server


@pytest.fixture
async def dns_api(settings: Settings, clean_database: None, dns: DnsServer) -> AsyncIterator[Api]:
    configured = msgspec.structs.replace(
        settings, dns_nameservers=("127.0.0.1",), dns_port=dns.port
    )
    app = create_app(configured)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield Api(client, await operator_login(configured, client))


async def test_a_domain_serves_its_tenant_once_dns_proves_it(dns_api: Api, dns: DnsServer) -> None:
    api = dns_api
    acme = await api.provision("acme")
    owner = {"Host": acme.host, **await api.token(acme)}
    requested = await api.client.post(
        DOMAINS, json={"domain": "Learn.Acme.Example."}, headers=owner
    )
    assert requested.status_code == 201, requested.text
    record = requested.json()["verification"]
    assert record["name"] == "_tenantry-challenge.learn.acme.example" and record["type"] == "TXT"

    # Pending: the domain does not resolve the tenant.
    pending = await api.client.get("/api/v1/branding", headers={"Host": "learn.acme.example"})
    assert (pending.status_code, pending.json()["code"]) == (404, "unknown_tenant")
    # No record, then a wrong one: not verified.
    verify = f"{DOMAINS}/learn.acme.example/verify"
    for records in ({}, {record["name"]: ["tenantry-verification=wrong"]}):
        dns.txt = records
        refused = await api.client.post(verify, headers=owner)
        assert (refused.status_code, refused.json()["code"]) == (409, "domain_not_verified")
    dns.txt = {record["name"]: ["unrelated", record["value"]]}
    verified = await api.client.post(verify, headers=owner)
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True and verified.json()["verification"] is None
    served = await api.client.get("/api/v1/branding", headers={"Host": "learn.acme.example"})
    assert served.status_code == 200 and served.json()["slug"] == "acme"

    removed = await api.client.delete(f"{DOMAINS}/learn.acme.example", headers=owner)
    assert removed.status_code == 204
    gone = await api.client.get("/api/v1/branding", headers={"Host": "learn.acme.example"})
    assert gone.status_code == 404


async def test_domains_are_one_tenants_and_the_operator_verifies_too(
    dns_api: Api, dns: DnsServer
) -> None:
    api = dns_api
    acme, globex = await api.provision("acme"), await api.provision("globex")
    acme_owner = {"Host": acme.host, **await api.token(acme)}
    globex_owner = {"Host": globex.host, **await api.token(globex)}
    made = (
        await api.client.post(DOMAINS, json={"domain": "media.acme.example"}, headers=acme_owner)
    ).json()
    taken = await api.client.post(
        DOMAINS, json={"domain": "media.acme.example"}, headers=globex_owner
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "domain_taken")
    for attempt in (
        api.client.post(f"{DOMAINS}/media.acme.example/verify", headers=globex_owner),
        api.client.delete(f"{DOMAINS}/media.acme.example", headers=globex_owner),
    ):
        assert (await attempt).status_code == 404
    assert (await api.client.get(DOMAINS, headers=globex_owner)).json() == []
    refused = await api.client.post(
        DOMAINS, json={"domain": "evil.localhost"}, headers=globex_owner
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_domain")

    dns.txt = {made["verification"]["name"]: [made["verification"]["value"]]}
    verified = await api.client.post(
        f"/platform/v1/tenants/{acme.id}/domains/media.acme.example/verify", headers=api.operator
    )
    assert verified.status_code == 200 and verified.json()["verified"] is True


async def test_dns_that_does_not_answer_is_503(settings: Settings, clean_database: None) -> None:
    silent = msgspec.structs.replace(settings, dns_nameservers=("127.0.0.1",), dns_port=9)
    app = create_app(silent)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        api = Api(client, await operator_login(silent, client))
        acme = await api.provision("acme")
        owner = {"Host": acme.host, **await api.token(acme)}
        await client.post(DOMAINS, json={"domain": "quiet.acme.example"}, headers=owner)
        response = await client.post(f"{DOMAINS}/quiet.acme.example/verify", headers=owner)
        assert (response.status_code, response.json()["code"]) == (503, "dns_unavailable")


async def test_cors_answers_the_tenants_origins_only(dns_api: Api, dns: DnsServer) -> None:
    api = dns_api
    acme, globex = await api.provision("acme"), await api.provision("globex")
    owner = {"Host": acme.host, **await api.token(acme)}
    made = (
        await api.client.post(DOMAINS, json={"domain": "app.acme.example"}, headers=owner)
    ).json()
    dns.txt = {made["verification"]["name"]: [made["verification"]["value"]]}
    assert (
        await api.client.post(f"{DOMAINS}/app.acme.example/verify", headers=owner)
    ).status_code == 200
    listed = await api.client.patch(
        "/api/v1/admin/settings", json={"cors_origins": ["http://localhost:5173"]}, headers=owner
    )
    assert listed.status_code == 200, listed.text

    def preflight(origin: str, headers: str = "authorization") -> dict[str, str]:
        return {
            "Host": acme.host,
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": headers,
        }

    for origin in (
        "https://app.acme.example",
        "http://localhost:5173",
        "http://acme.localhost:3000",
    ):
        answer = await api.client.options("/api/v1/files", headers=preflight(origin))
        assert answer.status_code == 204, (origin, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin
        assert "GET" in answer.headers["access-control-allow-methods"]
    for origin in (
        "https://evil.example",
        "http://app.acme.example",  # a verified domain over plain http
        f"https://{globex.host}",  # another tenant's host
        "null",
    ):
        answer = await api.client.options("/api/v1/files", headers=preflight(origin))
        assert (answer.status_code, answer.json()["code"]) == (403, "origin_not_allowed"), origin
    odd_header = await api.client.options(
        "/api/v1/files", headers=preflight("https://app.acme.example", "x-evil")
    )
    assert odd_header.status_code == 403

    allowed = await api.client.get(
        "/api/v1/files", headers={**owner, "Origin": "https://app.acme.example"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.acme.example"
    assert "Origin" in allowed.headers["vary"]
    other = await api.client.get(
        "/api/v1/files", headers={**owner, "Origin": "https://evil.example"}
    )
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
