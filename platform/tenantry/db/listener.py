"""One LISTEN connection per process for every in-memory cache that Postgres keeps current.

Triggers send `NOTIFY` when what a cache holds changes (tenants and domains, credentials);
each cache subscribes to its channel. The connection reconnects with backoff; while it is down,
every subscriber is told so and must not trust what it holds (it stops caching), and when it is
back they drop everything, since anything may have changed while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg
import structlog

logger = structlog.get_logger("tenantry.db")


class Subscriber(Protocol):
    channel: str

    def notified(self, payload: str) -> None:
        """Something this subscriber holds changed."""

    def listening(self, on: bool) -> None:
        """Notifications now arrive (True) or may be missed (False); both drop the cache."""


class ChangeListener:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        subscribers: Sequence[Subscriber],
    ) -> None:
        self._connect = connect
        self._subscribers = subscribers
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, wait_seconds: float = 10.0) -> None:
        self._task = asyncio.create_task(self._run(), name="change-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _set_listening(self, on: bool) -> None:
        for subscriber in self._subscribers:
            subscriber.listening(on)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            lost = asyncio.Event()
            try:
                connection = await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("change_listener_connect_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
                for subscriber in self._subscribers:
                    await connection.add_listener(
                        subscriber.channel,
                        lambda _c, _pid, _channel, payload, s=subscriber: s.notified(payload),
                    )
                self._set_listening(True)
                self._ready.set()
                delay = 0.2
                await lost.wait()
                logger.warning("change_listener_lost")
            finally:
                self._set_listening(False)
                if not connection.is_closed():
                    await connection.close(timeout=2)
