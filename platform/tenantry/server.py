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


def run_production_server(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "tenantry.app:create_app",
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        factory=True,
    ).serve()
