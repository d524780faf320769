"""The ObjectStore protocol every store implements, and what stores share."""

import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    content_type: str | None


class StoreError(Exception):
    """Base class for storage failures the caller may want to tell apart."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or used (readiness check failed)."""


class ObjectNotFoundError(StoreError):
    """The object does not exist."""


class ObjectStore(Protocol):
    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> int:
        """Store the chunks under `key` with bounded memory and return the bytes written.

        All or nothing: if `chunks` raises (size limit, client gone) or the store fails, no
        object and no partial upload remain, and the original exception propagates.
        """
        ...

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        """A time-limited download URL that answers with this filename and content type."""
        ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a tenant-scoped prefix and return how many were removed."""
        ...

    def list_keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key under `prefix`, in no guaranteed order."""
        ...

    async def check(self) -> None:
        """Raise StoreUnavailableError unless the store can serve requests."""
        ...


_UNSAFE_IN_QUOTED_STRING = re.compile(r'[^\x20-\x7e]|["\\%]')
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def content_disposition(filename: str, *, disposition: str = "attachment") -> str:
    """An RFC 6266 Content-Disposition value carrying `filename` safely.

    `filename*` (RFC 8187, formerly 5987) holds the exact UTF-8 name; `filename` holds an ASCII
    fallback for old clients, with quotes, backslashes, percent signs and non-ASCII replaced so
    nothing can break out of the quoted string. Control characters are dropped from both, which
    also rules out header injection through CR/LF.
    """
    name = _CONTROL_CHARS.sub("", unicodedata.normalize("NFC", filename)).strip() or "download"
    fallback = _UNSAFE_IN_QUOTED_STRING.sub("_", name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
