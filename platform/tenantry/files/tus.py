"""Resumable uploads, tus 1.0.0 (core, creation, termination, expiration, checksum with sha1).

A tus upload is an upload session (`protocol = tus`) with its file row, like a direct upload,
and takes the same steps (`direct.DirectUploads`): creating checks the tenant's rules for
`Upload-Length` and the declared type and reserves the quota before the store begins; the last
PATCH makes the object whole, which is then verified (size, sniffed type, sha256 read back) and
made ready in the saga's shared last transaction; termination and expiry give everything back.

Each PATCH holds one of the tenant's upload slots and claims the session (a lease in
`writing_until`, committed before the first byte), so two PATCHes never append at once (the
second is 423) and one at another offset is 409. The store appends durably; the new offset is
committed after the bytes are, so a PATCH cut off mid-body keeps what arrived and the client
resumes from the offset HEAD tells (unless it sent `Upload-Checksum`: a body that cannot be
checked is not kept). The first PATCH's first bytes are sniffed at once: a type the tenant
refuses ends the upload there, leaving nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenantry.db.enums import UploadState
from tenantry.files.direct import DirectUploads, Plan, upload_not_found
from tenantry.files.pipeline import accepted_set, check_content
from tenantry.files.schemas import ContentType, FileMetadata, Filename
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import convert_or_invalid
from tenantry.storage import SNIFF_BYTES, StoreError
from tenantry.tenancy.limits import UploadLimits
from tenantry.tenancy.schemas import effective_upload_limits

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = "sha1"
OFFSET_STREAM = "application/offset+octet-stream"
OCTET_STREAM = "application/octet-stream"
# How long one PATCH may hold the session; a PATCH whose process died frees it after this. So
# one PATCH appends at a time as long as each ends within it; one that outlives it may meet the
# next, which the stores survive without making an object of both (`ObjectStore.append`).
WRITE_LEASE = timedelta(hours=1)


class TusUploadCreate(FileMetadata, kw_only=True):
    """`Upload-Metadata`, decoded: the file's metadata, its name and declared type."""

    filename: Filename = "upload"
    content_type: ContentType = OCTET_STREAM


@dataclass(frozen=True, slots=True)
class TusState:
    id: uuid.UUID
    file_id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime


