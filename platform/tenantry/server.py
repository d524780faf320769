"""Serving: uvicorn in-process for `tenantry dev`, granian worker processes for production.

Dev runs in the process that owns the embedded Postgres, so one Ctrl-C or SIGTERM stops the
server first and Postgres after it; production runs granian's multi-process server on
`create_app`, each worker reading its settings from the environment.
"""

from __future__ import annotations

import asyncio

import click
import uvicorn

from tenantry.app import create_app
from tenantry.config import Settings


def run_dev_server(settings: Settings, host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        # uvicorn exposes start-up only as a flag, so poll it briefly.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            click.echo(f"ready on http://{host}:{port}", err=True)
        await task

    asyncio.run(serve())
    if not server.started:
        raise click.ClickException(f"could not serve on {host}:{port}")


def run_production_server(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    Granian(
        "tenantry.app:create_app",
        address=settings.server_host,
        port=settings.server_port,
        workers=settings.server_workers,
        backlog=settings.server_backlog,
        interface=Interfaces.ASGI,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.server_header_timeout_seconds * 1000),
            keep_alive=settings.server_keep_alive,
            max_buffer_size=settings.server_max_header_bytes,
        ),
        workers_kill_timeout=max(1, round(settings.shutdown_grace_seconds)),
        factory=True,
    ).serve()
