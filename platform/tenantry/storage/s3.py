"""S3Store: objects in an S3-compatible bucket (AWS S3, MinIO, Ceph) through aioboto3.

Every call to the client runs inside `_translated`, so botocore's errors, timeouts and socket
errors leave this module as `StoreError` (503 `storage_unavailable`), never as themselves.

Resumable (tus) uploads are the session's multipart upload plus a staged tail. S3 wants every
part but the last to be at least 5 MiB, and a PATCH carries any number of bytes, so an append
cuts what it receives into parts of `part_size` (the upload's next part numbers) and, however
its body ends, stages what is left in the object `<key>.tus-tail`, which the next append reads
back and sends first: parts stay full. That object holds the tail and after it a manifest, the
part size and the ETag S3 answered for each part, in order. So the upload's length comes from
one GET (rather than ListParts and a HEAD), a state is one object written last (never a tail
without its parts), a changed `part_size` does not misread older uploads, and `finish_append`
completes with exactly the manifest's (number, ETag) pairs and the tail as the last part.

Going back. An append whose end was never recorded (a checksummed body cut off or refused, a
crash between the store and the database) leaves bytes beyond the offset the next append comes
with. In the tail they are cut off; but the parts of an incomplete upload cannot be read back,
so the bytes of a part before that offset could not be rebuilt once its part was sent. Hence,
before it sends a part, an append keeps the state it goes on from in `<key>.tus-base` (a
server-side copy, usually). The caller's offset is where the last append ended (`tus-tail`) or,
when its end was not recorded, where it began (`tus-base`), and the next append goes on from
that state, sending the part numbers after it again (S3 keeps a part number's last upload; parts
past the state are left out of completion). The other way out, adopting the store's length in
the tus layer, would keep bytes that a tus checksum refused.

Two appends at once: the tus layer's lease (`WRITE_LEASE`) lets one PATCH append at a time as
long as each ends within it; one that outlives it could meet the next. Then no object mixes
them: completion names each part's ETag, so S3 refuses (InvalidPart: StoreError) a part that
the other append sent again, and the upload cannot complete. Staging objects are keys of the
layout (`keys.staging_key`) that belong to the upload session: aborting removes them, and the
reconciler removes any whose upload is over. A PATCH moves up to one part more than it carries
each way (the tail read and staged again) and holds up to three parts in memory; an upload
takes at most MAX_PARTS parts (`append_limit`).
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aioboto3
import msgspec
import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError
from litestar.types import ControllerRouterHandler

from tenantry.storage.keys import (
    STAGING_NAMES,
    TUS_BASE,
    TUS_TAIL,
    is_server_key,
    staging_key,
    validate_key,
    validate_prefix,
    validate_tenant_scoped_prefix,
)
from tenantry.storage.protocol import (
    CompletedPart,
    MiB,
    ObjectInfo,
    PartsRejectedError,
    StoreError,
    StoreUnavailableError,
    content_disposition,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
CHECK_TIMEOUT_SECONDS = 5.0
READ_CHUNK_SIZE = 1 * MiB
MAX_PARTS = 10_000  # S3's limit for one multipart upload
OCTET_STREAM = "application/octet-stream"
# A staging object's metadata: where its tail ends and its manifest begins.
_TAIL_BYTES = "tus-tail-bytes"
# What S3 answers when the parts a client lists are not the upload's: the client's to fix.
_PARTS_REJECTED = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"}

log = structlog.get_logger(__name__)


@asynccontextmanager
async def _translated(action: str, deadline: float | None = None) -> AsyncIterator[None]:
    """The store's own failures as StoreError; anything else (the caller's stream) unchanged.

    `deadline` bounds the whole call: botocore's read timeout does not cover a request body that
    a stalled store stops reading, and such a write would otherwise wait forever."""
    try:
        async with asyncio.timeout(deadline):
            yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise StoreUnavailableError(f"{action} failed: {code}") from error
    except (BotoCoreError, OSError, TimeoutError) as error:
        raise StoreUnavailableError(f"{action} failed: {type(error).__name__}") from error


async def _create_multipart(
    client: "S3Client", bucket: str, key: str, content_type: str, deadline: float
) -> str:
    async with _translated("starting the upload", deadline):
        response = await client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type
        )
    return response["UploadId"]


class _MultipartUpload:
    """A multipart upload fed chunk by chunk: each full part is sent while the next one buffers
    (one part in flight at most), and what is short of a part stays buffered. Without an
    `upload_id` the upload begins with its first part; with one, parts go on after `etags`."""

    def __init__(
        self,
        client: "S3Client",
        bucket: str,
        key: str,
        deadline: float,
        *,
        part_size: int,
        content_type: str = OCTET_STREAM,
        upload_id: str | None = None,
        etags: Sequence[str] = (),
        head: bytes = b"",
    ) -> None:
        self._client = client
        self._deadline = deadline
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._content_type = content_type
        self._upload_id = upload_id
        self._parts: list[CompletedPartTypeDef] = [
            {"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, 1)
        ]
        self._pieces: deque[memoryview] = deque([memoryview(head)] if head else [])
        self._buffered = len(head)
        self._in_flight: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._upload_id is not None

    @property
    def etags(self) -> tuple[str, ...]:
        """The ETags of the parts stored so far, in part order."""
        return tuple(part["ETag"] for part in self._parts)

    async def write(self, chunk: bytes) -> None:
        """Buffer `chunk` and send the full parts it completes. The chunk is buffered whole
        before any wait, so a caller cancelled meanwhile loses none of what it handed over."""
        if chunk:
            self._pieces.append(memoryview(chunk))
            self._buffered += len(chunk)
        await self._send_full_parts()

    async def settle(self) -> bytes:
        """Every full part sent and stored; the rest (short of a part) taken out and returned."""
        await self._send_full_parts()
        await self.wait_in_flight()
        return self._take(self._buffered)

    async def wait_in_flight(self) -> None:
        """Wait for the part being sent; raises if sending it failed. Shielded: a caller
        cancelled meanwhile leaves the part to finish, and the next wait (or abort) settles it."""
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)
            self._in_flight = None

    async def _send_full_parts(self) -> None:
        while self._buffered >= self._part_size:
            # The previous part first: one part in flight, one buffering.
            await self.wait_in_flight()
            upload_id = await self._begin()
            self._start_part(upload_id, self._take(self._part_size))

    async def _begin(self) -> str:
        if self._upload_id is None:
            self._upload_id = await _create_multipart(
                self._client, self._bucket, self._key, self._content_type, self._deadline
            )
        return self._upload_id

    def _start_part(self, upload_id: str, body: bytes) -> None:
        self._in_flight = asyncio.create_task(
            self._upload_part(upload_id, len(self._parts) + 1, body)
        )

    def _take(self, size: int) -> bytes:
        """The first `size` buffered bytes, joined."""
        taken: list[memoryview] = []
        needed = size
        while needed:
            piece = self._pieces[0]
            if len(piece) <= needed:
                taken.append(self._pieces.popleft())
                needed -= len(piece)
            else:
                taken.append(piece[:needed])
                self._pieces[0] = piece[needed:]
                needed = 0
        self._buffered -= size
        return b"".join(taken)

    async def _upload_part(self, upload_id: str, part_number: int, body: bytes) -> None:
        async with _translated(f"uploading part {part_number}", self._deadline):
            response = await self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=body,
            )
        self._parts.append({"PartNumber": part_number, "ETag": response["ETag"]})

    async def complete(self) -> None:
        """What is buffered becomes the last part (S3 takes a short last part, and an empty
        object is one empty part); then S3 joins the parts, checking each one's ETag."""
        rest = await self.settle()
        upload_id = await self._begin()
        if rest or not self._parts:
            self._start_part(upload_id, rest)
            await self.wait_in_flight()
        async with _translated("completing the upload", self._deadline):
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=upload_id,
                MultipartUpload={"Parts": self._parts},
            )

    async def abort(self) -> None:
        """Drop the upload and every part sent; never raises, so the caller's error survives."""
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved and dropped: the caller's exception is what counts
        if self._upload_id is None:
            return
        try:
            async with asyncio.timeout(self._deadline):
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
        except Exception:
            # The bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop.
            log.warning(
                "multipart_abort_failed", key=self._key, upload_id=self._upload_id, exc_info=True
            )


