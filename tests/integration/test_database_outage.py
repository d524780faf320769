"""The database goes away and comes back: the app talks to Postgres through a TCP proxy that the
test cuts (closing every connection and refusing new ones) and restores. Every path answers 503
`database_unavailable` while it is cut, never a 500, and works again once it is back."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api


class CuttableProxy:
    """A TCP forwarder in a thread of its own, which can drop everything and refuse for a while."""

    def __init__(self, target_host: str, target_port: int) -> None:
        # pgserver listens on a unix socket in a directory (`?host=/dir`); a server on TCP too.
        self._target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.restore()

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target
        if host.startswith("/"):
            opened = asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        else:
            opened = asyncio.open_connection(host, port)
        upstream_reader, upstream_writer = await opened
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._stop())

    def restore(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def proxy(settings: Settings) -> Iterator[CuttableProxy]:
    url = make_url(settings.database_url or "")
    socket_dir = url.query.get("host")
    host = socket_dir if isinstance(socket_dir, str) else url.host or "127.0.0.1"
    proxy = CuttableProxy(host, url.port or 5432)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
async def app(settings: Settings, proxy: CuttableProxy, clean_database: None) -> Litestar:
    through_proxy = (
        make_url(settings.database_url or "")
        .difference_update_query(["host"])
        .set(host="127.0.0.1", port=proxy.port)
    )
    return create_app(
        msgspec.structs.replace(
            settings, database_url=through_proxy.render_as_string(hide_password=False)
        )
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield client


async def test_every_path_is_503_while_the_database_is_gone(api: Api, proxy: CuttableProxy) -> None:
    acme = await api.provision("acme")
    auth = {"Host": acme.host, **await api.token(acme)}
    requests = [
        ("GET", "/api/v1/auth/me", auth),  # the raw read pool
        ("GET", "/api/v1/files", auth),  # raw, with the tenant already cached
        ("GET", "/api/v1/files?language=en", auth),  # the ORM session
        ("GET", "/api/v1/categories", auth),
        ("GET", "/platform/v1/tenants", api.operator),  # the platform engine
        ("GET", "/api/v1/branding", {"Host": "uncached.localhost"}),  # a tenant lookup
    ]

    async def answers() -> list[tuple[int, str | None]]:
        results = []
        for method, url, headers in requests:
            response = await api.client.request(method, url, headers=headers, timeout=60)
            code = response.json().get("code") if response.status_code >= 400 else None
            results.append((response.status_code, code))
        return results

    before = await answers()
    assert [status for status, _ in before[:5]] == [200] * 5
    proxy.cut()
    during = await answers()
    assert during == [(503, "database_unavailable")] * len(requests), during
    proxy.restore()
    after = await answers()
    assert after == before
