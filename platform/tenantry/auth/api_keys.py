"""API keys: a tenant's machine credentials, sent as `Authorization: Bearer tk_...`.

A key is `tk_` + its tenant's id + its own id (hex) + a 256-bit secret. The ids let the request
find the key (and, on a shared host, its tenant) without a search; only a keyed hash of the
secret is stored (HMAC-SHA256 under a key derived from the server secret: keys are random, so a
slow password hash would buy nothing and cost every request). Checking a key is a dictionary
lookup (`tenantry.auth.credentials`) and one HMAC; revoking it notifies every replica.

Last use is recorded at most once a minute per key per replica, written in the background.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import text

PREFIX = "tk_"
_IDS = 64  # two UUIDs in hex
_MIN_SECRET = 32
LAST_USED_EVERY_SECONDS = 60.0
logger = structlog.get_logger("tenantry.auth")

_TOUCH = text(
    "UPDATE api_keys AS k SET last_used_at = used.at FROM unnest("
    "CAST(:tenant_ids AS uuid[]), CAST(:key_ids AS uuid[]), CAST(:ats AS timestamptz[])"
    ") AS used (tenant_id, key_id, at) WHERE k.tenant_id = used.tenant_id AND k.id = used.key_id"
)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    secret: str


def is_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def parse_api_key(token: str) -> PresentedKey | None:
    """The parts of a well-formed key; None for anything else (then it is simply invalid)."""
    if not is_api_key(token) or len(token) < len(PREFIX) + _IDS + _MIN_SECRET:
        return None
    ids, secret = token[len(PREFIX) : len(PREFIX) + _IDS], token[len(PREFIX) + _IDS :]
    try:
        return PresentedKey(uuid.UUID(hex=ids[:32]), uuid.UUID(hex=ids[32:]), secret)
    except ValueError:
        return None


class ApiKeyHasher:
    def __init__(self, server_secret: str) -> None:
        self._key = hmac.new(server_secret.encode(), b"tenantry api keys", hashlib.sha256).digest()

    def new_key(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> tuple[str, str]:
        """(the key to show once, the hash to store)."""
        secret = secrets.token_urlsafe(32)
        return f"{PREFIX}{tenant_id.hex}{key_id.hex}{secret}", self.hash(key_id, secret)

    def hash(self, key_id: uuid.UUID, secret: str) -> str:
        return hmac.new(self._key, key_id.bytes + secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, key: PresentedKey, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash(key.key_id, key.secret), stored_hash)


class KeyUseRecorder:
    """Remembers when keys were used and writes it at most once a minute per key."""

    def __init__(self, platform_db: SQLAlchemyAsyncConfig) -> None:
        self._db = platform_db
        self._written: dict[uuid.UUID, float] = {}
        self._pending: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}

    def used(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._written.get(key_id, -LAST_USED_EVERY_SECONDS) >= LAST_USED_EVERY_SECONDS:
            self._written[key_id] = now
            self._pending[(tenant_id, key_id)] = datetime.now(UTC)

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        keys = list(pending)
        async with self._db.get_session() as session, session.begin():
            await session.execute(
                _TOUCH,
                {
                    "tenant_ids": [tenant_id for tenant_id, _ in keys],
                    "key_ids": [key_id for _, key_id in keys],
                    "ats": [pending[key] for key in keys],
                },
            )

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            await self.close()

    async def close(self) -> None:
        """Writes what is pending (also at shutdown); a failure is logged, not retried: a
        last-used time is worth a log line, not a queue."""
        try:
            await self.flush()
        except Exception:
            logger.exception("api_key_last_used_not_recorded")
