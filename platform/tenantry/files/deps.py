"""Providers of the files domain's services, from the request's session, tenant and user.

Each provider has one injected leaf, the session. Litestar resolves the dependencies of one
level concurrently, in an anyio task group per request (litestar-org/litestar#4563): the
session, the tenant and the backends as three injected leaves cost about a quarter of a
one-file read. So the tenant comes from the request's context (AccessMiddleware set it) and
the backends from the app's state, both read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principals import Principal, actor_of
from tenantry.db.audit import AuditWriter
from tenantry.db.enums import UploadProtocol
from tenantry.db.models import Audience, Category
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import TenantRecord, request_tenant
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
    """What the files domain's services run on (the app builds it once, in its state)."""

    reader: TenantReader
    store: ObjectStore
    recorder: UsageRecorder
    upload_limits: UploadLimits
    direct_upload_ttl_seconds: int


def _backends(request: Request[Any, Any, Any]) -> FileBackends:
    backends: FileBackends = request.app.state.file_backends
    return backends


def _files(session: AsyncSession, tenant: TenantRecord, backends: FileBackends) -> FileRepository:
    return FileRepository(
        session=session, tenant_id=tenant.id, reader=backends.reader, recorder=backends.recorder
    )


def provide_file_service(
    request: Request[Principal, Any, Any], db_session: NamedDependency[AsyncSession]
) -> FileService:
    tenant, backends = request_tenant(), _backends(request)
    return FileService(_files(db_session, tenant, backends), tenant, request.user, backends.store)


def provide_file_uploads(
    request: Request[Principal, Any, Any], db_session: NamedDependency[AsyncSession]
) -> FileUploads:
    tenant, backends = request_tenant(), _backends(request)
    files = _files(db_session, tenant, backends)
    return FileUploads(files, tenant, request.user, backends.store, backends.upload_limits)


def provide_direct_uploads(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    file_uploads: NamedDependency[FileUploads],
) -> DirectUploads:
    return _direct(request, db_session, file_uploads, UploadProtocol.DIRECT)


def provide_tus_uploads(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    file_uploads: NamedDependency[FileUploads],
) -> TusUploads:
    direct = _direct(request, db_session, file_uploads, UploadProtocol.TUS)
    return TusUploads(direct, _backends(request).upload_limits)


def _direct(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    uploads: FileUploads,
    protocol: UploadProtocol,
) -> DirectUploads:
    sessions = UploadSessionRepository(session=session, tenant_id=uploads.tenant.id)
    ttl = _backends(request).direct_upload_ttl_seconds
    return DirectUploads(uploads, sessions, ttl_seconds=ttl, protocol=protocol)


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