def parse_metadata(header: str | None) -> TusUploadCreate:
    """`key base64,key base64,...`; `filetype` is a synonym of `content_type`, `audiences`
    comma-separated ids; keys the platform does not keep (clients add their own) are ignored."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition(" ")
        if not key:
            continue
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise DomainError(
                ErrorCode.INVALID_FIELD, f"metadata {key} is not base64 of UTF-8", field=key
            ) from exc
    if "title" not in pairs:
        raise DomainError(ErrorCode.MISSING_FIELD, "title is required", field="title")
    data: dict[str, object] = {
        name: pairs[name]
        for name in ("title", "description", "category", "language", "filename")
        if pairs.get(name)
    }
    data["title"] = pairs["title"]
    content_type = pairs.get("content_type") or pairs.get("filetype")
    if content_type:
        data["content_type"] = content_type
    data["audiences"] = [value for value in pairs.get("audiences", "").split(",") if value]
    return convert_or_invalid(data, TusUploadCreate)


def parse_checksum(header: str | None) -> bytes | None:
    """`Upload-Checksum: sha1 <base64>` as the digest to expect (None: not sent)."""
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm != CHECKSUM_ALGORITHMS:
        raise DomainError(ErrorCode.BAD_REQUEST, f"checksum algorithms: {CHECKSUM_ALGORITHMS}")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except binascii.Error as exc:
        raise DomainError(ErrorCode.BAD_REQUEST, "Upload-Checksum is not base64") from exc


class TusUploads:
    def __init__(self, direct: DirectUploads, limits: UploadLimits) -> None:
        self.direct = direct
        self.sessions = direct.sessions
        self.session = direct.session
        self.store = direct.store
        self.tenant = direct.tenant
        self.limits = limits

    @property
    def max_size(self) -> int:
        """The tenant's largest file, or the store's largest resumable upload if smaller."""
        largest = effective_upload_limits(self.tenant.settings, self.tenant.max_file_bytes)[1]
        limit = self.store.append_limit
        return largest if limit is None else min(largest, limit)

    async def create(self, length: int, metadata: str | None) -> TusState:
        """The session, its file row and the reservation of `length` bytes."""
        limit = self.store.append_limit
        if limit is not None and length > limit:  # the tenant's own limit is checked by `open`
            raise DomainError(
                ErrorCode.FILE_TOO_LARGE,
                f"resumable uploads may be at most {limit} bytes here; use a direct upload",
                field="size",
            )
        data = parse_metadata(metadata)
        upload, _ = await self.direct.open(
            data, data.filename, data.content_type, length, part_size=length
        )
        return TusState(upload.id, upload.file_id, 0, length, upload.expires_at)

    async def state(self, upload_id: uuid.UUID) -> TusState:
        upload = await self.direct.session_of(upload_id)
        if upload.state == UploadState.OPEN and upload.expires_at <= datetime.now(UTC):
            raise _expired(upload.expires_at)
        return TusState(
            upload.id,
            upload.file_id,
            upload.received_bytes,
            upload.declared_size,
            upload.expires_at,
        )

    async def append(
        self,
        upload_id: uuid.UUID,
        offset: int,
        chunks: AsyncIterator[bytes],
        *,
        checksum: bytes | None,
    ) -> TusState:
        """One PATCH, holding one of the tenant's upload slots: the bytes at `offset`,
        appended; the file made ready when whole."""
        async with self.limits.held(self.tenant):
            upload = await self.direct.session_of(upload_id)
            if upload.state == UploadState.COMPLETED:
                raise DomainError(ErrorCode.UPLOAD_COMPLETED, "the file is ready")
            if upload.expires_at <= datetime.now(UTC):
                raise _expired(upload.expires_at)
            if offset != upload.received_bytes:
                raise DomainError(
                    ErrorCode.UPLOAD_OFFSET_MISMATCH,
                    f"the upload's offset is {upload.received_bytes}, not {offset}",
                )
            plan = Plan.of(upload)
            expires_at = upload.expires_at
            store_upload_id = upload.store_upload_id
            if store_upload_id is None or not await self.sessions.claim_append(
                upload_id, offset, WRITE_LEASE
            ):
                raise DomainError(ErrorCode.UPLOAD_LOCKED, "another PATCH is appending to it")
            await self.session.commit()  # saga step 1: the claim, before any byte
            allowed, _ = effective_upload_limits(self.tenant.settings, self.tenant.max_file_bytes)
            body = _Body(
                self.limits.paced(self.tenant, chunks),
                plan,
                offset,
                accepted=accepted_set(allowed),
                hashed=checksum is not None,
            )
            try:
                await self.store.append(plan.key, store_upload_id, offset, body.stream())
            except StoreError:
                await self._record(plan, offset)
                raise
            except DomainError as refusal:
                if refusal is body.refused_type:  # the first bytes: not a type it may be
                    await self.terminate(upload_id)
                else:
                    await self._record(plan, offset)
                raise
            except BaseException:  # cut off: what arrived is durable, and counts if not checked
                await self._record(plan, offset if checksum is not None else offset + body.sent)
                raise
            if checksum is not None and body.sha1 != checksum:
                await self._record(plan, offset)
                raise DomainError(
                    ErrorCode.CHECKSUM_MISMATCH, "the body's sha1 is not its checksum"
                )
            received = offset + body.sent
            await self._record(plan, received)
            if received == plan.size:
                await self._finish(plan, store_upload_id)
            return TusState(plan.id, plan.file_id, received, plan.size, expires_at)

    async def terminate(self, upload_id: uuid.UUID) -> None:
        await self.direct.abort(upload_id)

    # -- steps ---------------------------------------------------------------------------

    async def _record(self, plan: Plan, received: int) -> None:
        whole = received == plan.size
        if not await self.sessions.record_append(plan.id, received, whole=whole):
            raise upload_not_found(plan.id)  # terminated or given up meanwhile
        await self.session.commit()  # saga step 2: the offset, after its bytes are durable

    async def _finish(self, plan: Plan, store_upload_id: str) -> None:
        try:
            await self.store.finish_append(plan.key, store_upload_id)
        except BaseException:
            await self.session.rollback()
            await self.sessions.release_claim(plan.id)
            await self.session.commit()  # compensation: open, at its length: a PATCH retries
            raise
        await self.direct.finish(plan, None)


def _expired(at: datetime) -> DomainError:
    return DomainError(ErrorCode.UPLOAD_EXPIRED, f"the upload expired at {at}")


class _Body:
    """A PATCH body on its way to the store: counted, kept within the upload's length, hashed
    when a checksum is to be checked, and, at offset 0, held until its first bytes are sniffed."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        plan: Plan,
        offset: int,
        *,
        accepted: set[str] | None,
        hashed: bool,
    ) -> None:
        self._chunks = chunks
        self._plan = plan
        self._room = plan.size - offset
        self._sniff = offset == 0
        self._accepted = accepted
        self._hash = hashlib.sha1(usedforsecurity=False) if hashed else None
        self.sent = 0
        self.refused_type: DomainError | None = None

    @property
    def sha1(self) -> bytes:
        return self._hash.digest() if self._hash is not None else b""

    async def stream(self) -> AsyncIterator[bytes]:
        need = min(SNIFF_BYTES, self._plan.size)
        held = bytearray()
        taken = 0
        async for chunk in self._chunks:
            taken += len(chunk)
            if taken > self._room:
                raise DomainError(
                    ErrorCode.UPLOAD_LENGTH_EXCEEDED,
                    f"the upload has {self._room} bytes left to send, this body has more",
                )
            if not self._sniff:
                yield self._sent(chunk)
                continue
            held += chunk
            if len(held) >= need:
                self._check(bytes(held))
                self._sniff = False
                yield self._sent(bytes(held))
                held = bytearray()
        if held:  # too short to sniff: the object is checked when it is whole
            yield self._sent(bytes(held))

    def _check(self, head: bytes) -> None:
        try:
            check_content(head, self._plan.declared_type, self._accepted)
        except DomainError as refusal:
            self.refused_type = refusal
            raise

    def _sent(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        return chunk
