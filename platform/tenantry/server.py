"""Serving: uvicorn in-process for `tenantry dev`, granian worker processes for production.

Dev runs in the process that owns the embedded Postgres, so one Ctrl-C or SIGTERM stops the
server first and Postgres after it; production runs granian's multi-process server on
`create_app`, each worker reading its settings from the environment.

Production's SIGTERM: readiness turns 503 at once and the server keeps answering for
`shutdown_drain_seconds` (load balancers notice and stop sending), then granian stops accepting,
gives in-flight requests (uploads included) up to `shutdown_grace_seconds`, runs each worker's
lifespan shutdown (pools close) and exits 0. A second SIGTERM skips the drain.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import structlog
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.server.mp import MPServer

from tenantry.config import Settings
from tenantry.lib.logging import configure_logging, stdlib_log_config
from tenantry.lib.runtime import (
    METRICS_DIR_VARIABLE,
    RUNTIME_DIR_VARIABLE,
    Drain,
    metrics_dir,
    record_server,
)


def run_dev_server(
    settings: Settings, host: str, port: int, announce: Callable[[str], None]
) -> None:
    import uvicorn

    from tenantry.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=round(settings.shutdown_grace_seconds),
        h11_max_incomplete_event_size=settings.server_max_header_bytes,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        # uvicorn exposes start-up only as a flag, so poll it briefly.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            announce(f"ready on http://{host}:{port}")
        await task

    asyncio.run(serve())
    if not server.started:
        raise click.ClickException(f"could not serve on {host}:{port}")


def granian_options(settings: Settings) -> dict[str, Any]:
    """How granian serves an app factory under these settings (the benchmarks' framework floor
    is served the same way)."""
    return {
        "backlog": settings.server_backlog,
        "interface": Interfaces.ASGI,
        "http1_settings": HTTP1Settings(
            header_read_timeout=round(settings.server_header_timeout_seconds * 1000),
            keep_alive=settings.server_keep_alive,
            max_buffer_size=settings.server_max_header_bytes,
        ),
        "workers_kill_timeout": max(1, round(settings.shutdown_grace_seconds)),
        "factory": True,
    }


def run_production_server(settings: Settings) -> None:
    configure_logging(json=settings.json_logs, level_name=settings.log_level)
    runtime_dir = _fresh_runtime_dir(settings.runtime_dir)
    # The workers are forked from this process and build their settings from the environment.
    os.environ[RUNTIME_DIR_VARIABLE] = str(runtime_dir)
    os.environ[METRICS_DIR_VARIABLE] = str(metrics_dir(runtime_dir))
    record_server(runtime_dir)
    try:
        _DrainingGranian(
            "tenantry.app:create_app",
            drain=Drain(runtime_dir),
            drain_seconds=settings.shutdown_drain_seconds,
            address=settings.server_host,
            port=settings.server_port,
            workers=settings.server_workers,
            log_dictconfig=stdlib_log_config(
                json=settings.json_logs, level_name=settings.log_level
            ),
            **granian_options(settings),
        ).serve()
    finally:
        if settings.runtime_dir is None:
            shutil.rmtree(runtime_dir, ignore_errors=True)


def _fresh_runtime_dir(configured: Path | None) -> Path:
    """The given directory emptied (a previous run's samples must not count), or a new one."""
    if "prometheus_client" in sys.modules:
        # Imported before its directory is set, it keeps each worker's samples private.
        raise RuntimeError("prometheus_client was imported before the server set its directory")
    if configured is None:
        runtime_dir = Path(tempfile.mkdtemp(prefix="tenantry-"))
    else:
        shutil.rmtree(configured, ignore_errors=True)
        runtime_dir = configured
    metrics_dir(runtime_dir).mkdir(parents=True)
    return runtime_dir


class _DrainingGranian(MPServer):
    def __init__(self, target: str, *, drain: Drain, drain_seconds: float, **options: Any) -> None:
        super().__init__(target, **options)
        self._drain = drain
        self._drain_seconds = drain_seconds

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        if self._drain.draining or self._drain_seconds <= 0:
            super().signal_handler_interrupt(*args, **kwargs)  # type: ignore[no-untyped-call]
            return
        self._drain.start()
        structlog.get_logger("tenantry.server").info(
            "draining", seconds=self._drain_seconds, then="stop accepting, finish in-flight"
        )
        stop = threading.Timer(self._drain_seconds, super().signal_handler_interrupt)
        stop.daemon = True
        stop.start()
