"""The real app under uvicorn in a thread, on a free 127.0.0.1 port, and a tenant provisioned
over its HTTP API: what the browser test and the schemathesis run drive."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from litestar import Litestar

from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import upsert_platform_admin
from tenantry.config import Settings
from tenantry.db.engines import platform_db_config
from tests.integration.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD
from tests.integration.files_support import PDF


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: Litestar) -> Iterator[str]:
    """Run `app` (its lifespan included) until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class LiveTenant:
    id: str
    slug: str
    host: str
    owner_token: str
    category_id: str
    audience_id: str
    file_id: str


def operator_token(settings: Settings, base_url: str) -> str:
    async def upsert() -> None:
        config = platform_db_config(settings)
        hasher = PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=1)
        try:
            async with config.get_session() as session, session.begin():
                await upsert_platform_admin(session, hasher, OPERATOR_EMAIL, OPERATOR_PASSWORD)
        finally:
            hasher.close()
            await config.get_engine().dispose()

    # The test runs on pytest-asyncio's loop; this setup needs one of its own.
    thread = threading.Thread(target=lambda: asyncio.run(upsert()))
    thread.start()
    thread.join()
    response = httpx.post(
        f"{base_url}/platform/v1/auth/login",
        json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def provision(base_url: str, operator: str, slug: str) -> LiveTenant:
    """A tenant with an owner, a category, an audience and a ready file."""
    with httpx.Client(base_url=base_url) as client:
        password = f"{slug}-owner-password"
        response = client.post(
            "/platform/v1/tenants",
            json={
                "slug": slug,
                "name": slug.title(),
                "admin": {"email": f"owner@{slug}.example", "password": password},
            },
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert response.status_code == 201, response.text
        tenant = response.json()
        host = tenant["host"]
        response = client.post(
            "/api/v1/auth/login",
            json={"email": f"owner@{slug}.example", "password": password},
            headers={"Host": host},
        )
        assert response.status_code == 200, response.text
        headers = {"Host": host, "Authorization": f"Bearer {response.json()['access_token']}"}
        ids = []
        for kind in ("categories", "audiences"):
            response = client.post(
                f"/api/v1/admin/{kind}", json={"name": f"First {kind}"}, headers=headers
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        response = client.post(
            "/api/v1/files",
            data={"title": "Guide", "category": ids[0], "audiences": [ids[1]], "language": "en"},
            files={"file": ("guide.pdf", PDF, "application/pdf")},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        return LiveTenant(
            id=tenant["id"],
            slug=slug,
            host=host,
            owner_token=headers["Authorization"].removeprefix("Bearer "),
            category_id=ids[0],
            audience_id=ids[1],
            file_id=response.json()["id"],
        )
