"""Providers of the files domain's services, from the request's session, tenant and user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.middleware import Principal, actor_of
from tenantry.db.audit import AuditWriter
from tenantry.db.enums import UploadProtocol
from tenantry.db.models import Audience, Category
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord
from tenantry.db.usage import UsageRecorder
from tenantry.files.direct import DirectUploads
from tenantry.files.repository import FileRepository, UploadSessionRepository
from tenantry.files.services import FileService
from tenantry.files.taxonomy import AUDIENCES, CATEGORIES, TaxonomyService
from tenantry.files.tus import TusUploads
from tenantry.files.uploads import FileUploads
from tenantry.storage import ObjectStore
from tenantry.tenancy.limits import UploadLimits


@dataclass(frozen=True, slots=True)
class FileBackends:
    """What the files domain's services run on, injected as one value (the app builds it once):
    one dependency to resolve per request instead of two, on the hottest routes."""

    reader: TenantReader
    store: ObjectStore
    recorder: UsageRecorder
    upload_limits: UploadLimits
    direct_upload_ttl_seconds: int


def _files(session: AsyncSession, tenant: TenantRecord, backends: FileBackends) -> FileRepository:
    return FileRepository(
        session=session, tenant_id=tenant.id, reader=backends.reader, recorder=backends.recorder
    )


def provide_file_service(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    file_backends: NamedDependency[FileBackends],
) -> FileService:
    files = _files(db_session, tenant, file_backends)
    return FileService(files, tenant, request.user, file_backends.store)


def provide_file_uploads(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    file_backends: NamedDependency[FileBackends],
) -> FileUploads:
    files = _files(db_session, tenant, file_backends)
    return FileUploads(
        files, tenant, request.user, file_backends.store, file_backends.upload_limits
    )


def provide_direct_uploads(
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    file_uploads: NamedDependency[FileUploads],
    file_backends: NamedDependency[FileBackends],
) -> DirectUploads:
    sessions = UploadSessionRepository(session=db_session, tenant_id=tenant.id)
    return DirectUploads(
        file_uploads, sessions, ttl_seconds=file_backends.direct_upload_ttl_seconds
    )


def provide_tus_uploads(
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    file_uploads: NamedDependency[FileUploads],
    file_backends: NamedDependency[FileBackends],
) -> TusUploads:
    sessions = UploadSessionRepository(session=db_session, tenant_id=tenant.id)
    direct = DirectUploads(
        file_uploads,
        sessions,
        ttl_seconds=file_backends.direct_upload_ttl_seconds,
        protocol=UploadProtocol.TUS,
    )
    return TusUploads(direct, file_backends.upload_limits)


def provide_categories(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    audit: NamedDependency[AuditWriter],
) -> TaxonomyService[Category]:
    return TaxonomyService(
        CATEGORIES, db_session, tenant.id, actor=actor_of(request.user), audit=audit
    )


def provide_audiences(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
    audit: NamedDependency[AuditWriter],
) -> TaxonomyService[Audience]:
    return TaxonomyService(
        AUDIENCES, db_session, tenant.id, actor=actor_of(request.user), audit=audit
    )