class _Manifest(msgspec.Struct, frozen=True):
    """A staging object's last bytes: its parts' size and their ETags, in part order."""

    part_size: int
    etags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Staging:
    """A resumable upload's bytes on S3: full parts of `part_size` (S3's ETags for them, in
    part order) and the tail after them, short of a part."""

    part_size: int
    etags: tuple[str, ...]
    tail: bytes

    @property
    def start(self) -> int:
        """Where the tail begins."""
        return self.part_size * len(self.etags)

    @property
    def length(self) -> int:
        return self.start + len(self.tail)

    def cut(self, offset: int) -> "_Staging | None":
        """The state of this one's first `offset` bytes, if it can be had: only the tail can be
        cut (an incomplete upload's parts cannot be read back)."""
        if not self.start <= offset <= self.length:
            return None
        return replace(self, tail=self.tail[: offset - self.start])

    def encode(self) -> tuple[bytes, dict[str, str]]:
        """The staging object's body (the tail, then the manifest) and metadata."""
        manifest = msgspec.json.encode(_Manifest(self.part_size, self.etags))
        return self.tail + manifest, {_TAIL_BYTES: str(len(self.tail))}

    @classmethod
    def decode(cls, body: bytes, metadata: dict[str, str]) -> "_Staging":
        try:
            tail_bytes = int(metadata[_TAIL_BYTES])
            manifest = msgspec.json.decode(body[tail_bytes:], type=_Manifest)
        except (KeyError, ValueError, msgspec.DecodeError) as error:
            raise StoreError("an upload's staging object is not one this store wrote") from error
        return cls(manifest.part_size, manifest.etags, body[:tail_bytes])


