"""The files domain's queries, over both database paths, scoped to one tenant.

Reads that every page makes (one file, the plain listing, the stats) run on the raw read pool;
everything else, and every write, on the request's ORM session. Both are scoped to the tenant by
construction: the ORM base statement (`TenantScopedRepository`) and an explicit `tenant_id` in
every raw query, with RLS underneath both.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import (
    ColumnElement,
    UnaryExpression,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.enums import FileStatus, UploadProtocol, UploadState, UsageKind
from tenantry.db.models import (
    Audience,
    Category,
    File,
    FileAudience,
    FileStat,
    UploadSession,
)
from tenantry.db.reads import PreparedRead, TenantFunction, TenantReader
from tenantry.db.repository import TenantScopedRepository
from tenantry.db.usage import UsageRecorder
from tenantry.files.rollup import Facets, Session
from tenantry.files.schemas import FileSort
from tenantry.lib.errors import DomainError, ErrorCode

_AUDIENCES = (
    select(func.coalesce(func.array_agg(FileAudience.audience_id), literal_column("'{}'::uuid[]")))
    .where(FileAudience.tenant_id == File.tenant_id, FileAudience.file_id == File.id)
    .correlate(File)
    .scalar_subquery()
)
FILE_COLUMNS = (
    File.id,
    File.title,
    File.description,
    File.category_id,
    File.language,
    _AUDIENCES.label("audiences"),
    File.content_type,
    File.size,
    File.sha256,
    File.original_filename,
    File.status,
    File.uploaded_by,
    File.created_at,
    File.updated_at,
)
SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "-created_at": (File.created_at.desc(), File.id.desc()),
    "created_at": (File.created_at.asc(), File.id.asc()),
    "title": (File.title.asc(), File.id.asc()),
    "-title": (File.title.desc(), File.id.desc()),
    "size": (File.size.asc(), File.id.asc()),
    "-size": (File.size.desc(), File.id.desc()),
}
_IS_READY = File.status == FileStatus.READY
# One round trip each (migration 0011): the same columns as FILE_COLUMNS.
_READY_FILE = TenantFunction("tenant_file", 2)
_READY_PAGE = TenantFunction("tenant_file_page", 4)
_STATS_ROWS = PreparedRead(
    select(FileStat.dimension, FileStat.key, FileStat.files, FileStat.bytes).where(
        FileStat.tenant_id == bindparam("tenant_id")
    )
)
_CATEGORIES = PreparedRead(
    select(Category.id, Category.name)
    .where(Category.tenant_id == bindparam("tenant_id"))
    .order_by(Category.name)
)
_AUDIENCE_NAMES = PreparedRead(
    select(Audience.id, Audience.name)
    .where(Audience.tenant_id == bindparam("tenant_id"))
    .order_by(Audience.name)
)
# The quota check and the counter change are one statement: concurrent uploads can never
# push storage past the quota, whatever order they finish in. Bytes reserved by open direct
# uploads count against the quota on both paths.
_RESERVE_STORAGE = text(
    "UPDATE tenant_usage SET storage_bytes = storage_bytes + :bytes, file_count = file_count + 1, "
    "updated_at = now() WHERE tenant_id = :tenant_id AND storage_bytes + reserved_bytes + :bytes "
    "<= (SELECT storage_quota_bytes FROM tenants WHERE id = :tenant_id) RETURNING storage_bytes"
)
_RESERVE_UPLOAD = text(
    "UPDATE tenant_usage SET reserved_bytes = reserved_bytes + :bytes, updated_at = now() "
    "WHERE tenant_id = :tenant_id AND storage_bytes + reserved_bytes + :bytes "
    "<= (SELECT storage_quota_bytes FROM tenants WHERE id = :tenant_id) RETURNING reserved_bytes"
)
_RELEASE_UPLOAD = text(
    "UPDATE tenant_usage SET reserved_bytes = reserved_bytes - :bytes, updated_at = now() "
    "WHERE tenant_id = :tenant_id"
)
# A direct upload's reservation becomes stored bytes: the quota was checked when it was made.
_SETTLE_UPLOAD = text(
    "UPDATE tenant_usage SET reserved_bytes = reserved_bytes - :reserved, "
    "storage_bytes = storage_bytes + :bytes, file_count = file_count + 1, updated_at = now() "
    "WHERE tenant_id = :tenant_id"
)
_RELEASE_STORAGE = text(
    "UPDATE tenant_usage SET storage_bytes = storage_bytes - :bytes, file_count = file_count - 1, "
    "updated_at = now() WHERE tenant_id = :tenant_id"
)
_LOCK_COUNTERS = text("SELECT 1 FROM tenant_usage WHERE tenant_id = :tenant_id FOR UPDATE")
_STORAGE_USED = text(
    "SELECT storage_bytes + reserved_bytes FROM tenant_usage WHERE tenant_id = :tenant_id"
)
_TENANT_STATUS = text("SELECT status FROM tenants WHERE id = :tenant_id")
_CLAIM_PENDING = text(
    "UPDATE files SET status = 'uploading', updated_at = now() "
    "WHERE tenant_id = :tenant_id AND id = :file_id AND status = 'pending' RETURNING storage_key"
)
_RELEASE_CLAIM = text(
    "UPDATE files SET status = 'pending', updated_at = now() "
    "WHERE tenant_id = :tenant_id AND id = :file_id AND status = 'uploading'"
)
# What a foreign-key violation on a file row means for the client (the referenced row went away
# between the check and the write: a concurrent delete), by the referenced table that ends the
# constraint's name (the naming convention: fk_<table>_<columns>_<referred table>).
_VIOLATED_REFERENCES = {
    "categories": (ErrorCode.UNKNOWN_CATEGORY, "category", "the category was deleted"),
    "audiences": (ErrorCode.UNKNOWN_AUDIENCE, "audiences", "an audience was deleted"),
    "users": (ErrorCode.INVALID_TOKEN, None, "the uploading account no longer exists"),
}


async def lock_counters(session: Session, tenant_id: uuid.UUID) -> None:
    """Take the tenant's write lock (its usage counter row) before anything that changes the
    stats rollup: uploads, edits and deletes of files and of taxonomy terms run one at a time per
    tenant, so none counts a file under a term another is removing."""
    await session.execute(_LOCK_COUNTERS, {"tenant_id": tenant_id})


class FileFilters:
    """The list filters, as SQL conditions."""

    def __init__(
        self,
        *,
        category: uuid.UUID | None = None,
        language: str | None = None,
        audience: uuid.UUID | None = None,
        content_type: str | None = None,
        uploaded_by: uuid.UUID | None = None,
        q: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> None:
        self.conditions: list[ColumnElement[bool]] = []
        if category is not None:
            self.conditions.append(File.category_id == category)
        if language is not None:
            self.conditions.append(File.language == language.lower())
        if audience is not None:
            self.conditions.append(
                exists().where(
                    FileAudience.tenant_id == File.tenant_id,
                    FileAudience.file_id == File.id,
                    FileAudience.audience_id == audience,
                )
            )
        if content_type is not None:
            self.conditions.append(File.content_type == content_type.lower())
        if uploaded_by is not None:
            self.conditions.append(File.uploaded_by == uploaded_by)
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            self.conditions.append(File.title.ilike(pattern) | File.description.ilike(pattern))
        if created_after is not None:
            self.conditions.append(File.created_at >= created_after)
        if created_before is not None:
            self.conditions.append(File.created_at < created_before)


class StatsRows:
    """The stats rollup of a tenant with its taxonomy, read in one transaction."""

    def __init__(
        self,
        counts: Sequence[Mapping[str, Any]],
        categories: Sequence[Mapping[str, Any]],
        audiences: Sequence[Mapping[str, Any]],
    ) -> None:
        self.counts = counts
        self.categories = categories
        self.audiences = audiences


class FileRepository(TenantScopedRepository[File]):
    model_type = File

    def __init__(
        self,
        *,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        reader: TenantReader,
        recorder: UsageRecorder,
    ):
        super().__init__(session=session, tenant_id=tenant_id)
        self.reader = reader
        self.recorder = recorder

    # -- reads on the fast path (committed state) -------------------------------------------

    async def ready_row(self, file_id: uuid.UUID) -> asyncpg.Record | None:
        rows = await self.reader.call(_READY_FILE, self.tenant_id, file_id)
        return rows[0] if rows else None

    async def ready_page(self, *, sort: FileSort, limit: int, offset: int) -> tuple[str, int]:
        """The unfiltered listing as the API's JSON array, encoded by Postgres (migration 0011),
        and its total, the usage counter, which counts ready files."""
        rows = await self.reader.call(_READY_PAGE, self.tenant_id, sort, limit, offset)
        if not rows:  # no usage counter: a tenant being provisioned or offboarded
            return "[]", 0
        return rows[0]["items"], int(rows[0]["total"])

    async def stats_rows(self) -> StatsRows:
        tenant = {"tenant_id": self.tenant_id}
        async with self.reader.transaction() as connection:
            counts = await connection.fetch(_STATS_ROWS.sql, *_STATS_ROWS.arguments(**tenant))
            categories = await connection.fetch(_CATEGORIES.sql, *_CATEGORIES.arguments(**tenant))
            audiences = await connection.fetch(
                _AUDIENCE_NAMES.sql, *_AUDIENCE_NAMES.arguments(**tenant)
            )
        return StatsRows(counts, categories, audiences)

    # -- reads in the session (its own uncommitted changes included) -------------------------

    async def filtered_page(
        self, conditions: list[ColumnElement[bool]], *, sort: FileSort, limit: int, offset: int
    ) -> tuple[list[Mapping[str, Any]], int]:
        where = (File.tenant_id == self.tenant_id, _IS_READY, *conditions)
        query = select(*FILE_COLUMNS).where(*where).order_by(*SORTS[sort])
        result = await self.session.execute(query.limit(limit).offset(offset))
        rows: list[Mapping[str, Any]] = [dict(row) for row in result.mappings()]
        total = await self.session.scalar(select(func.count()).where(*where))
        return rows, int(total or 0)

    async def row(self, file_id: uuid.UUID) -> Mapping[str, Any] | None:
        """A file of any status as the API shows it."""
        query = select(*FILE_COLUMNS).where(File.tenant_id == self.tenant_id, File.id == file_id)
        row = (await self.session.execute(query)).mappings().one_or_none()
        return dict(row) if row is not None else None

    async def lock(self, file_id: uuid.UUID, *, status: FileStatus) -> File | None:
        """The file row, locked for this transaction and read fresh (a concurrent taxonomy
        delete may have changed it)."""
        # populate_existing: the session may hold this row from its insert, and would otherwise
        # hand back its stale attributes (a category deleted meanwhile still set).
        return await self.get_one_or_none(
            File.id == file_id,
            File.status == status,
            with_for_update=True,
            execution_options={"populate_existing": True},
        )

    async def facets(self, file: File) -> Facets:
        audiences = await self.session.scalars(
            select(FileAudience.audience_id)
            .where(FileAudience.tenant_id == self.tenant_id, FileAudience.file_id == file.id)
            .order_by(FileAudience.audience_id)
        )
        return Facets(
            size=file.size,
            category_id=file.category_id,
            language=file.language,
            content_type=file.content_type,
            audience_ids=list(audiences),
        )

    async def missing_category(self, category: uuid.UUID | None) -> bool:
        if category is None:
            return False
        found = await self.session.scalar(
            select(Category.id).where(Category.tenant_id == self.tenant_id, Category.id == category)
        )
        return found is None

    async def missing_audiences(self, audiences: list[uuid.UUID]) -> list[uuid.UUID]:
        if not audiences:
            return []
        found = set(
            await self.session.scalars(
                select(Audience.id).where(
                    Audience.tenant_id == self.tenant_id, Audience.id.in_(audiences)
                )
            )
        )
        return [audience for audience in audiences if audience not in found]

    async def tenant_status(self) -> str | None:
        """The tenant's status as committed now (it may have changed since the request began)."""
        status: str | None = await self.session.scalar(
            _TENANT_STATUS, {"tenant_id": self.tenant_id}
        )
        return status

    async def storage_used(self) -> int:
        used = await self.session.scalar(_STORAGE_USED, {"tenant_id": self.tenant_id})
        return int(used or 0)

    # -- writes ------------------------------------------------------------------------------

    async def lock_counters(self) -> None:
        await lock_counters(self.session, self.tenant_id)

    async def insert(self, file: File, audiences: list[uuid.UUID]) -> None:
        self.session.add(file)
        await self.flush_references()  # the file first: its audiences refer to it
        self.set_audiences(file.id, audiences)
        await self.flush_references()

    def set_audiences(self, file_id: uuid.UUID, audiences: list[uuid.UUID]) -> None:
        self.session.add_all(
            FileAudience(tenant_id=self.tenant_id, file_id=file_id, audience_id=audience)
            for audience in audiences
        )

    async def clear_audiences(self, file_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(FileAudience).where(
                FileAudience.tenant_id == self.tenant_id, FileAudience.file_id == file_id
            )
        )

    async def flush_references(self) -> None:
        """Flush; a reference that vanished meanwhile is the client's 422, not a 500."""
        try:
            await self.session.flush()
        except IntegrityError as exc:
            constraint = getattr(exc.orig.__cause__ if exc.orig else None, "constraint_name", "")
            for table, (error, field, detail) in _VIOLATED_REFERENCES.items():
                if (constraint or "").endswith("_" + table):
                    raise DomainError(error, detail, field=field) from exc
            raise

    async def delete_row(self, file_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(File).where(File.tenant_id == self.tenant_id, File.id == file_id)
        )

    async def claim_pending(self, file_id: uuid.UUID) -> str | None:
        claimed = await self.session.execute(
            _CLAIM_PENDING, {"tenant_id": self.tenant_id, "file_id": file_id}
        )
        key: str | None = claimed.scalar_one_or_none()
        return key

    async def release_claim(self, file_id: uuid.UUID) -> None:
        await self.session.execute(
            _RELEASE_CLAIM, {"tenant_id": self.tenant_id, "file_id": file_id}
        )

    async def reserve_storage(self, size: int) -> bool:
        reserved = await self.session.execute(
            _RESERVE_STORAGE, {"tenant_id": self.tenant_id, "bytes": size}
        )
        return reserved.first() is not None

    async def release_storage(self, size: int) -> None:
        await self.session.execute(_RELEASE_STORAGE, {"tenant_id": self.tenant_id, "bytes": size})

    async def reserve_upload(self, size: int) -> bool:
        """Reserve quota for a direct upload; False if the quota would be exceeded."""
        reserved = await self.session.execute(
            _RESERVE_UPLOAD, {"tenant_id": self.tenant_id, "bytes": size}
        )
        return reserved.first() is not None

    async def release_upload(self, reserved: int) -> None:
        await self.session.execute(
            _RELEASE_UPLOAD, {"tenant_id": self.tenant_id, "bytes": reserved}
        )

    async def settle_upload(self, *, reserved: int, size: int) -> None:
        await self.session.execute(
            _SETTLE_UPLOAD, {"tenant_id": self.tenant_id, "reserved": reserved, "bytes": size}
        )

    async def record_event(
        self, kind: UsageKind, file: File, facets: Facets, *, user_id: uuid.UUID | None, role: str
    ) -> None:
        await self.recorder.record(
            self.session,
            self.tenant_id,
            kind,
            user_id=user_id,
            role=role,
            file_id=file.id,
            bytes=facets.size,
            category_id=facets.category_id,
            language=facets.language,
            audience_ids=facets.audience_ids,
            content_type=facets.content_type,
        )


