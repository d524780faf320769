"""The upload pipeline's measuring stage: sniff, check, count, hash, and stop at the limits.

One pass: the first bytes decide the type, then every chunk is counted and hashed on its way to
the store. Exceeding a limit raises inside the stream, so the store aborts the upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage import SNIFF_BYTES, declared_matches, mime_essence, sniff


def accepted_set(allowed_types: list[str] | None) -> set[str] | None:
    """The tenant's accepted types as sniffed types compare (None: every type sniffed)."""
    return {mime_essence(t) for t in allowed_types} if allowed_types is not None else None


def check_content(head: bytes, declared: str | None, allowed: set[str] | None) -> str:
    """The real type of a file from its first bytes, or the refusal: empty, a type the platform
    does not take, not the declared type, or not one the tenant accepts. Every upload path."""
    if not head:
        raise DomainError(ErrorCode.EMPTY_FILE, "the file is empty", field="file")
    sniffed = sniff(head)
    if sniffed is None:
        raise DomainError(
            ErrorCode.UNSUPPORTED_FILE_TYPE, "the file's type is not one the platform accepts"
        )
    if not declared_matches(declared, sniffed):
        raise DomainError(
            ErrorCode.CONTENT_TYPE_MISMATCH, f"declared {declared}, but the content is {sniffed}"
        )
    if allowed is not None and sniffed not in allowed:
        raise DomainError(
            ErrorCode.UNSUPPORTED_FILE_TYPE, f"{sniffed} is not allowed for this tenant"
        )
    return sniffed


class MeteredUpload:
    """Wraps the incoming chunks: `open()` sniffs, `stream()` passes them on, measured."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        declared_type: str | None,
        allowed_types: list[str] | None,
        max_file_bytes: int,
        quota_left: int,
    ) -> None:
        self._chunks = chunks
        self._declared = declared_type
        self._allowed = accepted_set(allowed_types)
        self._max_file_bytes = max_file_bytes
        self._quota_left = quota_left
        self._head = b""
        self._hash = hashlib.sha256()
        self.size = 0
        self.content_type = ""

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def open(self) -> str:
        """Read the first bytes and decide the real type (or refuse the file)."""
        head = bytearray()
        async for chunk in self._chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
        self._head = bytes(head)
        self.content_type = check_content(self._head, self._declared, self._allowed)
        return self.content_type

    async def stream(self) -> AsyncIterator[bytes]:
        """The bytes, counted and hashed; raises at a limit (the store then aborts)."""
        if self._head:
            yield self._count(self._head)
        async for chunk in self._chunks:
            yield self._count(chunk)

    def _count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self._max_file_bytes:
            raise DomainError(
                ErrorCode.FILE_TOO_LARGE, f"files may be at most {self._max_file_bytes} bytes"
            )
        if self.size > self._quota_left:
            raise DomainError(
                ErrorCode.QUOTA_EXCEEDED, "the tenant's storage quota would be exceeded"
            )
        self._hash.update(chunk)
        return chunk
