"""`/` on the API host points a newcomer at the docs and the health checks, and every link in it
answers."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry import __version__


async def test_the_index_names_the_docs_and_health(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    index = response.json()
    assert index == {
        "name": "Tenantry",
        "version": __version__,
        "docs": "/schema",
        "openapi": "/schema/openapi.json",
        "health": {"live": "/health/live", "ready": "/health/ready"},
        "metrics": "/metrics",
    }
    for link in (index["docs"], index["openapi"], index["metrics"], *index["health"].values()):
        assert (await client.get(link)).status_code == 200, link
    openapi = (await client.get(index["openapi"])).json()
    assert openapi["paths"]["/"]["get"]["security"] == []  # no token needed
