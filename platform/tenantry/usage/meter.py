"""The local store's served bytes, metered as `serve` usage events.

A signed link's response is streamed after its handler returned, and the client may go away at
any chunk; what was sent is known only when the stream ends. The event is then written off the
response path, in a small transaction of its own on the platform engine: the signed-link route
runs outside any tenant's request (the link's signature authorises it, not a token), and the
tenant comes from the server-made key. If the database is down at that moment the event is
lost and logged: the response itself has already been served.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig

from tenantry.db.usage import UsageRecorder
from tenantry.storage.keys import file_of_key

logger = structlog.get_logger("tenantry.usage")


class ServedBytesMeter:
    def __init__(self, platform_db: SQLAlchemyAsyncConfig, recorder: UsageRecorder) -> None:
        self._db = platform_db
        self._recorder = recorder
        self._writing: set[asyncio.Task[None]] = set()

    def served(self, key: str, nbytes: int) -> None:
        ids = file_of_key(key)
        if ids is None or nbytes <= 0:
            return
        task = asyncio.get_running_loop().create_task(self._write(*ids, nbytes))
        self._writing.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._writing.discard)

    async def drain(self) -> None:
        """Waits for the events still being written (at shutdown; tests)."""
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    async def _write(self, tenant_id: uuid.UUID, file_id: uuid.UUID, nbytes: int) -> None:
        try:
            async with self._db.get_session() as session, session.begin():
                await self._recorder.record_served(session, tenant_id, file_id, nbytes)
        except Exception:
            logger.exception("served_bytes_not_recorded", tenant_id=str(tenant_id), bytes=nbytes)
