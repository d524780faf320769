"""bcrypt hashing off the event loop, with bounded concurrency.

bcrypt releases the GIL, so worker threads hash in parallel; the limiter keeps at most one hash
per core in flight so a login storm queues instead of starving the event loop. An unknown user
is checked against a dummy hash of the same cost, so it takes as long as a wrong password.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
import bcrypt

from tenantry.lib.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt silently ignores everything after 72 bytes


def validate_password(password: str, field: str = "password") -> bytes:
    encoded = password.encode()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters",
            code="password_too_short",
            field=field,
        )
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise InvalidInput(
            f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8",
            code="password_too_long",
            field=field,
        )
    return encoded


class PasswordHasher:
    def __init__(self, *, rounds: int, concurrency: int) -> None:
        self._rounds = rounds
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._dummy_hash = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds))

    async def hash(self, password: str, field: str = "password") -> str:
        encoded = validate_password(password, field)
        hashed = await anyio.to_thread.run_sync(
            lambda: bcrypt.hashpw(encoded, bcrypt.gensalt(self._rounds)), limiter=self._limiter
        )
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Constant-cost check; `password_hash=None` (unknown user) still pays one bcrypt."""
        encoded = password.encode()
        if len(encoded) > MAX_PASSWORD_BYTES:
            # No stored password is this long; refusing says nothing about the account.
            raise InvalidInput(
                f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8",
                code="password_too_long",
                field="password",
            )
        target = password_hash.encode() if password_hash else self._dummy_hash
        matches = await anyio.to_thread.run_sync(
            bcrypt.checkpw, encoded, target, limiter=self._limiter
        )
        return matches and password_hash is not None
