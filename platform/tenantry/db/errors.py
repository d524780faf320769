"""Database failures as the catalogue's errors: an outage is 503, a value Postgres cannot store
is 422, whichever driver path (ORM or raw asyncpg) met it."""

from __future__ import annotations

import asyncpg
from advanced_alchemy.exceptions import AdvancedAlchemyError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tenantry.lib.errors import DomainError, ErrorCode

# asyncpg's errors that mean "no usable connection", not "your statement was wrong".
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    PoolTimeout,
    asyncpg.InterfaceError,  # connection closed or in a bad state
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def translate_database_error(exc: Exception) -> DomainError | None:
    """The catalogue error for a database failure, or None for a bug (an unexpected error)."""
    if isinstance(exc, AdvancedAlchemyError):  # a repository's wrapper: judge what it wraps
        wrapped = exc.__cause__
        return translate_database_error(wrapped) if isinstance(wrapped, Exception) else None
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return _unavailable()
        cause: BaseException | None = exc.orig.__cause__ if exc.orig is not None else None
        original = cause if isinstance(cause, Exception) else exc.orig
        return translate_database_error(original) if isinstance(original, Exception) else None
    if isinstance(exc, asyncpg.TransactionRollbackError):  # deadlock, serialization failure
        return DomainError(ErrorCode.CONCURRENT_CHANGE, "a concurrent change won; retry")
    if isinstance(exc, asyncpg.DataError):  # SQLSTATE class 22: NUL bytes, out-of-range numbers
        return DomainError(ErrorCode.INVALID_VALUE, f"a value cannot be stored: {exc}")
    if isinstance(exc, _CONNECTION_ERRORS):
        return _unavailable()
    return None


def _unavailable() -> DomainError:
    return DomainError(ErrorCode.DATABASE_UNAVAILABLE, "the database is unavailable; retry later")


# What the app maps through `translate_database_error`: both drivers' own error trees, the
# repository layer's wrappers of them, and OSError, which SQLAlchemy lets through unwrapped when
# a pool cannot connect at all (refused, socket gone). The stores translate their own OSErrors,
# so one that reaches the app is the database's.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    AdvancedAlchemyError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
