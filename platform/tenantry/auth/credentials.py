"""Revocation without a database read per request: each user's token epoch, held in memory.

Every access token carries its user's `token_epoch` (`ep`). Disabling, demoting or deleting a
user, a new password and logout-everywhere bump the epoch (or delete the row), and a trigger
sends `NOTIFY credentials_changed` naming the tenant and user (migration 0007), which makes
every replica forget that entry: the user's next request reads the epoch once more, and a token
with an old one is refused. A request pays a dictionary lookup; a database read happens once
per user per replica (again after a change, and after the TTL, a safety net).

While the listener is down nothing is cached (`tenantry.db.listener`): every request reads.
API keys are held the same way, by id.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from datetime import datetime

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import ApiKey, User
from tenantry.db.reads import PreparedRead, TenantReader

CHANNEL = "credentials_changed"

_USER = PreparedRead(
    select(User.token_epoch).where(
        User.tenant_id == bindparam("tenant_id"),
        User.id == bindparam("user_id"),
        User.disabled.is_(False),
    )
)
_API_KEY = PreparedRead(
    select(ApiKey.secret_hash, ApiKey.role, ApiKey.expires_at).where(
        ApiKey.tenant_id == bindparam("tenant_id"),
        ApiKey.id == bindparam("key_id"),
        ApiKey.revoked_at.is_(None),
    )
)


# Changes a session made, kept in its `info` until the commit (see `forget_changed`).
_CHANGED = "tenantry.credentials_changed"


def note_credential_change(
    session: AsyncSession, table: str, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> None:
    """Tell this replica's cache once the session commits, ahead of the NOTIFY."""
    session.info.setdefault(_CHANGED, set()).add((table, tenant_id, row_id))


class ApiKeyRecord(msgspec.Struct, frozen=True):
    secret_hash: str
    role: str
    expires_at: datetime | None


# What is held per key: None for a user that is disabled or gone (no epoch matches), a key
# revoked or gone.
_Entry = tuple[float, int | ApiKeyRecord | None]


class CredentialCache:
    """A subscriber of the change listener; bounded (least recently used entries go first)."""

    channel = CHANNEL

    def __init__(self, reader: TenantReader, *, ttl_seconds: float, max_entries: int) -> None:
        self._reader = reader
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, uuid.UUID, uuid.UUID], _Entry] = OrderedDict()
        # Bumped on every change, so a read that raced one never stores what it read.
        self._generation = 0
        self.is_listening = False

    def notified(self, payload: str) -> None:
        table, _, rest = payload.partition(":")
        tenant, _, row = rest.partition(":")
        try:
            key = (table, uuid.UUID(tenant), uuid.UUID(row))
        except ValueError:
            self.listening(self.is_listening)  # not ours to parse: forget everything
            return
        self._generation += 1
        self._entries.pop(key, None)

    def listening(self, on: bool) -> None:
        self._generation += 1
        self._entries.clear()
        self.is_listening = on

    def forget_changed(self, session: AsyncSession) -> None:
        """After a commit: what the session changed is gone from this replica at once (the
        others hear it by NOTIFY), so the caller's very next request is refused."""
        changed = session.info.pop(_CHANGED, ())
        if changed:
            self._generation += 1
            for key in changed:
                self._entries.pop(key, None)

    async def user_epoch(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """The user's current epoch; None if disabled or deleted. The request's tenant must be
        `tenant_id` (the read runs under its RLS)."""
        value = await self._get(("users", tenant_id, user_id), _USER, user_id=user_id)
        return value if isinstance(value, int) else None

    async def api_key(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKeyRecord | None:
        value = await self._get(("api_keys", tenant_id, key_id), _API_KEY, key_id=key_id)
        return value if isinstance(value, ApiKeyRecord) else None

    async def _get(
        self, key: tuple[str, uuid.UUID, uuid.UUID], read: PreparedRead, **values: object
    ) -> int | ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            self._entries.move_to_end(key)
            return cached[1]
        generation = self._generation
        row = await self._reader.fetch_one(read, tenant_id=key[1], **values)
        value: int | ApiKeyRecord | None
        if row is None:
            value = None
        elif key[0] == "users":
            value = int(row["token_epoch"])
        else:
            value = ApiKeyRecord(row["secret_hash"], row["role"], row["expires_at"])
        if self.is_listening and generation == self._generation:
            self._entries[key] = (now + self._ttl, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value
