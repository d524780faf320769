from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import upsert_platform_admin
from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tests.fixtures.s3 import app_on

OPERATOR_EMAIL = "operator@test.example"
OPERATOR_PASSWORD = "operator-password"


# Set on a test item whose setup, call or teardown failed (fixtures that outlive a test look).
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@dataclass
class Tenant:
    id: str
    slug: str
    host: str
    owner_email: str
    owner_password: str


@pytest.fixture
async def app(
    request: pytest.FixtureRequest, settings: Settings, clean_database: None
) -> AsyncIterator[Litestar]:
    """The app on the local store; on S3 too where a module says so, with
    `pytestmark = ON_EACH_STORE`."""
    async with app_on(getattr(request, "param", "local"), settings, request) as app:
        yield app


ON_EACH_STORE = pytest.mark.parametrize("app", ["local", "s3"], indirect=True)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
async def operator_headers(settings: Settings, client: AsyncTestClient[Litestar]) -> dict[str, str]:
    return await operator_login(settings, client)


async def operator_login(settings: Settings, client: AsyncTestClient[Litestar]) -> dict[str, str]:
    """Creates the platform operator and logs it in: its auth header."""
    config = platform_db_config(settings)
    hasher = PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=2)
    async with config.get_session() as session, session.begin():
        await upsert_platform_admin(session, hasher, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    await config.get_engine().dispose()
    response = await client.post(
        "/platform/v1/auth/login", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Api:
    """Small helpers over the HTTP API, so tests read as scenarios."""

    def __init__(self, client: AsyncTestClient[Litestar], operator_headers: dict[str, str]) -> None:
        self.client = client
        self.operator = operator_headers

    async def provision(self, slug: str, **extra: object) -> Tenant:
        owner_email, owner_password = f"owner@{slug}.example", f"{slug}-owner-password"
        body = {
            "slug": slug,
            "name": slug.title(),
            "admin": {"email": owner_email, "password": owner_password},
        }
        response = await self.client.post(
            "/platform/v1/tenants", json={**body, **extra}, headers=self.operator
        )
        assert response.status_code == 201, response.text
        data = response.json()
        return Tenant(data["id"], slug, data["host"], owner_email, owner_password)

    async def login(
        self, tenant: Tenant, email: str | None = None, password: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/login",
            json={
                "email": email or tenant.owner_email,
                "password": password or tenant.owner_password,
            },
            headers={"Host": tenant.host},
        )

    async def token(self, tenant: Tenant) -> dict[str, str]:
        response = await self.login(tenant)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def api(client: AsyncTestClient[Litestar], operator_headers: dict[str, str]) -> Api:
    return Api(client, operator_headers)
