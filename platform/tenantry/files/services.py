"""File rules: list, read, download links, change, delete, stats. Uploads live in `uploads`.

Every change to a ready file takes the tenant's write lock first (`lock_counters`), then reads the
file fresh, so the stats rollup always agrees with a scan, whatever runs concurrently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import msgspec
import structlog

from tenantry.auth.principals import Principal
from tenantry.db.enums import FileStatus, UsageKind
from tenantry.db.models import File
from tenantry.db.tenant_scope import TenantRecord
from tenantry.files import rollup
from tenantry.files.repository import FileFilters, FileRepository
from tenantry.files.rules import check_audiences, check_category, normalize_language
from tenantry.files.schemas import DownloadLink, FileOut, FilePatch, FileSort, FileStats, file_out
from tenantry.files.stats import assemble_stats
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import Page
from tenantry.storage import ObjectStore

logger = structlog.get_logger("tenantry.files")


def file_not_found(file_id: uuid.UUID) -> DomainError:
    # A missing id and another tenant's id get the same answer.
    return DomainError(ErrorCode.FILE_NOT_FOUND, f"no file {file_id}")


class FileService:
    def __init__(
        self, files: FileRepository, tenant: TenantRecord, user: Principal, store: ObjectStore
    ) -> None:
        self.files = files
        self.tenant = tenant
        self.user = user
        self.store = store

    # -- reads ---------------------------------------------------------------------------

    async def list_files(
        self, filters: FileFilters, *, sort: FileSort, limit: int, offset: int
    ) -> Page[FileOut]:
        if filters.conditions:
            rows, total = await self.files.filtered_page(
                filters.conditions, sort=sort, limit=limit, offset=offset
            )
            items = [file_out(row) for row in rows]
        else:
            encoded, total = await self.files.ready_page(sort=sort, limit=limit, offset=offset)
            # Already the items' JSON (Postgres wrote it): msgspec writes it out as it is.
            items = cast("list[FileOut]", msgspec.Raw(encoded.encode()))
        return Page(items=items, total=total, limit=limit, offset=offset)

    async def get_file(self, file_id: uuid.UUID) -> FileOut:
        row = await self.files.ready_row(file_id)
        if row is None:
            raise file_not_found(file_id)
        return file_out(row)

    async def stats(self) -> FileStats:
        return assemble_stats(await self.files.stats_rows())

    async def download_link(self, file_id: uuid.UUID, *, origin: str) -> DownloadLink:
        """A signed link to a file whose object the store still has (a store that is down is
        503 now, not a broken link later)."""
        file = await self._ready(file_id)
        if await self.store.head(file.storage_key) is None:
            logger.error("object_missing", key=file.storage_key)
            raise file_not_found(file_id)
        ttl = int(self.tenant.settings.get("download_url_ttl_seconds", 300))
        url = await self.store.presign_get(
            file.storage_key,
            filename=file.original_filename,
            content_type=file.content_type or "application/octet-stream",
            expires_in=ttl,
            origin=origin,
        )
        await self._record(UsageKind.DOWNLOAD, file, await self.files.facets(file))
        return DownloadLink(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))

    # -- changes -------------------------------------------------------------------------

    async def update_file(self, file_id: uuid.UUID, patch: FilePatch) -> FileOut:
        await self.files.lock_counters()
        file = await self._ready(file_id, lock=True)
        before = await self.files.facets(file)
        if patch.title is not msgspec.UNSET:
            file.title = patch.title.strip()
        if patch.description is not msgspec.UNSET:
            file.description = patch.description
        if patch.category is not msgspec.UNSET:
            await check_category(self.files, patch.category)
            file.category_id = patch.category
        if patch.language is not msgspec.UNSET:
            file.language = normalize_language(patch.language)
        if patch.audiences is not msgspec.UNSET:
            audiences = await check_audiences(self.files, patch.audiences)
            await self.files.clear_audiences(file.id)
            self.files.set_audiences(file.id, audiences)
        file.updated_at = datetime.now(UTC)
        await self.files.flush_references()
        after = await self.files.facets(file)
        await rollup.apply(self.files.session, self.tenant.id, removed=before, added=after)
        return await self.read_back(file_id)

    async def delete_file(self, file_id: uuid.UUID) -> None:
        """Row, counters and event in one transaction; the object goes after the commit."""
        await self.files.lock_counters()
        file = await self._ready(file_id, lock=True)
        facets = await self.files.facets(file)
        await self._record(UsageKind.DELETE, file, facets)
        await self.files.release_storage(file.size)
        await rollup.apply(self.files.session, self.tenant.id, removed=facets)
        await self.files.delete_row(file.id)
        await self.files.session.commit()
        await delete_object_later(self.store, file.storage_key)

    # -- shared with uploads ---------------------------------------------------------------

    async def read_back(self, file_id: uuid.UUID) -> FileOut:
        """A file as this session sees it, its own uncommitted changes included."""
        row = await self.files.row(file_id)
        if row is None:
            raise file_not_found(file_id)
        return file_out(row)

    async def _ready(self, file_id: uuid.UUID, *, lock: bool = False) -> File:
        file = (
            await self.files.lock(file_id, status=FileStatus.READY)
            if lock
            else await self.files.get_one_or_none(
                File.id == file_id, File.status == FileStatus.READY
            )
        )
        if file is None:
            raise file_not_found(file_id)
        return file

    async def _record(self, kind: UsageKind, file: File, facets: rollup.Facets) -> None:
        await self.files.record_event(
            kind, file, facets, user_id=self.user.user_id, role=self.user.role
        )


async def delete_object_later(store: ObjectStore, key: str) -> None:
    """Remove an object whose row is gone; if the store fails now, the reconciler removes it."""
    try:
        await store.delete(key)
    except Exception:  # the caller's answer stands
        logger.exception("object_delete_failed", key=key)
