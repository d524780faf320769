"""Direct uploads: the client sends the bytes to the store, the API authorises and verifies.

The saga of `uploads`, with the bytes elsewhere: (1) the file row (`uploading`, so the two-step
PUT cannot claim it), the session and the quota reservation are committed before the store
begins the multipart upload; (2) completing claims the session (`open` -> `completing`) and
commits before the store joins the parts, and no transaction stays open while the object is
read back; (3) the last step is `FileUploads.make_ready`, where the reservation becomes stored
bytes. An object that fails verification is deleted and its reservation released; a store that
refuses the listed parts leaves the session `open` for another try. Abandoned sessions are the
reconciler's.

The sha256 is the store's when it computed one while joining the parts (the local store); S3
has no whole-object sha256 for a multipart object, so the object is read back once, in bounded
chunks, inside the completing request (bounded by the tenant's largest file and the store's
deadline): the answer is the ready file, with no state for a client to poll.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenantry.db.enums import FileStatus, UploadProtocol, UploadState
from tenantry.db.models import UploadSession
from tenantry.files.pipeline import accepted_set, check_content
from tenantry.files.repository import UploadSessionRepository
from tenantry.files.schemas import (
    MAX_PARTS,
    DirectUploadComplete,
    DirectUploadCreate,
    DirectUploadOut,
    FileMetadata,
    FileOut,
    PartUrl,
)
from tenantry.files.services import delete_object_later, logger
from tenantry.files.uploads import FileUploads
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage import (
    SNIFF_BYTES,
    CompletedPart,
    declared_matches,
    file_key,
    mime_essence,
)
from tenantry.tenancy.schemas import effective_upload_limits

# Refusals of the object's content, answered as the direct path's own 422.
_TYPE_REFUSALS = {
    ErrorCode.EMPTY_FILE,
    ErrorCode.UNSUPPORTED_FILE_TYPE,
    ErrorCode.CONTENT_TYPE_MISMATCH,
}


def upload_not_found(upload_id: uuid.UUID) -> DomainError:
    # A missing id and another tenant's id get the same answer.
    return DomainError(ErrorCode.UPLOAD_NOT_FOUND, f"no upload {upload_id}")


def plan_parts(size: int, preferred: int) -> tuple[int, int]:
    """(part size, number of parts) for `size` bytes: the store's preferred part size, larger
    when the file would need more than MAX_PARTS parts."""
    part_size = max(preferred, -(-size // MAX_PARTS))
    return part_size, -(-size // part_size)


class DirectUploads:
    def __init__(
        self,
        uploads: FileUploads,
        sessions: UploadSessionRepository,
        *,
        ttl_seconds: int,
        protocol: UploadProtocol = UploadProtocol.DIRECT,
    ) -> None:
        self._uploads = uploads
        self.files = uploads.files
        self.session = uploads.session
        self.tenant = uploads.tenant
        self.store = uploads.store
        self.sessions = sessions
        self._ttl = ttl_seconds
        self.protocol = protocol

    async def create(self, data: DirectUploadCreate, *, origin: str) -> DirectUploadOut:
        """Checks the tenant's rules, reserves the quota, begins the upload, signs the parts."""
        part_size, count = plan_parts(data.size, self.store.part_size)
        upload, store_upload_id = await self.open(
            data, data.filename, data.content_type, data.size, part_size=part_size
        )
        plan = Plan.of(upload)
        parts = [
            PartUrl(
                number=number,
                url=await self.store.presign_part(
                    plan.key,
                    store_upload_id,
                    number,
                    size=size,
                    expires_in=self._ttl,
                    origin=origin,
                ),
                size=size,
            )
            for number, size in _part_sizes(data.size, part_size, count)
        ]
        return DirectUploadOut(
            id=plan.id,
            file_id=plan.file_id,
            part_size=part_size,
            parts=parts,
            expires_at=upload.expires_at,
        )

    async def open(
        self,
        metadata: FileMetadata,
        filename: str,
        content_type: str,
        size: int,
        *,
        part_size: int,
    ) -> tuple[UploadSession, str]:
        """Checks the tenant's rules for the declared size and type; commits the file row, the
        session and the reservation; then the store begins the upload (its id comes back with
        the session). Every protocol."""
        allowed, max_file_bytes = effective_upload_limits(
            self.tenant.settings, self.tenant.max_file_bytes
        )
        if size > max_file_bytes:
            raise DomainError(
                ErrorCode.FILE_TOO_LARGE,
                f"files may be at most {max_file_bytes} bytes",
                field="size",
            )
        declared = mime_essence(content_type)
        if allowed is not None and not any(declared_matches(declared, t) for t in allowed):
            raise DomainError(
                ErrorCode.UNSUPPORTED_FILE_TYPE,
                f"{declared} is not allowed for this tenant",
                field="content_type",
            )
        file = await self._uploads.insert_file(metadata, filename, status=FileStatus.UPLOADING)
        if not await self.files.reserve_upload(size):
            raise DomainError(
                ErrorCode.QUOTA_EXCEEDED, "the tenant's storage quota would be exceeded"
            )
        upload = UploadSession(
            tenant_id=self.tenant.id,
            id=uuid.uuid4(),
            file_id=file.id,
            declared_size=size,
            declared_type=declared,
            part_size=part_size,
            reserved_bytes=size,
            expires_at=datetime.now(UTC) + timedelta(seconds=self._ttl),
            protocol=self.protocol,
        )
        await self.sessions.add(upload)
        await self.session.commit()  # saga step 1: row, session and reservation first
        plan = Plan.of(upload)
        try:
            store_upload_id = await self.store.start_multipart(plan.key, content_type=declared)
        except BaseException:
            await self.release(plan)
            raise
        upload.store_upload_id = store_upload_id
        await self.session.commit()  # saga step 1b: the store's upload id
        return upload, store_upload_id

    async def complete(self, upload_id: uuid.UUID, data: DirectUploadComplete) -> FileOut:
        """Joins the parts, verifies the object (size, type, sha256), makes the file ready.
        Completing a completed upload answers its file again; counted once."""
        upload = await self.session_of(upload_id)
        if upload.state == UploadState.COMPLETED:
            return await self._uploads.service.read_back(upload.file_id)
        if upload.state == UploadState.OPEN and upload.expires_at <= datetime.now(UTC):
            raise DomainError(
                ErrorCode.UPLOAD_EXPIRED, f"the upload expired at {upload.expires_at}"
            )
        plan = Plan.of(upload)
        _, count = plan_parts(plan.size, upload.part_size)
        if [part.number for part in data.parts] != list(range(1, count + 1)):
            raise DomainError(
                ErrorCode.UPLOAD_PARTS_INVALID,
                f"list parts 1 to {count}, each once, in order",
                field="parts",
            )
        store_upload_id = upload.store_upload_id
        if store_upload_id is None or not await self.sessions.claim(upload_id):
            raise _in_progress()
        await self.session.commit()  # saga step 1: the claim
        parts = [CompletedPart(part.number, part.etag) for part in data.parts]
        try:
            sha256 = await self.store.complete_multipart(plan.key, store_upload_id, parts)
        except BaseException:
            await self.session.rollback()
            await self.sessions.release_claim(upload_id)
            await self.session.commit()  # compensation: open again, for another try
            raise
        return await self.finish(plan, sha256)

    async def finish(self, plan: Plan, sha256: str | None) -> FileOut:
        """The object is whole (the session claimed `completing`): verified, then the file is
        ready, in the saga's last step; a refused object is deleted, its quota released."""
        try:
            content_type, sha256 = await self._verify(plan, sha256)
            await self._uploads.make_ready(
                plan.file_id,
                size=plan.size,
                sha256=sha256,
                content_type=content_type,
                count_storage=lambda: self._settle(plan.id),
            )
        except BaseException:
            await self.session.rollback()
            await self.release(plan)
            await delete_object_later(self.store, plan.key)
            raise
        return await self._uploads.service.read_back(plan.file_id)

    async def abort(self, upload_id: uuid.UUID) -> None:
        """An open upload's end (expired or not): its row, its file row and its reservation,
        then the store's multipart upload."""
        upload = await self.session_of(upload_id)
        if upload.state == UploadState.COMPLETED:
            raise DomainError(ErrorCode.UPLOAD_COMPLETED, "the file is ready; delete it instead")
        plan = Plan.of(upload)
        store_upload_id = upload.store_upload_id
        await self.files.lock_counters()
        if await self.sessions.lock(upload_id, state=UploadState.OPEN) is None:
            raise _in_progress()
        await self.release(plan)
        if store_upload_id is not None:
            try:
                await self.store.abort_multipart(plan.key, store_upload_id)
            except Exception:  # the answer stands; S3's lifecycle rule is the backstop
                logger.exception("multipart_abort_failed", key=plan.key)

    # -- steps ---------------------------------------------------------------------------

    async def session_of(self, upload_id: uuid.UUID) -> UploadSession:
        """This protocol's session (404 otherwise), unless a request is completing it."""
        upload = await self.sessions.find(upload_id, self.protocol)
        if upload is None:
            raise upload_not_found(upload_id)
        if upload.state == UploadState.COMPLETING:
            raise _in_progress()
        return upload

    async def _verify(self, plan: Plan, sha256: str | None) -> tuple[str, str]:
        """(sniffed type, sha256) of the completed object, or its refusal."""
        info = await self.store.head(plan.key)
        size = info.size if info is not None else 0
        if size != plan.size:
            raise DomainError(
                ErrorCode.UPLOAD_SIZE_MISMATCH,
                f"declared {plan.size} bytes, but the parts hold {size}",
            )
        allowed, _ = effective_upload_limits(self.tenant.settings, self.tenant.max_file_bytes)
        head = await self.store.read_head(plan.key, SNIFF_BYTES)
        try:
            content_type = check_content(head, plan.declared_type, accepted_set(allowed))
        except DomainError as refusal:
            if refusal.error not in _TYPE_REFUSALS:
                raise
            raise DomainError(ErrorCode.UPLOAD_TYPE_MISMATCH, refusal.detail) from refusal
        if sha256 is None:
            digest = hashlib.sha256()
            async for chunk in self.store.read_stream(plan.key):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        return content_type, sha256

    async def _settle(self, upload_id: uuid.UUID) -> bool:
        """In the last step's transaction: the reservation becomes stored bytes."""
        upload = await self.sessions.lock(upload_id, state=UploadState.COMPLETING)
        if upload is None:  # the reconciler gave up on it meanwhile
            raise upload_not_found(upload_id)
        await self.files.settle_upload(reserved=upload.reserved_bytes, size=upload.declared_size)
        upload.state = UploadState.COMPLETED
        upload.updated_at = datetime.now(UTC)
        return True

    async def release(self, plan: Plan) -> None:
        """One transaction: the session, its file row and its reservation gone."""
        await self.files.lock_counters()
        await self.sessions.remove(plan.id)
        await self.files.delete_row(plan.file_id)
        await self.files.release_upload(plan.reserved)
        await self.session.commit()  # compensation: nothing reserved, no row


@dataclass(frozen=True, slots=True)
class Plan:
    """What a session says, as plain values (they outlive the session's transactions)."""

    id: uuid.UUID
    file_id: uuid.UUID
    key: str
    size: int
    declared_type: str
    reserved: int

    @classmethod
    def of(cls, upload: UploadSession) -> Plan:
        return cls(
            upload.id,
            upload.file_id,
            file_key(upload.tenant_id, upload.file_id),
            upload.declared_size,
            upload.declared_type,
            upload.reserved_bytes,
        )


def _in_progress() -> DomainError:
    return DomainError(ErrorCode.UPLOAD_IN_PROGRESS, "another request is completing it")


def _part_sizes(size: int, part_size: int, count: int) -> list[tuple[int, int]]:
    return [
        (number, min(part_size, size - (number - 1) * part_size)) for number in range(1, count + 1)
    ]