class UploadSessionRepository(TenantScopedRepository[UploadSession]):
    """Direct uploads of one tenant (their quota lives with the files' counters)."""

    model_type = UploadSession

    async def find(self, upload_id: uuid.UUID, protocol: UploadProtocol) -> UploadSession | None:
        return await self.get_one_or_none(
            UploadSession.id == upload_id,
            UploadSession.protocol == protocol,
            execution_options={"populate_existing": True},
        )

    async def lock(self, upload_id: uuid.UUID, *, state: UploadState) -> UploadSession | None:
        return await self.get_one_or_none(
            UploadSession.id == upload_id,
            UploadSession.state == state,
            with_for_update=True,
            execution_options={"populate_existing": True},
        )

    async def claim(self, upload_id: uuid.UUID) -> bool:
        """`open` and unexpired -> `completing`, atomically: one request completes an upload."""
        return await self._set_state(
            upload_id,
            UploadState.OPEN,
            UploadState.COMPLETING,
            UploadSession.expires_at > func.now(),
        )

    async def release_claim(self, upload_id: uuid.UUID) -> None:
        await self._set_state(upload_id, UploadState.COMPLETING, UploadState.OPEN)

    async def claim_append(self, upload_id: uuid.UUID, offset: int, lease: timedelta) -> bool:
        """A tus upload's one appender: open, unexpired, at `offset`, and no other PATCH's lease
        running (one whose process died ends by itself)."""
        claimed = await self.session.execute(
            update(UploadSession)
            .where(
                UploadSession.tenant_id == self.tenant_id,
                UploadSession.id == upload_id,
                UploadSession.state == UploadState.OPEN,
                UploadSession.received_bytes == offset,
                UploadSession.expires_at > func.now(),
                or_(
                    UploadSession.writing_until.is_(None),
                    UploadSession.writing_until < func.now(),
                ),
            )
            .values(writing_until=func.now() + lease, updated_at=func.now())
            .returning(UploadSession.id)
        )
        return claimed.first() is not None

    async def record_append(self, upload_id: uuid.UUID, received: int, *, whole: bool) -> bool:
        """The appender's end: the new offset (durable in the store by now), the lease given
        back, and `completing` when the upload is whole. False: the session is gone."""
        state = UploadState.COMPLETING if whole else UploadState.OPEN
        recorded = await self.session.execute(
            update(UploadSession)
            .where(
                UploadSession.tenant_id == self.tenant_id,
                UploadSession.id == upload_id,
                UploadSession.state == UploadState.OPEN,
            )
            .values(received_bytes=received, writing_until=None, state=state, updated_at=func.now())
            .returning(UploadSession.id)
        )
        return recorded.first() is not None

    async def _set_state(
        self,
        upload_id: uuid.UUID,
        current: UploadState,
        new: UploadState,
        *conditions: ColumnElement[bool],
    ) -> bool:
        changed = await self.session.execute(
            update(UploadSession)
            .where(
                UploadSession.tenant_id == self.tenant_id,
                UploadSession.id == upload_id,
                UploadSession.state == current,
                *conditions,
            )
            .values(state=new, updated_at=func.now())
            .returning(UploadSession.id)
        )
        return changed.first() is not None

    async def remove(self, upload_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(UploadSession).where(
                UploadSession.tenant_id == self.tenant_id, UploadSession.id == upload_id
            )
        )
