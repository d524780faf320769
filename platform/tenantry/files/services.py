"""File rules: upload (one pass, all or nothing), list, read, download links, change, delete,
stats. Every query names the tenant; RLS holds even where one would not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    ColumnElement,
    Select,
    UnaryExpression,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.middleware import Principal
from tenantry.db.models import (
    Audience,
    Category,
    File,
    FileAudience,
    FileStat,
    TenantUsage,
    UsageEvent,
)
from tenantry.db.reads import PreparedRead, TenantReader
from tenantry.files import rollup
from tenantry.files.languages import ISO_639_1
from tenantry.files.pipeline import MeteredUpload, QuotaExceeded
from tenantry.files.rollup import Facets
from tenantry.files.schemas import (
    DownloadLink,
    FileMetadata,
    FileOut,
    FilePatch,
    FileSort,
    FileStats,
    GroupStat,
    PendingFileCreate,
)
from tenantry.lib.errors import DomainError, InvalidInput, NotFound
from tenantry.lib.schemas import Page
from tenantry.storage import ObjectStore, StoreError, file_key
from tenantry.tenancy.context import TenantRecord

logger = structlog.get_logger("tenantry.files")

_AUDIENCES = (
    select(func.coalesce(func.array_agg(FileAudience.audience_id), literal_column("'{}'::uuid[]")))
    .where(FileAudience.tenant_id == File.tenant_id, FileAudience.file_id == File.id)
    .correlate(File)
    .scalar_subquery()
)
_FILE_COLUMNS = (
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
_GET_READY_FILE = PreparedRead(
    select(*_FILE_COLUMNS).where(
        File.tenant_id == bindparam("tenant_id"),
        File.id == bindparam("file_id"),
        File.status == "ready",
    )
)
_SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "-created_at": (File.created_at.desc(), File.id.desc()),
    "created_at": (File.created_at.asc(), File.id.asc()),
    "title": (File.title.asc(), File.id.asc()),
    "-title": (File.title.desc(), File.id.desc()),
    "size": (File.size.asc(), File.id.asc()),
    "-size": (File.size.desc(), File.id.desc()),
}
_LIST_READY = {
    sort: PreparedRead(
        select(*_FILE_COLUMNS)
        .where(File.tenant_id == bindparam("tenant_id"), File.status == "ready")
        .order_by(*order)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    for sort, order in _SORTS.items()
}
_READY_COUNT = PreparedRead(
    select(TenantUsage.file_count).where(TenantUsage.tenant_id == bindparam("tenant_id"))
)
# The quota check and the counter change are one statement: concurrent uploads can never
# push storage past the quota, whatever order they finish in.
_RESERVE_STORAGE = text(
    "UPDATE tenant_usage SET storage_bytes = storage_bytes + :bytes, file_count = file_count + 1, "
    "updated_at = now() WHERE tenant_id = :tenant_id AND storage_bytes + :bytes <= "
    "(SELECT storage_quota_bytes FROM tenants WHERE id = :tenant_id) RETURNING storage_bytes"
)
_RELEASE_STORAGE = text(
    "UPDATE tenant_usage SET storage_bytes = storage_bytes - :bytes, file_count = file_count - 1, "
    "updated_at = now() WHERE tenant_id = :tenant_id"
)
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
_AUDIENCES_BY_NAME = PreparedRead(
    select(Audience.id, Audience.name)
    .where(Audience.tenant_id == bindparam("tenant_id"))
    .order_by(Audience.name)
)
_CLAIM_PENDING = text(
    "UPDATE files SET status = 'uploading', updated_at = now() "
    "WHERE tenant_id = :tenant_id AND id = :file_id AND status = 'pending' RETURNING storage_key"
)
_RELEASE_CLAIM = text(
    "UPDATE files SET status = 'pending', updated_at = now() "
    "WHERE tenant_id = :tenant_id AND id = :file_id AND status = 'uploading'"
)
_STORAGE_USED = text("SELECT storage_bytes FROM tenant_usage WHERE tenant_id = :tenant_id")


class FileNotFound(NotFound):
    code = "file_not_found"
    title = "File not found"


class StorageUnavailable(DomainError):
    status = 503
    code = "storage_unavailable"
    title = "File storage unavailable"


class FileRepository(SQLAlchemyAsyncRepository[File]):
    model_type = File


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


class FileService:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        user: Principal,
        store: ObjectStore,
        reader: TenantReader,
    ) -> None:
        self.session = session
        self.reader = reader
        self.tenant = tenant
        self.user = user
        self.store = store
        self.files = FileRepository(session=session)

    # -- reads ---------------------------------------------------------------------------

    async def list_files(
        self, filters: FileFilters, *, sort: FileSort, limit: int, offset: int
    ) -> Page[FileOut]:
        if not filters.conditions:
            return await self._list_unfiltered(sort=sort, limit=limit, offset=offset)
        query = (
            self._ready_files(*filters.conditions)
            .order_by(*_SORTS[sort])
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.session.execute(query)).all()
        return Page(
            items=[_file_out(row._mapping) for row in rows],
            total=await self._count(filters),
            limit=limit,
            offset=offset,
        )

    async def _list_unfiltered(self, *, sort: FileSort, limit: int, offset: int) -> Page[FileOut]:
        """The plain listing every app opens with, on the fast read path; the total is the
        usage counter, which already counts ready files (no scan of the tenant's rows)."""
        read = _LIST_READY[sort]
        async with self.reader.transaction() as connection:
            rows = await connection.fetch(
                read.sql, *read.arguments(tenant_id=self.tenant.id, limit=limit, offset=offset)
            )
            total = await connection.fetchval(
                _READY_COUNT.sql, *_READY_COUNT.arguments(tenant_id=self.tenant.id)
            )
        return Page(
            items=[_file_out(row) for row in rows], total=total or 0, limit=limit, offset=offset
        )

    async def get_file(self, file_id: uuid.UUID) -> FileOut:
        """One ready file, on the fast read path (a committed view)."""
        row = await self.reader.fetch_one(
            _GET_READY_FILE, tenant_id=self.tenant.id, file_id=file_id
        )
        if row is None:
            raise FileNotFound(f"no file {file_id}")
        return _file_out(row)

    async def _read_back(self, file_id: uuid.UUID) -> FileOut:
        """A file as this session sees it, its own uncommitted changes included."""
        row = (await self.session.execute(self._ready_files(File.id == file_id))).one()
        return _file_out(row._mapping)

    async def download_link(self, file_id: uuid.UUID) -> DownloadLink:
        file = await self._load(file_id)
        ttl = int(self.tenant.settings.get("download_url_ttl_seconds", 300))
        url = await self.store.presign_get(
            file.storage_key,
            filename=file.original_filename,
            content_type=file.content_type or "application/octet-stream",
            expires_in=ttl,
        )
        await self._record("download", file, await self._facets(file))
        return DownloadLink(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))

    async def stats(self) -> FileStats:
        """From the rollup (a few dozen rows), on the fast read path: every category and
        audience of the tenant, empty ones too, and a `null` group for uncategorised files."""
        tenant = {"tenant_id": self.tenant.id}
        async with self.reader.transaction() as connection:
            rows = await connection.fetch(_STATS_ROWS.sql, *_STATS_ROWS.arguments(**tenant))
            categories = await connection.fetch(_CATEGORIES.sql, *_CATEGORIES.arguments(**tenant))
            audiences = await connection.fetch(
                _AUDIENCES_BY_NAME.sql, *_AUDIENCES_BY_NAME.arguments(**tenant)
            )
        counted: dict[str, dict[str, tuple[int, int]]] = {}
        for row in rows:
            if row["files"] > 0:
                counted.setdefault(row["dimension"], {})[row["key"]] = (row["files"], row["bytes"])
        files, size = counted.get("total", {}).get(rollup.NONE, (0, 0))
        per_category = counted.get("category", {})
        by_category = [
            GroupStat(str(c["id"]), c["name"], *per_category.get(str(c["id"]), (0, 0)))
            for c in categories
        ]
        if rollup.NONE in per_category:
            by_category.append(GroupStat(None, None, *per_category[rollup.NONE]))
        per_audience = counted.get("audience", {})
        return FileStats(
            files=files,
            bytes=size,
            by_category=by_category,
            by_language=_group_stats(counted.get("language", {})),
            by_audience=[
                GroupStat(str(a["id"]), a["name"], *per_audience.get(str(a["id"]), (0, 0)))
                for a in audiences
            ],
            by_content_type=_group_stats(counted.get("content_type", {})),
        )

    # -- uploads -------------------------------------------------------------------------

    async def create_pending(self, data: PendingFileCreate) -> FileOut:
        """Step one of the raw upload: a pending row (not listed) that the content completes."""
        file = await self._insert_pending(data, data.filename)
        await self.session.commit()
        return await self._pending_out(file)

    async def upload(
        self,
        metadata: FileMetadata,
        filename: str,
        declared_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> FileOut:
        """Multipart upload: a pending row, the object, then ready; any failure leaves neither."""
        file = await self._insert_pending(metadata, filename, status="uploading")
        await self.session.commit()  # the row exists before the object: the reconciler relies on it
        try:
            await self._store_content(file, declared_type, chunks)
        except BaseException:
            await self._discard(file)
            raise
        return await self._read_back(file.id)

    async def upload_content(
        self, file_id: uuid.UUID, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> FileOut:
        """Step two of the raw upload. The row is claimed first (`pending` -> `uploading`), so
        two concurrent PUTs cannot both write the object; on failure it is `pending` again,
        and the client may retry."""
        claimed = await self.session.execute(
            _CLAIM_PENDING, {"tenant_id": self.tenant.id, "file_id": file_id}
        )
        key = claimed.scalar_one_or_none()
        if key is None:
            raise FileNotFound(f"no pending file {file_id}")
        await self.session.commit()
        file = await self.files.get_one(File.tenant_id == self.tenant.id, File.id == file_id)
        try:
            await self._store_content(file, declared_type, chunks)
        except BaseException:
            await self.session.rollback()
            await self.session.execute(
                _RELEASE_CLAIM, {"tenant_id": self.tenant.id, "file_id": file_id}
            )
            await self.session.commit()
            await self._delete_object(key)
            raise
        return await self._read_back(file_id)

    async def _store_content(
        self, file: File, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> None:
        used = (
            await self.session.execute(_STORAGE_USED, {"tenant_id": self.tenant.id})
        ).scalar_one()
        await self.session.commit()  # no transaction stays open while bytes stream
        metered = MeteredUpload(
            chunks,
            declared_type=declared_type,
            allowed_types=self.tenant.settings.get("allowed_content_types"),
            max_file_bytes=self.tenant.max_file_bytes,
            quota_left=self.tenant.storage_quota_bytes - used,
        )
        content_type = await metered.open()
        try:
            await self.store.put_stream(
                file.storage_key, metered.stream(), content_type=content_type
            )
        except StoreError as exc:
            logger.exception("store_write_failed", key=file.storage_key)
            raise StorageUnavailable("the file store failed; nothing was kept, try again") from exc
        reserved = await self.session.execute(
            _RESERVE_STORAGE, {"tenant_id": self.tenant.id, "bytes": metered.size}
        )
        if reserved.first() is None:
            raise QuotaExceeded("the tenant's storage quota would be exceeded")
        file.status = "ready"
        file.size = metered.size
        file.sha256 = metered.sha256
        file.content_type = content_type
        facets = await self._facets(file)
        await rollup.apply(self.session, self.tenant.id, added=facets)
        await self._record("upload", file, facets)
        await self.session.commit()

    async def _discard(self, file: File) -> None:
        file_id, key = file.id, file.storage_key  # read before rollback expires the object
        await self.session.rollback()
        await self.session.execute(
            delete(File).where(File.tenant_id == self.tenant.id, File.id == file_id)
        )
        await self.session.commit()
        await self._delete_object(key)

    # -- changes -------------------------------------------------------------------------

    async def update_file(self, file_id: uuid.UUID, patch: FilePatch) -> FileOut:
        file = await self._load(file_id, for_update=True)
        before = await self._facets(file)
        if patch.title is not msgspec.UNSET:
            file.title = patch.title
        if patch.description is not msgspec.UNSET:
            file.description = patch.description
        if patch.category is not msgspec.UNSET:
            await self._check_category(patch.category)
            file.category_id = patch.category
        if patch.language is not msgspec.UNSET:
            file.language = _language(patch.language)
        if patch.audiences is not msgspec.UNSET:
            audiences = await self._check_audiences(patch.audiences)
            await self.session.execute(
                delete(FileAudience).where(
                    FileAudience.tenant_id == self.tenant.id, FileAudience.file_id == file.id
                )
            )
            self._add_audiences(file.id, audiences)
        file.updated_at = datetime.now(UTC)
        await self.session.flush()
        await rollup.apply(
            self.session, self.tenant.id, removed=before, added=await self._facets(file)
        )
        return await self._read_back(file_id)

    async def delete_file(self, file_id: uuid.UUID) -> None:
        """Row, counters and event in one transaction; the object goes after the commit."""
        file = await self._load(file_id, for_update=True)
        facets = await self._facets(file)
        await self._record("delete", file, facets)
        await self.session.execute(
            _RELEASE_STORAGE, {"tenant_id": self.tenant.id, "bytes": file.size}
        )
        await rollup.apply(self.session, self.tenant.id, removed=facets)
        await self.session.execute(
            delete(File).where(File.tenant_id == self.tenant.id, File.id == file.id)
        )
        await self.session.commit()
        await self._delete_object(file.storage_key)

    # -- helpers -------------------------------------------------------------------------

    def _ready_files(self, *conditions: ColumnElement[bool]) -> Select[Any]:
        return select(*_FILE_COLUMNS).where(
            File.tenant_id == self.tenant.id, File.status == "ready", *conditions
        )

    async def _count(self, filters: FileFilters) -> int:
        query = select(func.count()).where(
            File.tenant_id == self.tenant.id, File.status == "ready", *filters.conditions
        )
        return int((await self.session.execute(query)).scalar_one())

    async def _load(self, file_id: uuid.UUID, *, for_update: bool = False) -> File:
        query = select(File).where(
            File.tenant_id == self.tenant.id, File.id == file_id, File.status == "ready"
        )
        file = (
            await self.session.execute(query.with_for_update() if for_update else query)
        ).scalar_one_or_none()
        if file is None:
            raise FileNotFound(f"no file {file_id}")
        return file

    async def _insert_pending(
        self, metadata: FileMetadata, filename: str, *, status: str = "pending"
    ) -> File:
        await self._check_category(metadata.category)
        audiences = await self._check_audiences(metadata.audiences)
        file_id = uuid.uuid4()
        file = File(
            tenant_id=self.tenant.id,
            id=file_id,
            title=metadata.title.strip(),
            description=metadata.description,
            category_id=metadata.category,
            language=_language(metadata.language),
            original_filename=_clean_filename(filename),
            storage_key=file_key(self.tenant.id, file_id),
            status=status,
            uploaded_by=self.user.id,
        )
        self.session.add(file)
        await self.session.flush()
        self._add_audiences(file_id, audiences)
        await self.session.flush()
        return file

    def _add_audiences(self, file_id: uuid.UUID, audiences: list[uuid.UUID]) -> None:
        self.session.add_all(
            FileAudience(tenant_id=self.tenant.id, file_id=file_id, audience_id=audience)
            for audience in audiences
        )

    async def _check_category(self, category: uuid.UUID | None) -> None:
        if category is None:
            return
        found = await self.session.scalar(
            select(Category.id).where(Category.tenant_id == self.tenant.id, Category.id == category)
        )
        if found is None:
            raise InvalidInput(f"no category {category}", code="unknown_category", field="category")

    async def _check_audiences(self, audiences: list[uuid.UUID]) -> list[uuid.UUID]:
        wanted = list(dict.fromkeys(audiences))
        if not wanted:
            return []
        found = set(
            await self.session.scalars(
                select(Audience.id).where(
                    Audience.tenant_id == self.tenant.id, Audience.id.in_(wanted)
                )
            )
        )
        missing = [str(a) for a in wanted if a not in found]
        if missing:
            raise InvalidInput(
                f"no audience {', '.join(missing)}", code="unknown_audience", field="audiences"
            )
        return wanted

    async def _facets(self, file: File, *, size: int | None = None) -> Facets:
        audiences = await self.session.scalars(
            select(FileAudience.audience_id)
            .where(FileAudience.tenant_id == self.tenant.id, FileAudience.file_id == file.id)
            .order_by(FileAudience.audience_id)
        )
        return Facets(
            size=file.size if size is None else size,
            category_id=file.category_id,
            language=file.language,
            content_type=file.content_type,
            audience_ids=list(audiences),
        )

    async def _record(self, kind: str, file: File, facets: Facets) -> None:
        self.session.add(
            UsageEvent(
                tenant_id=self.tenant.id,
                kind=kind,
                user_id=self.user.id,
                user_role=self.user.role,
                file_id=file.id,
                bytes=facets.size,
                category_id=facets.category_id,
                language=facets.language,
                audience_ids=facets.audience_ids,
                content_type=facets.content_type,
            )
        )
        await self.session.flush()

    async def _pending_out(self, file: File) -> FileOut:
        row = (
            await self.session.execute(
                select(*_FILE_COLUMNS).where(File.tenant_id == self.tenant.id, File.id == file.id)
            )
        ).one()
        return _file_out(row._mapping)

    async def _delete_object(self, key: str) -> None:
        try:
            await self.store.delete(key)
        except Exception:  # the reconciler removes it later; the caller's answer stands
            logger.exception("object_delete_failed", key=key)


def _group_stats(groups: dict[str, tuple[int, int]]) -> list[GroupStat]:
    """A breakdown keyed by the value itself (language, content type); unset last, as null."""
    ordered = sorted(groups.items(), key=lambda item: (item[0] == rollup.NONE, item[0]))
    return [GroupStat(key or None, key or None, files, size) for key, (files, size) in ordered]


def _language(language: str | None) -> str | None:
    if language is None:
        return None
    code = language.lower()
    if code not in ISO_639_1:
        raise InvalidInput(
            f"'{language}' is not an ISO 639-1 language code",
            code="invalid_language",
            field="language",
        )
    return code


def _clean_filename(filename: str) -> str:
    """The original name for Content-Disposition: no directories, no control characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


def _file_out(row: Mapping[str, Any] | RowMapping) -> FileOut:
    return FileOut(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        category=row["category_id"],
        language=row["language"],
        audiences=list(row["audiences"]),
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        filename=row["original_filename"],
        status=row["status"],
        uploaded_by=row["uploaded_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
