"""LocalStore: objects on local disk, downloads through app-signed URLs.

The embedded default for `tenantry dev`. Presigned URLs are stood in for by URLs that point at
this store's own route (`tenantry.storage.local_http`, registered through `http_handlers`)
carrying an expiry, the download filename and content type, and an HMAC over all of them and the
key. Every disk operation goes through `_io`, which turns `OSError` into `StoreError`.

Layout under `root`: `objects/<key>` holds the bytes, `content-types/<key>` the content type,
`multipart/<key>/<upload id>/` a direct upload's content type and parts (`part-<n>-<md5>`: the
ETag is in the name, so a part sent twice keeps both versions and completion takes the one whose
ETag the client lists) or, for a resumable upload, its bytes so far (`staged`: appended, synced,
locked with `flock` while one request appends; published by a rename). Part URLs are signed like download links, over key, upload, part number,
size and expiry, and are PUT to the same route (`local_http`).
"""

import asyncio
import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import quote, urlencode

from litestar.types import ControllerRouterHandler

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage.keys import (
    is_server_key,
    validate_key,
    validate_prefix,
    validate_tenant_scoped_prefix,
)
from tenantry.storage.protocol import (
    CompletedPart,
    MiB,
    ObjectInfo,
    ObjectNotFoundError,
    PartsRejectedError,
    StoreError,
    StoreUnavailableError,
)

T = TypeVar("T")

IO_CHUNK_SIZE = 1 * MiB
MIN_SIGNING_KEY_BYTES = 32

# Domain separation: the same secret may sign other things elsewhere in the app.
_SIGNATURE_CONTEXT = "tenantry.local-store.get.v1"
_PART_SIGNATURE_CONTEXT = "tenantry.local-store.put-part.v1"
_EXPIRY = re.compile(r"[0-9]{1,12}")
_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_ETAG = re.compile(r'"?([0-9a-f]{32})"?')
_TEMP_SUFFIX = ".part"
_STAGED = "staged"
DEFAULT_PART_SIZE = 8 * MiB


