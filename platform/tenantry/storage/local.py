"""LocalStore: objects on local disk, downloads through app-signed URLs.

The embedded default for `tenantry dev`. Presigned URLs are stood in for by URLs that point at
an app route (wired by the app, not here) carrying an expiry, the download filename and content
type, and an HMAC over all of them and the key. This module provides the pure and IO helpers
that route needs: `verify_signed`, `parse_range` and `open_range`.

Layout under `root`: `objects/<key>` holds the bytes, `content-types/<key>` the content type.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from tenantry.storage.keys import (
    KEY_PATTERN,
    validate_key,
    validate_prefix,
    validate_tenant_scoped_prefix,
)
from tenantry.storage.protocol import (
    MiB,
    ObjectInfo,
    ObjectNotFoundError,
    StoreUnavailableError,
)

IO_CHUNK_SIZE = 1 * MiB
MIN_SIGNING_KEY_BYTES = 32

# Domain separation: the same secret may sign other things elsewhere in the app.
_SIGNATURE_CONTEXT = "tenantry.local-store.get.v1"
_EXPIRY = re.compile(r"[0-9]{1,12}")
_TEMP_SUFFIX = ".part"


class RangeNotSatisfiable(ValueError):
    """The Range header asks for bytes outside the object: answer 416 with `bytes */size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size


# One range only; digit runs are bounded so absurd numbers cannot cost anything to parse.
_BYTE_RANGE = re.compile(r"bytes\s*=\s*([0-9]{0,30})\s*-\s*([0-9]{0,30})", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a Range header asks for, or None to send the whole object.

    Supports "bytes=100-199", "bytes=100-" and "bytes=-500". As RFC 9110 allows, headers we do
    not support (other units, several ranges) or that are malformed are ignored (None: answer
    200 with everything). Raises RangeNotSatisfiable when no requested byte exists.
    """
    if header is None:
        return None
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix_length = int(last)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix_length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable, not just the file contents.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_and_sync(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


class LocalStore:
    def __init__(self, root: Path, signing_key: bytes, base_url_path: str = "/files-local") -> None:
        if len(signing_key) < MIN_SIGNING_KEY_BYTES:
            raise ValueError(f"signing_key must be at least {MIN_SIGNING_KEY_BYTES} bytes")
        self._objects = root / "objects"
        self._content_types = root / "content-types"
        self._signing_key = signing_key
        self._base_url_path = base_url_path.rstrip("/")

    def _object_path(self, key: str) -> Path:
        # The strict key pattern (no "..", no leading "/") keeps every path under root.
        return self._objects / validate_key(key)

    def _content_type_path(self, key: str) -> Path:
        return self._content_types / validate_key(key)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> int:
        path = self._object_path(key)
        content_type_path = self._content_type_path(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # Same directory as the target, so os.replace is an atomic rename on one filesystem.
        fd, temp_name = await asyncio.to_thread(
            tempfile.mkstemp, dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX
        )
        written = 0
        try:
            with os.fdopen(fd, "wb") as file:
                pending = bytearray()
                async for chunk in chunks:
                    pending += chunk
                    written += len(chunk)
                    if len(pending) >= IO_CHUNK_SIZE:
                        await asyncio.to_thread(file.write, pending)
                        pending = bytearray()
                if pending:
                    await asyncio.to_thread(file.write, pending)
                await asyncio.to_thread(_flush_and_sync, file)
            await asyncio.to_thread(self._write_content_type, content_type_path, content_type)
            await asyncio.to_thread(os.replace, temp_name, path)
            await asyncio.to_thread(_fsync_directory, path.parent)
        except BaseException:
            # Synchronous on purpose: must also run when the task is being cancelled.
            with suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        return written

    @staticmethod
    def _write_content_type(path: Path, content_type: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp_path = path.with_name(f".{path.name}{_TEMP_SUFFIX}")
        temp_path.write_text(content_type, encoding="utf-8")
        os.replace(temp_path, path)

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._object_path(key)
        content_type_path = self._content_type_path(key)

        def read() -> ObjectInfo | None:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return None
            try:
                content_type: str | None = content_type_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                content_type = None
            return ObjectInfo(size=size, content_type=content_type)

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        path = self._object_path(key)
        content_type_path = self._content_type_path(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            content_type_path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def delete_prefix(self, prefix: str) -> int:
        validate_tenant_scoped_prefix(prefix)
        count = 0
        async for _ in self.list_keys(prefix):
            count += 1
        # Prefixes are whole directories, so removing the directories removes exactly the
        # prefix, including temp files of uploads still in progress.
        for tree in (self._objects, self._content_types):
            await asyncio.to_thread(shutil.rmtree, tree / prefix, ignore_errors=True)
        return count

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        # One directory per thread hop: memory is bounded by the largest directory, not the
        # whole tree.
        directories = [self._objects / validate_prefix(prefix)]
        while directories:
            directory = directories.pop()
            subdirectories, files = await asyncio.to_thread(_scan_directory, directory)
            directories.extend(subdirectories)
            for file in files:
                key = file.relative_to(self._objects).as_posix()
                # Skips temp files of uploads in progress, and anything else foreign.
                if KEY_PATTERN.fullmatch(key):
                    yield key

    async def check(self) -> None:
        def probe() -> None:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._content_types.mkdir(parents=True, exist_ok=True)
            for tree in (self._objects, self._content_types):
                if not os.access(tree, os.W_OK | os.X_OK):
                    raise PermissionError(f"{tree} is not writable")

        try:
            await asyncio.to_thread(probe)
        except OSError as error:
            raise StoreUnavailableError(f"local store unusable: {error}") from error

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        validate_key(key)
        if expires_in < 1:
            raise ValueError("expires_in must be positive")
        expires_at = int(time.time()) + expires_in
        # %20 rather than "+" for spaces: every query parser reads it the same way.
        query = urlencode(
            {
                "exp": expires_at,
                "fn": filename,
                "ct": content_type,
                "sig": self._signature(key, expires_at, filename, content_type),
            },
            quote_via=quote,
        )
        return f"{self._base_url_path}/{key}?{query}"

    def verify_signed(
        self,
        key: str,
        exp: str | int,
        fn: str,
        ct: str,
        sig: str,
        *,
        now: float | None = None,
    ) -> bool:
        """Whether a signed URL's parameters are authentic and unexpired."""
        expiry = str(exp)
        if not KEY_PATTERN.fullmatch(key) or not _EXPIRY.fullmatch(expiry) or not sig.isascii():
            return False
        expires_at = int(expiry)
        expected = self._signature(key, expires_at, fn, ct)
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii")):
            return False
        return (time.time() if now is None else now) < expires_at

    def _signature(self, key: str, expires_at: int, filename: str, content_type: str) -> str:
        # JSON makes the message unambiguous whatever characters the filename holds.
        message = json.dumps([_SIGNATURE_CONTEXT, key, expires_at, filename, content_type])
        digest = hmac.new(self._signing_key, message.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from `start` to `end` inclusive (as parse_range returns), in 1 MiB chunks.

        Raises ObjectNotFoundError (on first iteration) if the object does not exist.
        """
        if not 0 <= start <= end:
            raise ValueError(f"invalid byte range {start}-{end}")
        path = self._object_path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        try:
            await asyncio.to_thread(file.seek, start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = await asyncio.to_thread(file.read, min(IO_CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            file.close()


def _scan_directory(directory: Path) -> tuple[list[Path], list[Path]]:
    subdirectories: list[Path] = []
    files: list[Path] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    files.append(Path(entry.path))
    except FileNotFoundError:
        pass
    return subdirectories, files
