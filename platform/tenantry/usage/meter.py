"""The local store's served bytes, metered as `serve` usage events.

A signed link's response is streamed after its handler returned, and the client may go away at
any chunk: what was sent is known only when the stream ends. The meter adds it up per file in
memory and writes the sums once a second, in one statement, on the platform engine (the
signed-link route runs outside any tenant's request: the link's signature authorises it, not a
token, and the tenant comes from the server-made key). So the response path never waits for the
database, a burst of downloads costs one write a second, and memory is bounded by the files
served in a second. A write that fails (the database is down) is retried with the next one;
only a process that dies loses its last second.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig

from tenantry.db.usage import UsageRecorder
from tenantry.storage.keys import file_of_key

logger = structlog.get_logger("tenantry.usage")


@dataclass(slots=True)
class Served:
    bytes: int
    since: datetime


class ServedBytesMeter:
    def __init__(self, platform_db: SQLAlchemyAsyncConfig, recorder: UsageRecorder) -> None:
        self._db = platform_db
        self._recorder = recorder
        # (tenant, file) -> bytes and when the first of them went out
        self._pending: dict[tuple[uuid.UUID, uuid.UUID], Served] = {}
        self._lock = asyncio.Lock()

    def served(self, key: str, nbytes: int) -> None:
        ids = file_of_key(key)
        if ids is None or nbytes <= 0:
            return
        pending = self._pending.get(ids)
        if pending is None:
            self._pending[ids] = Served(nbytes, self._recorder.clock())
        else:
            pending.bytes += nbytes

    async def drain(self) -> None:
        """Writes what was served so far (every second; at shutdown; in tests)."""
        async with self._lock:
            if not self._pending:
                return
            served, self._pending = self._pending, {}
            try:
                async with self._db.get_session() as session, session.begin():
                    await self._recorder.record_served(
                        session, {ids: (s.bytes, s.since) for ids, s in served.items()}
                    )
            except Exception:
                for ids, again in served.items():  # the next round writes it
                    pending = self._pending.setdefault(ids, again)
                    if pending is not again:
                        pending.bytes += again.bytes
                        pending.since = again.since
                raise

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            await self._drain_or_log()

    async def close(self) -> None:
        """The last write, at shutdown."""
        await self._drain_or_log()

    async def _drain_or_log(self) -> None:
        try:
            await self.drain()
        except Exception:
            logger.exception("served_bytes_not_recorded", files=len(self._pending))
