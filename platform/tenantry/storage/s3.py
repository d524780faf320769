"""S3Store: objects in an S3-compatible bucket (AWS S3, MinIO, Ceph) through aioboto3.

Every call to the client runs inside `_translated`, so botocore's errors, timeouts and socket
errors leave this module as `StoreError` (503 `storage_unavailable`), never as themselves.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aioboto3
import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError
from litestar.types import ControllerRouterHandler

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage.keys import validate_key, validate_prefix, validate_tenant_scoped_prefix
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
    """One multipart upload with at most one part in flight while the caller buffers the next."""

    def __init__(
        self, client: "S3Client", bucket: str, key: str, upload_id: str, deadline: float
    ) -> None:
        self._client = client
        self._deadline = deadline
        self._bucket = bucket
        self._key = key
        self._upload_id = upload_id
        self._parts: list[CompletedPartTypeDef] = []
        self._in_flight: asyncio.Task[None] | None = None

    @classmethod
    async def create(
        cls, client: "S3Client", bucket: str, key: str, content_type: str, deadline: float
    ) -> "_MultipartUpload":
        upload_id = await _create_multipart(client, bucket, key, content_type, deadline)
        return cls(client, bucket, key, upload_id, deadline)

    async def wait_in_flight(self) -> None:
        """Wait for the part being sent; raises if sending it failed."""
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await task

    async def send(self, body: bytes) -> None:
        await self.wait_in_flight()
        part_number = len(self._parts) + 1
        self._in_flight = asyncio.create_task(self._upload_part(part_number, body))

    async def _upload_part(self, part_number: int, body: bytes) -> None:
        async with _translated(f"uploading part {part_number}", self._deadline):
            response = await self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=part_number,
                Body=body,
            )
        self._parts.append({"PartNumber": part_number, "ETag": response["ETag"]})

    async def complete(self) -> None:
        await self.wait_in_flight()
        async with _translated("completing the upload", self._deadline):
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
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
        # Pieces of the next part, not yet joined; memoryviews avoid copying big chunks twice.
        pieces: list[memoryview] = []
        buffered = 0
        total = 0
        upload: _MultipartUpload | None = None
        try:
            async for chunk in chunks:
                total += len(chunk)
                rest = memoryview(chunk)
                while buffered + len(rest) >= self._part_size:
                    take = self._part_size - buffered
                    pieces.append(rest[:take])
                    rest = rest[take:]
                    if upload is None:
                        upload = await _MultipartUpload.create(
                            self._client, self._bucket, key, content_type, self._deadline
                        )
                    # Wait for the previous part first: one part in flight, one buffering.
                    await upload.wait_in_flight()
                    part = b"".join(pieces)
                    pieces, buffered = [], 0
                    await upload.send(part)
                if rest:
                    pieces.append(rest)
                    buffered += len(rest)
            last_part = b"".join(pieces)
            if upload is None:
                async with _translated("storing the object", self._deadline):
                    await self._client.put_object(
                        Bucket=self._bucket, Key=key, Body=last_part, ContentType=content_type
                    )
                return total
            if last_part:
                await upload.send(last_part)
            await upload.complete()
        except BaseException:
            if upload is not None:
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
        validate_key(key)
        async with _translated("aborting the upload", self._deadline):
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id
                )
            except ClientError as error:
                if _code(error) != "NoSuchUpload":
                    raise

    # -- resumable uploads: not on S3 yet (parts of at least 5 MiB would need a staged tail) --

    @property
    def appendable(self) -> bool:
        return False

    async def append(
        self, key: str, upload_id: str, offset: int, chunks: AsyncIterator[bytes]
    ) -> None:
        raise _no_appends()

    async def finish_append(self, key: str, upload_id: str) -> None:
        raise _no_appends()

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
                objects: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if not objects:
                    continue
                response = await self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": objects, "Quiet": True},
                )
                errors = response.get("Errors", [])
                if errors:
                    raise StoreError(f"could not delete {len(errors)} objects under {prefix}")
                deleted += len(objects)
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

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        validate_prefix(prefix)
        async with _translated("listing objects"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    async def check(self) -> None:
        async with _translated(f"reaching bucket {self._bucket}"):
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await self._client.head_bucket(Bucket=self._bucket)


def _code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _no_appends() -> DomainError:
    return DomainError(ErrorCode.RESUMABLE_UNAVAILABLE, "S3 stores take no resumable uploads")
