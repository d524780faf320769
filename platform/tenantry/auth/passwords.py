"""bcrypt hashing off the event loop, with bounded concurrency and at low CPU priority.

bcrypt releases the GIL, so a small pool of threads hashes in parallel; a login storm queues
there instead of in the event loop. The threads run at the lowest priority (nice 19): every
other request gets the CPU first, and bcrypt still uses every idle cycle. An unknown user is
checked against a dummy hash of the same cost, so it takes as long as a wrong password.

The threads are shared fairly between tenants: hashes wait in one queue per tenant (the
request's, or none for the operator and the CLI) and the next free thread takes the next
tenant in turn, so a login storm in one tenant queues behind itself while any other tenant's
login waits for at most one hash of each busy tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from tenantry.db.tenant_scope import current_tenant_id
from tenantry.lib.errors import DomainError, ErrorCode

T = TypeVar("T")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt silently ignores everything after 72 bytes


def validate_password(password: str, field: str = "password") -> bytes:
    encoded = password.encode()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            ErrorCode.PASSWORD_TOO_SHORT,
            f"password must be at least {MIN_PASSWORD_LENGTH} characters",
            field=field,
        )
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise DomainError(
            ErrorCode.PASSWORD_TOO_LONG,
            f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8",
            field=field,
        )
    return encoded


def _lowest_thread_priority() -> None:
    # Linux schedules threads individually, so this lowers only the bcrypt thread.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class FairTurns:
    """`slots` turns handed out round-robin between keys (tenants), first come first served
    within a key. Not thread-safe: one event loop uses it."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: OrderedDict[object, deque[asyncio.Future[None]]] = OrderedDict()

    @contextlib.asynccontextmanager
    async def turn(self, key: object) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            called = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, deque()).append(called)
            try:
                await called
            except asyncio.CancelledError:
                if called.done() and not called.cancelled():
                    self._pass_on()  # the turn came as the caller left: the next one has it
                else:
                    self._forget(key, called)
                raise
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        while self._waiting:
            key, queue = next(iter(self._waiting.items()))
            called = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)  # this key's next caller waits for the others
            else:
                del self._waiting[key]
            if not called.done():
                called.set_result(None)
                return
        self._free += 1

    def _forget(self, key: object, called: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is not None and called in queue:
            queue.remove(called)
            if not queue:
                del self._waiting[key]


class PasswordHasher:
    def __init__(self, *, rounds: int, concurrency: int) -> None:
        self._rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="bcrypt",
            initializer=_lowest_thread_priority,
        )
        self._turns = FairTurns(concurrency)
        self._dummy_hash = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds))

    async def _in_pool(self, work: Callable[[], T]) -> T:
        tenant: uuid.UUID | None = current_tenant_id()
        async with self._turns.turn(tenant):
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def hash(self, password: str, field: str = "password") -> str:
        encoded = validate_password(password, field)
        hashed = await self._in_pool(lambda: bcrypt.hashpw(encoded, bcrypt.gensalt(self._rounds)))
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Constant-cost check; `password_hash=None` (unknown user) still pays one bcrypt."""
        encoded = password.encode()
        if len(encoded) > MAX_PASSWORD_BYTES:
            # No stored password is this long; refusing says nothing about the account.
            raise DomainError(
                ErrorCode.PASSWORD_TOO_LONG,
                f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8",
                field="password",
            )
        target = password_hash.encode() if password_hash else self._dummy_hash
        matches = await self._in_pool(lambda: bcrypt.checkpw(encoded, target))
        return matches and password_hash is not None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