class S3Store:
    """An ObjectStore on one bucket. Call `start()` (or use `async with`) before use.

    One long-lived client serves every call. With `presign_endpoint_url`, download URLs are
    signed for that address instead (e.g. the public MinIO address when the app talks to MinIO
    on an internal network name).
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        presign_endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        operation_timeout: float = 300.0,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self._bucket = bucket
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._part_size = part_size
        self._presign_endpoint_url = presign_endpoint_url
        self._timeouts = (connect_timeout, read_timeout, max_attempts)
        self._deadline = operation_timeout
        self._session = aioboto3.Session()
        self._exit_stack: AsyncExitStack | None = None
        self._client_or_none: S3Client | None = None
        self._presign_client_or_none: S3Client | None = None

    async def start(self) -> None:
        if self._exit_stack is not None:
            return
        config = AioConfig(
            signature_version="s3v4",
            # MinIO and most self-hosted stores only understand path-style addressing.
            s3={"addressing_style": "path" if self._endpoint_url else "auto"},
            # Newer botocore adds CRC checksums to every upload; several S3-compatible stores
            # reject them. Integrity is covered by the sha256 the upload path computes.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=self._timeouts[0],
            read_timeout=self._timeouts[1],
            retries={"max_attempts": self._timeouts[2], "mode": "standard"},
        )
        stack = AsyncExitStack()
        try:
            self._client_or_none = await self._open_client(stack, self._endpoint_url, config)
            if self._presign_endpoint_url is not None:
                self._presign_client_or_none = await self._open_client(
                    stack, self._presign_endpoint_url, config
                )
        except BaseException:
            await stack.aclose()
            self._client_or_none = self._presign_client_or_none = None
            raise
        self._exit_stack = stack

    async def _open_client(
        self, stack: AsyncExitStack, endpoint_url: str | None, config: AioConfig
    ) -> "S3Client":
        return await stack.enter_async_context(
            self._session.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=self._region,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=config,
            )
        )

    async def close(self) -> None:
        if self._exit_stack is None:
            return
        stack, self._exit_stack = self._exit_stack, None
        self._client_or_none = self._presign_client_or_none = None
        await stack.aclose()

    def http_handlers(self) -> Sequence[ControllerRouterHandler]:
        """None: downloads go to the bucket's own presigned URLs."""
        return ()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def _client(self) -> "S3Client":
        if self._client_or_none is None:
            raise RuntimeError("S3Store is not started; call start() or use `async with`")
        return self._client_or_none

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (dev and tests; production provisions it)."""
        try:
            await self._client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as error:
            if _status(error) != 404:
                raise
        if self._region == "us-east-1":
            await self._client.create_bucket(Bucket=self._bucket)
        else:
            # Self-hosted stores accept region names outside the stubs' list of AWS regions.
            await self._client.create_bucket(
                Bucket=self._bucket,
                CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
            )

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> int:
        validate_key(key)
        upload = _MultipartUpload(
            self._client,
            self._bucket,
            key,
            self._deadline,
            part_size=self._part_size,
            content_type=content_type,
        )
        total = 0
        try:
            async for chunk in chunks:
                total += len(chunk)
                await upload.write(chunk)
            if upload.started:
                await upload.complete()
                return total
            # Short of a part: one plain PUT.
            body = await upload.settle()
            async with _translated("storing the object", self._deadline):
                await self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=body, ContentType=content_type
                )
        except BaseException:
            await upload.abort()
            raise
        return total

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int, origin: str
    ) -> str:
        """Signed for the bucket's endpoint (`origin` is the API's; S3 links do not use it)."""
        return await self._presign(
            "get_object",
            key,
            expires_in,
            ResponseContentDisposition=content_disposition(filename),
            ResponseContentType=content_type,
        )

    async def _presign(self, operation: str, key: str, expires_in: int, **params: object) -> str:
        validate_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        client = self._presign_client_or_none or self._client
        async with _translated("signing the link"):
            return await client.generate_presigned_url(
                operation,
                Params={"Bucket": self._bucket, "Key": key, **params},
                ExpiresIn=expires_in,
            )

    # -- direct uploads ----------------------------------------------------------------------

    @property
    def part_size(self) -> int:
        return self._part_size

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        validate_key(key)
        return await _create_multipart(
            self._client, self._bucket, key, content_type, self._deadline
        )

    async def presign_part(
        self, key: str, upload_id: str, number: int, *, size: int, expires_in: int, origin: str
    ) -> str:
        """Content-Length is a signed header: S3 refuses a body of any other size."""
        return await self._presign(
            "upload_part",
            key,
            expires_in,
            UploadId=upload_id,
            PartNumber=number,
            ContentLength=size,
        )

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> str | None:
        """None: S3's checksum of a multipart object is a checksum of the parts' checksums
        (or a CRC), never the sha256 of the whole content."""
        validate_key(key)
        async with _translated("completing the upload", self._deadline):
            try:
                await self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
                    },
                )
            except ClientError as error:
                code = _code(error)
                if code in _PARTS_REJECTED:
                    raise PartsRejectedError(f"the store refused the parts: {code}") from error
                raise
        return None

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """The upload's parts, and a resumable upload's staging beside them."""
        validate_key(key)
        async with _translated("aborting the upload", self._deadline):
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id
                )
            except ClientError as error:
                if _code(error) != "NoSuchUpload":
                    raise
        await self._delete_objects([staging_key(key, name) for name in STAGING_NAMES])

    # -- resumable uploads: parts of the multipart upload, a staged tail (module docstring) --

    @property
    def append_limit(self) -> int:
        """S3 joins at most MAX_PARTS parts, and every part an append makes is `part_size`."""
        return self._part_size * MAX_PARTS

    async def append(
        self, key: str, upload_id: str, offset: int, chunks: AsyncIterator[bytes]
    ) -> None:
        validate_key(key)
        base = await self._begin_append(key, offset)
        upload = self._going_on(key, upload_id, base)
        try:
            async for chunk in chunks:
                await upload.write(chunk)
        except StoreError:
            raise  # the store failed: its staging still holds `base` (or a later state)
        except BaseException:
            # The body ended early (the client went away, a limit was hit): what was taken
            # is staged all the same.
            await self._end_append(key, base, upload)
            raise
        await self._end_append(key, base, upload)

    async def _begin_append(self, key: str, offset: int) -> _Staging:
        """The upload's state at `offset` bytes, which this append goes on from, kept in
        `tus-base` to go back to if this append's end is never recorded. (A `tus-tail` that
        `offset` falls before is such an append: this one sends the parts it names past the
        state again, and it is never read again.)"""
        tail = await self._read_staging(key, TUS_TAIL)
        if tail is not None and tail.length == offset:  # the last append was recorded: usual
            await self._copy_staging(key, TUS_TAIL, TUS_BASE)
            return tail
        base = tail.cut(offset) if tail is not None else None
        if base is None:
            before = await self._read_staging(key, TUS_BASE)
            if before is not None and before.length == offset:
                return before
            base = before.cut(offset) if before is not None else None
        if base is None:
            if offset:
                raise StoreError(f"the store cannot go back to byte {offset} of the upload")
            base = _Staging(self._part_size, (), b"")
        await self._put_staging(key, TUS_BASE, base)
        return base

    async def _end_append(self, key: str, base: _Staging, upload: _MultipartUpload) -> None:
        """The append's parts stored, then its state (those parts and the rest) staged."""
        rest = await upload.settle()
        await self._put_staging(key, TUS_TAIL, _Staging(base.part_size, upload.etags, rest))

    async def finish_append(self, key: str, upload_id: str) -> None:
        """The staged tail is the last part; S3 joins exactly the parts `tus-tail` names (a
        part another append sent again has another ETag: refused, StoreError). Again after a
        completion whose answer was lost, the object is there: only this upload writes `key`."""
        validate_key(key)
        if await self.head(key) is None:
            staged = await self._read_staging(key, TUS_TAIL)
            if staged is None:
                raise StoreError("the upload has nothing staged")
            await self._going_on(key, upload_id, staged).complete()
        try:
            await self._delete_objects([staging_key(key, name) for name in STAGING_NAMES])
        except StoreError:  # the object is whole; the reconciler removes staging left behind
            log.warning("staging_not_removed", key=key, exc_info=True)

    def _going_on(self, key: str, upload_id: str, staged: _Staging) -> _MultipartUpload:
        """The upload, going on from a staged state: its parts, then its tail sent first."""
        return _MultipartUpload(
            self._client,
            self._bucket,
            key,
            self._deadline,
            part_size=staged.part_size,
            upload_id=upload_id,
            etags=staged.etags,
            head=staged.tail,
        )

    async def _read_staging(self, key: str, name: str) -> _Staging | None:
        async with _translated("reading the upload's staging", self._deadline):
            try:
                response = await self._client.get_object(
                    Bucket=self._bucket, Key=staging_key(key, name)
                )
            except ClientError as error:
                if _code(error) == "NoSuchKey":
                    return None
                raise
            async with response["Body"] as body:
                data: bytes = await body.read()
        return _Staging.decode(data, response.get("Metadata", {}))

    async def _put_staging(self, key: str, name: str, staged: _Staging) -> None:
        body, metadata = staged.encode()
        async with _translated("staging the upload", self._deadline):
            await self._client.put_object(
                Bucket=self._bucket,
                Key=staging_key(key, name),
                Body=body,
                Metadata=metadata,
                ContentType=OCTET_STREAM,
            )

    async def _copy_staging(self, key: str, source: str, target: str) -> None:
        async with _translated("staging the upload", self._deadline):
            await self._client.copy_object(
                Bucket=self._bucket,
                Key=staging_key(key, target),
                CopySource={"Bucket": self._bucket, "Key": staging_key(key, source)},
            )

    async def read_head(self, key: str, size: int) -> bytes:
        validate_key(key)
        async with _translated("reading the object", self._deadline):
            try:
                response = await self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=f"bytes=0-{size - 1}"
                )
            except ClientError as error:
                if _code(error) == "InvalidRange":  # an empty object
                    return b""
                raise
            async with response["Body"] as body:
                data: bytes = await body.read()
        return data

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        validate_key(key)
        async with _translated("reading the object", self._deadline):
            response = await self._client.get_object(Bucket=self._bucket, Key=key)
            async with response["Body"] as body:
                async for chunk in body.content.iter_chunked(READ_CHUNK_SIZE):
                    yield chunk

    async def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        async with _translated("reading the object's metadata", self._deadline):
            try:
                response = await self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as error:
                if _status(error) == 404:
                    return None
                raise
        return ObjectInfo(size=response["ContentLength"], content_type=response.get("ContentType"))

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        validate_key(key)
        async with _translated("reading the object", self._deadline):
            try:
                response = await self._client.get_object(Bucket=self._bucket, Key=key)
            except ClientError as error:
                if _code(error) == "NoSuchKey":
                    return None
                raise
            async with response["Body"] as body:
                if response["ContentLength"] > max_bytes:
                    raise StoreError(f"{key} is larger than {max_bytes} bytes")
                data: bytes = await body.read()
        return data

    async def delete(self, key: str) -> None:
        validate_key(key)
        async with _translated("deleting the object", self._deadline):
            await self._client.delete_object(Bucket=self._bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_tenant_scoped_prefix(prefix)
        deleted = 0
        async with _translated("deleting a tenant's objects"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                keys = [item["Key"] for item in page.get("Contents", [])]
                await self._delete_objects(keys)
                deleted += len(keys)
            # Uploads still in progress under the prefix would otherwise linger (and be billed).
            uploads = self._client.get_paginator("list_multipart_uploads")
            async for uploads_page in uploads.paginate(Bucket=self._bucket, Prefix=prefix):
                for in_progress in uploads_page.get("Uploads", []):
                    try:
                        await self._client.abort_multipart_upload(
                            Bucket=self._bucket,
                            Key=in_progress["Key"],
                            UploadId=in_progress["UploadId"],
                        )
                    except ClientError as error:  # completed or aborted since it was listed
                        if _code(error) != "NoSuchUpload":
                            raise
        return deleted

    async def _delete_objects(self, keys: Sequence[str]) -> None:
        """Up to 1,000 keys (S3's limit for one request); missing ones are not an error."""
        if not keys:
            return
        objects: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys]
        async with _translated("deleting objects", self._deadline):
            response = await self._client.delete_objects(
                Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
            )
        errors = response.get("Errors", [])
        if errors:
            raise StoreError(f"could not delete {len(errors)} of {len(keys)} objects")

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        validate_prefix(prefix)
        async with _translated("listing objects"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if is_server_key(item["Key"]):  # anything else was put there by hand
                        yield item["Key"]

    async def check(self) -> None:
        async with _translated(f"reaching bucket {self._bucket}"):
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await self._client.head_bucket(Bucket=self._bucket)


def _code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
