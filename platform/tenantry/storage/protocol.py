"""The ObjectStore protocol every store implements, and what stores share.

Each store translates its own failures (botocore, `OSError`, timeouts) into `StoreError`, which
is the catalogue's 503 `storage_unavailable`: callers never see a driver's exception, and never
need to know which store they have.
"""

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.types import ControllerRouterHandler

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.metrics import store_errors

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    content_type: str | None


class StoreError(DomainError):
    """The store failed (down, full, gone, timed out): 503 `storage_unavailable`."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.STORAGE_UNAVAILABLE, detail)
        store_errors.inc()


class StoreUnavailableError(StoreError):
    """The store cannot be reached or used."""


class PartsRejectedError(DomainError):
    """The store refused to complete a multipart upload with these parts (a part missing, too
    small, or an ETag that is not the part's): the client's fault, 422 `upload_parts_invalid`."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.UPLOAD_PARTS_INVALID, detail)


class ObjectNotFoundError(DomainError):
    """The object does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(ErrorCode.OBJECT_NOT_FOUND, f"no object {key}")


# Whether the request may open an object of this tenant (a signed link's second check: the
# tenant is live and the host is not another tenant's). The app provides it, from tenancy.
TenantGate = Callable[[ASGIConnection[Any, Any, Any, Any], uuid.UUID], Awaitable[bool]]
# Told how many bytes of an object a signed link actually sent (the local store's metering).
ServedMeter = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """A part of a multipart upload as the client sent it: its number and the ETag the store
    answered for it."""

    number: int
    etag: str


@runtime_checkable  # Litestar checks injected values against their declared type
class ObjectStore(Protocol):
    async def start(self) -> None:
        """Open clients or directories; called once before the first request."""
        ...

    async def close(self) -> None: ...

    def http_handlers(self) -> Sequence[ControllerRouterHandler]:
        """Routes the store serves itself (the local store's signed downloads), if any."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> int:
        """Store the chunks under `key` with bounded memory and return the bytes written.

        All or nothing: if `chunks` raises (size limit, client gone) or the store fails, no
        object and no partial upload remain, and the original exception propagates.
        """
        ...

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int, origin: str
    ) -> str:
        """A time-limited, absolute download URL that answers with this filename and content
        type. `origin` (scheme, host, port) is where the client reaches this API, for stores
        whose links point back at it."""
        ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        """A small object's whole content (branding assets), or None if there is none. An
        object larger than `max_bytes` is not read: StoreError (only small ones are kept)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    # -- direct uploads: the client sends the parts, the store keeps them until completed ----

    @property
    def part_size(self) -> int:
        """The size of the parts this store prefers (every part but the last)."""
        ...

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        """Begin a multipart upload to `key` that clients fill; returns the store's upload id."""
        ...

    async def presign_part(
        self, key: str, upload_id: str, number: int, *, size: int, expires_in: int, origin: str
    ) -> str:
        """A time-limited URL a client PUTs part `number` (`size` bytes) of the upload to; the
        answer carries the part's ETag. It can write that part of that upload only."""
        ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> str | None:
        """Join the parts into the object at `key`. Returns the object's sha256 when the store
        computed it on the way (None: the caller must, with `read_stream`). Parts the store
        does not hold as listed: PartsRejectedError, and the upload stays open."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload, its parts and whatever the store staged for it beside them; an
        upload that is already gone is not an error."""
        ...

    # -- resumable (tus) uploads: the API appends what it receives to the upload's staging ---

    @property
    def append_limit(self) -> int | None:
        """The largest upload `append` can stage, in bytes (None: no limit of the store's)."""
        ...

    async def append(
        self, key: str, upload_id: str, offset: int, chunks: AsyncIterator[bytes]
    ) -> None:
        """Append `chunks` to the bytes staged for an upload begun by `start_multipart`, right
        after its first `offset` bytes: where the last append ended or, if its end was never
        recorded, where it began (its bytes are dropped first, so nothing is stored twice); an
        offset the store cannot go back to is StoreError. When it returns, and when an
        exception that `chunks` raised propagates, every byte taken from `chunks` is durable;
        when the store itself fails (StoreError), only the first `offset` are known to be. Two
        appends to the same upload at once (the caller's lease keeps them apart) never make an
        object of both: the second is DomainError `upload_locked` where the store can tell at
        once, else `finish_append` refuses the mix (StoreError)."""
        ...

    async def finish_append(self, key: str, upload_id: str) -> None:
        """The staged bytes become the object at `key`; the upload and its staging are gone."""
        ...

    async def read_head(self, key: str, size: int) -> bytes:
        """The object's first `size` bytes (fewer if it is shorter): a ranged read."""
        ...

    def read_stream(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of bounded size."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a tenant-scoped prefix and return how many were removed."""
        ...

    def list_keys(self, prefix: str) -> AsyncIterator[str]:
        """Every server-made key under `prefix` (`keys.is_server_key`: a bucket may hold
        others, put there by hand), in no guaranteed order."""
        ...

    async def check(self) -> None:
        """Raise StoreError unless the store can serve requests."""
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