async def _io(work: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Disk work off the event loop; a full, read-only or vanished disk is the store's error
    (work that expects a missing file catches FileNotFoundError itself)."""
    try:
        return await asyncio.to_thread(work, *args, **kwargs)
    except OSError as error:
        raise StoreUnavailableError(f"local store failed: {error.strerror or error}") from error


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
    def __init__(
        self,
        root: Path,
        signing_key: bytes,
        base_url_path: str = "/files-local",
        *,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if len(signing_key) < MIN_SIGNING_KEY_BYTES:
            raise ValueError(f"signing_key must be at least {MIN_SIGNING_KEY_BYTES} bytes")
        self._objects = root / "objects"
        self._content_types = root / "content-types"
        self._multipart = root / "multipart"
        self._part_size = part_size
        self._signing_key = signing_key
        self._base_url_path = base_url_path.rstrip("/")

    async def start(self) -> None:
        """Nothing to open: every call opens and closes its own files."""

    async def close(self) -> None:
        """Nothing to release."""

    def http_handlers(self) -> Sequence[ControllerRouterHandler]:
        from tenantry.storage.local_http import local_store_router  # it imports this module

        return [local_store_router(self, self._base_url_path)]

    def _object_path(self, key: str) -> Path:
        # The strict key pattern (no "..", no leading "/") keeps every path under root.
        return self._objects / validate_key(key)

    def _content_type_path(self, key: str) -> Path:
        return self._content_types / validate_key(key)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> int:
        path = self._object_path(key)
        content_type_path = self._content_type_path(key)
        await _io(path.parent.mkdir, parents=True, exist_ok=True)
        # Same directory as the target, so os.replace is an atomic rename on one filesystem.
        fd, temp_name = await _io(
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
                        await _io(file.write, pending)
                        pending = bytearray()
                if pending:
                    await _io(file.write, pending)
                await _io(_flush_and_sync, file)
            await _io(_publish, temp_name, path, content_type_path, content_type)
        except BaseException:
            # Synchronous on purpose: must also run when the task is being cancelled.
            with suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        return written

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

        return await _io(read)

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        path = self._object_path(key)

        def read_whole() -> bytes | None:
            try:
                with path.open("rb") as file:
                    data = file.read(max_bytes + 1)
            except FileNotFoundError:
                return None
            if len(data) > max_bytes:
                raise StoreError(f"{key} is larger than {max_bytes} bytes")
            return data

        return await _io(read_whole)

    async def delete(self, key: str) -> None:
        path = self._object_path(key)
        content_type_path = self._content_type_path(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            content_type_path.unlink(missing_ok=True)

        await _io(remove)

    async def delete_prefix(self, prefix: str) -> int:
        validate_tenant_scoped_prefix(prefix)
        count = 0
        async for _ in self.list_keys(prefix):
            count += 1
        # Prefixes are whole directories, so removing the directories removes exactly the
        # prefix, including temp files of uploads still in progress.
        for tree in (self._objects, self._content_types, self._multipart):
            await _io(_remove_tree, tree / prefix)
        return count

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        # One directory per thread hop: memory is bounded by the largest directory, not the
        # whole tree.
        directories = [self._objects / validate_prefix(prefix)]
        while directories:
            directory = directories.pop()
            subdirectories, files = await _io(_scan_directory, directory)
            directories.extend(subdirectories)
            for file in files:
                key = file.relative_to(self._objects).as_posix()
                # Skips temp files of uploads in progress, and anything else foreign.
                if is_server_key(key):
                    yield key

    async def check(self) -> None:
        def probe() -> None:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._content_types.mkdir(parents=True, exist_ok=True)
            for tree in (self._objects, self._content_types):
                if not os.access(tree, os.W_OK | os.X_OK):
                    raise PermissionError(f"{tree} is not writable")

        try:
            await _io(probe)
        except OSError as error:
            raise StoreUnavailableError(f"local store unusable: {error}") from error

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int, origin: str
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
        return f"{origin.rstrip('/')}{self._base_url_path}/{key}?{query}"

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
        if not is_server_key(key) or not _EXPIRY.fullmatch(expiry):
            return False
        return _verify(sig, self._signature(key, int(expiry), fn, ct), int(expiry), now)

    def _signature(self, key: str, expires_at: int, filename: str, content_type: str) -> str:
        return self._sign(_SIGNATURE_CONTEXT, key, expires_at, filename, content_type)

    def _sign(self, *fields: str | int) -> str:
        # JSON makes the message unambiguous whatever characters the fields hold.
        message = json.dumps(fields)
        digest = hmac.new(self._signing_key, message.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    # -- direct uploads ------------------------------------------------------------------------

    @property
    def part_size(self) -> int:
        return self._part_size

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise PartsRejectedError("no such upload")
        return self._multipart / validate_key(key) / upload_id

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        upload_id = secrets.token_hex(16)
        directory = self._upload_dir(key, upload_id)

        def make() -> None:
            directory.mkdir(parents=True)
            (directory / "content-type").write_text(content_type, encoding="utf-8")

        await _io(make)
        return upload_id

    async def presign_part(
        self, key: str, upload_id: str, number: int, *, size: int, expires_in: int, origin: str
    ) -> str:
        validate_key(key)
        if expires_in < 1:
            raise ValueError("expires_in must be positive")
        expires_at = int(time.time()) + expires_in
        fields = [key, upload_id, str(number), str(size)]
        query = urlencode(
            {
                "upload": upload_id,
                "part": number,
                "size": size,
                "exp": expires_at,
                "sig": self._sign(_PART_SIGNATURE_CONTEXT, *fields, expires_at),
            }
        )
        return f"{origin.rstrip('/')}{self._base_url_path}/{key}?{query}"

    def verify_part(
        self,
        key: str,
        upload: str,
        part: str,
        size: str,
        exp: str,
        sig: str,
        *,
        now: float | None = None,
    ) -> bool:
        """Whether a part URL's parameters are authentic and unexpired (for this key only)."""
        if not (
            is_server_key(key)
            and _UPLOAD_ID.fullmatch(upload)
            and _NUMBER.fullmatch(part)
            and _NUMBER.fullmatch(size)
            and _EXPIRY.fullmatch(exp)
        ):
            return False
        expected = self._sign(_PART_SIGNATURE_CONTEXT, key, upload, part, size, int(exp))
        return _verify(sig, expected, int(exp), now)

    async def write_part(
        self, key: str, upload_id: str, number: int, size: int, chunks: AsyncIterator[bytes]
    ) -> str:
        """Store one part of exactly `size` bytes; returns its ETag (the MD5, as S3's)."""
        directory = self._upload_dir(key, upload_id)
        if not await _io(directory.is_dir):
            raise ObjectNotFoundError(key)  # aborted, completed or expired meanwhile
        fd, temp_name = await _io(tempfile.mkstemp, dir=directory, suffix=_TEMP_SUFFIX)
        md5 = hashlib.md5(usedforsecurity=False)
        written = 0
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        break
                    md5.update(chunk)
                    await _io(file.write, chunk)
                if written != size:
                    raise DomainError(
                        ErrorCode.PART_SIZE_MISMATCH, f"part {number} must be {size} bytes"
                    )
                await _io(_flush_and_sync, file)
            etag = md5.hexdigest()
            await _io(os.replace, temp_name, directory / f"part-{number:05d}-{etag}")
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        return f'"{etag}"'

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> str | None:
        """Joins the parts in one pass, which also hashes them: the sha256 comes back."""
        directory = self._upload_dir(key, upload_id)
        sources: list[Path] = []
        for part in parts:
            etag = _ETAG.fullmatch(part.etag)
            if etag is None:
                raise PartsRejectedError(f"part {part.number}: not an ETag this store made")
            sources.append(directory / f"part-{part.number:05d}-{etag.group(1)}")
        path = self._object_path(key)
        return await _io(_join_parts, sources, directory, path, self._content_type_path(key))

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await _io(_remove_tree, self._upload_dir(key, upload_id))

    # -- resumable uploads ---------------------------------------------------------------------

    @property
    def append_limit(self) -> None:
        """The disk's size is the limit, and the tenant's quota comes first."""
        return None

    async def append(
        self, key: str, upload_id: str, offset: int, chunks: AsyncIterator[bytes]
    ) -> None:
        directory = self._upload_dir(key, upload_id)
        if not await _io(directory.is_dir):
            raise ObjectNotFoundError(key)  # terminated or given up meanwhile
        file = await _io(_open_staged, directory / _STAGED, offset)
        try:
            pending = bytearray()
            try:
                async for chunk in chunks:
                    pending += chunk
                    if len(pending) >= IO_CHUNK_SIZE:
                        # Handed over before the await: a cancellation during this write (which
                        # its thread still finishes) must not write it again below.
                        full, pending = pending, bytearray()
                        await _io(file.write, full)
            finally:  # what was taken from `chunks` is durable, however they ended
                await _io(file.write, pending)
                await _io(_flush_and_sync, file)
        finally:
            file.close()  # and the lock with it

    async def finish_append(self, key: str, upload_id: str) -> None:
        directory = self._upload_dir(key, upload_id)
        path = self._object_path(key)
        await _io(_publish_staged, directory, path, self._content_type_path(key))

    async def read_head(self, key: str, size: int) -> bytes:
        path = self._object_path(key)

        def read_first() -> bytes:
            try:
                with path.open("rb") as file:
                    return file.read(size)
            except FileNotFoundError as error:
                raise ObjectNotFoundError(key) from error

        return await _io(read_first)

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(key)
        if info.size:
            async for chunk in self.open_range(key, 0, info.size - 1):
                yield chunk

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from `start` to `end` inclusive (as parse_range returns), in 1 MiB chunks.

        Raises ObjectNotFoundError (on first iteration) if the object does not exist.
        """
        if not 0 <= start <= end:
            raise ValueError(f"invalid byte range {start}-{end}")
        path = self._object_path(key)
        file = await _io(_open_or_none, path)
        if file is None:
            raise ObjectNotFoundError(key)
        try:
            await _io(file.seek, start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = await _io(file.read, min(IO_CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            file.close()


def _verify(sig: str, expected: str, expires_at: int, now: float | None) -> bool:
    if not sig.isascii() or not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii")):
        return False
    return (time.time() if now is None else now) < expires_at


def _publish(temp_name: str, path: Path, content_type_path: Path, content_type: str) -> None:
    """A finished temp file becomes the object: its content type first, then the atomic
    rename, then the directory synced (the rename itself durable)."""
    content_type_path.parent.mkdir(parents=True, exist_ok=True)
    temp_type = content_type_path.with_name(f".{content_type_path.name}{_TEMP_SUFFIX}")
    temp_type.write_text(content_type, encoding="utf-8")
    os.replace(temp_type, content_type_path)
    os.replace(temp_name, path)
    _fsync_directory(path.parent)


def _join_parts(
    sources: Iterable[Path], directory: Path, path: Path, content_type_path: Path
) -> str:
    """The parts, in order, as the object (hashed on the way); then the upload is gone."""
    try:
        content_type = (directory / "content-type").read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise PartsRejectedError("no such upload") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as target:
            for source in sources:
                try:
                    part = source.open("rb")
                except FileNotFoundError as error:
                    raise PartsRejectedError(f"the store has no {source.name}") from error
                with part:
                    while chunk := part.read(IO_CHUNK_SIZE):
                        digest.update(chunk)
                        target.write(chunk)
            _flush_and_sync(target)
        _publish(temp_name, path, content_type_path, content_type)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _remove_tree(directory)
    return digest.hexdigest()


def _open_staged(path: Path, offset: int) -> BinaryIO:
    """The staged bytes, locked for this append, cut back to `offset` and positioned there."""
    file = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
    try:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as busy:
            raise DomainError(ErrorCode.UPLOAD_LOCKED, "another request is appending") from busy
        held = os.fstat(file.fileno()).st_size
        if held < offset:
            raise StoreError(f"the store holds {held} bytes of the upload, not {offset}")
        file.truncate(offset)
        file.seek(offset)
    except BaseException:
        file.close()
        raise
    return file


def _publish_staged(directory: Path, path: Path, content_type_path: Path) -> None:
    try:
        content_type = (directory / "content-type").read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ObjectNotFoundError(path.name) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    _publish(str(directory / _STAGED), path, content_type_path, content_type)
    _remove_tree(directory)


def _remove_tree(directory: Path) -> None:
    """Remove a whole directory; one that is not there is already removed, any other failure is
    the store's (a disk that refuses must not look like a finished offboarding)."""
    with suppress(FileNotFoundError):
        shutil.rmtree(directory)


def _open_or_none(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


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
