"""The upload saga, which commits in the middle of a request (the few other places that do say why).

Order, and why: (1) a row (`uploading`, or `pending` for the two-step form) is committed before
the first byte goes to the store, so an object without a row is always garbage the reconciler
may remove; (2) no transaction stays open while bytes stream; (3) the last step (quota, row to
`ready`, stats rollup, usage event) is one transaction that takes the tenant's write lock first
and reads the row fresh. A failure anywhere removes the row and the object (the two-step form
puts its row back to `pending` for a retry). Direct uploads (`direct`) follow the same order
and share the last step (`make_ready`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from tenantry.auth.principals import Principal
from tenantry.db.enums import FileStatus, TenantStatus, UsageKind
from tenantry.db.models import File
from tenantry.db.tenant_scope import TenantRecord
from tenantry.files import rollup
from tenantry.files.pipeline import MeteredUpload
from tenantry.files.repository import FileRepository
from tenantry.files.rules import check_audiences, check_category, clean_filename, normalize_language
from tenantry.files.schemas import FileMetadata, FileOut, PendingFileCreate
from tenantry.files.services import FileService, delete_object_later, file_not_found
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.metrics import observed_upload
from tenantry.storage import ObjectStore, file_key
from tenantry.tenancy.limits import UploadLimits
from tenantry.tenancy.schemas import effective_upload_limits


class FileUploads:
    def __init__(
        self,
        files: FileRepository,
        tenant: TenantRecord,
        user: Principal,
        store: ObjectStore,
        limits: UploadLimits,
    ) -> None:
        self.files = files
        self.session = files.session
        self.tenant = tenant
        self.user = user
        self.store = store
        self.limits = limits
        self.service = FileService(files, tenant, user, store)

    async def create_pending(self, data: PendingFileCreate) -> FileOut:
        """Step one of the raw upload: a pending row (not listed) that the content completes."""
        file = await self.insert_file(data, data.filename, status=FileStatus.PENDING)
        await self.session.commit()  # saga step 1: the row, for the PUT that follows
        return await self.service.read_back(file.id)

    async def upload(
        self,
        metadata: FileMetadata,
        filename: str,
        declared_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> FileOut:
        """Multipart upload: a row, the object, then ready; any failure leaves neither. It holds
        one of the tenant's upload slots throughout (429 when they are all taken) and goes at
        no more than the tenant's upload bandwidth."""
        async with self.limits.held(self.tenant):
            file = await self.insert_file(metadata, filename, status=FileStatus.UPLOADING)
            await self.session.commit()  # saga step 1: the row exists before the object
            try:
                await self._store_content(file.id, file.storage_key, declared_type, chunks)
            except BaseException:
                await self._discard(file.id, file.storage_key)
                raise
        return await self.service.read_back(file.id)

    async def upload_content(
        self, file_id: uuid.UUID, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> FileOut:
        """Step two of the raw upload. The row is claimed first (`pending` -> `uploading`), so
        two concurrent PUTs cannot both write the object; on failure it is `pending` again,
        and the client may retry. It holds an upload slot, like `upload`."""
        async with self.limits.held(self.tenant):
            await self._claim_and_store(file_id, declared_type, chunks)
        return await self.service.read_back(file_id)

    async def _claim_and_store(
        self, file_id: uuid.UUID, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> None:
        key = await self.files.claim_pending(file_id)
        if key is None:
            raise DomainError(ErrorCode.FILE_NOT_FOUND, f"no pending file {file_id}")
        await self.session.commit()  # saga step 1: the claim
        try:
            await self._store_content(file_id, key, declared_type, chunks)
        except BaseException:
            await self.session.rollback()
            # The object goes while this request still holds the claim: once the row is
            # pending again, a retry may write the same key, and a late delete would remove it.
            await delete_object_later(self.store, key)
            await self.files.release_claim(file_id)
            await self.session.commit()  # compensation: the row is pending again
            raise

    async def _store_content(
        self, file_id: uuid.UUID, key: str, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> None:
        used = await self.files.storage_used()
        await self.session.commit()  # saga step 2: no transaction open while bytes stream
        allowed_types, max_file_bytes = effective_upload_limits(
            self.tenant.settings, self.tenant.max_file_bytes
        )
        metered = MeteredUpload(
            self.limits.paced(self.tenant, chunks),
            declared_type=declared_type,
            allowed_types=allowed_types,
            max_file_bytes=max_file_bytes,
            quota_left=self.tenant.storage_quota_bytes - used,
        )
        with observed_upload(lambda: metered.size) as stored:
            await self._stream_and_commit(file_id, key, metered)
            stored()

    async def _stream_and_commit(
        self, file_id: uuid.UUID, key: str, metered: MeteredUpload
    ) -> None:
        content_type = await metered.open()
        await self.store.put_stream(key, metered.stream(), content_type=content_type)
        await self.make_ready(
            file_id,
            size=metered.size,
            sha256=metered.sha256,
            content_type=content_type,
            count_storage=lambda: self.files.reserve_storage(metered.size),
        )

    async def make_ready(
        self,
        file_id: uuid.UUID,
        *,
        size: int,
        sha256: str,
        content_type: str,
        count_storage: Callable[[], Awaitable[bool]],
    ) -> None:
        """Saga step 3, one transaction, for every upload path: the tenant's write lock
        (offboarding takes it too, so the status read after it is final for this transaction),
        the tenant still active, the quota (`count_storage`: False if it would be exceeded),
        the row read fresh, ready, counted, recorded."""
        await self.files.lock_counters()
        status = await self.files.tenant_status()
        if status == TenantStatus.SUSPENDED:
            raise DomainError(ErrorCode.TENANT_SUSPENDED, "the tenant was suspended meanwhile")
        if status != TenantStatus.ACTIVE:
            raise DomainError(ErrorCode.UNKNOWN_TENANT, "the tenant was offboarded meanwhile")
        if not await count_storage():
            raise DomainError(
                ErrorCode.QUOTA_EXCEEDED, "the tenant's storage quota would be exceeded"
            )
        file = await self.files.lock(file_id, status=FileStatus.UPLOADING)
        if file is None:  # removed meanwhile (offboarding, or the reconciler after the timeout)
            raise file_not_found(file_id)
        file.status = FileStatus.READY
        file.size = size
        file.sha256 = sha256
        file.content_type = content_type
        facets = await self.files.facets(file)
        await rollup.apply(self.session, self.tenant.id, added=facets)
        await self.files.record_event(
            UsageKind.UPLOAD, file, facets, user_id=self.user.user_id, role=self.user.role
        )
        await self.session.commit()  # saga step 3: the file is ready

    async def insert_file(
        self, metadata: FileMetadata, filename: str, *, status: FileStatus
    ) -> File:
        await check_category(self.files, metadata.category)
        audiences = await check_audiences(self.files, metadata.audiences)
        file_id = uuid.uuid4()
        file = File(
            tenant_id=self.tenant.id,
            id=file_id,
            title=metadata.title.strip(),
            description=metadata.description,
            category_id=metadata.category,
            language=normalize_language(metadata.language),
            original_filename=clean_filename(filename),
            storage_key=file_key(self.tenant.id, file_id),
            status=status,
            uploaded_by=self.user.user_id,
        )
        await self.files.insert(file, audiences)
        return file

    async def _discard(self, file_id: uuid.UUID, key: str) -> None:
        await self.session.rollback()
        await self.files.delete_row(file_id)
        await self.session.commit()  # compensation: no row
        await delete_object_later(self.store, key)
