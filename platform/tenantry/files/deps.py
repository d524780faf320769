from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.middleware import Principal
from tenantry.files.services import FileService
from tenantry.runtime import AppServices
from tenantry.tenancy.context import TenantRecord


def provide_file_service(
    request: Request[Principal, Any, Any],
    db_session: NamedDependency[AsyncSession],
    tenant: NamedDependency[TenantRecord],
) -> FileService:
    services = AppServices.of(request)
    return FileService(db_session, tenant, request.user, services.store, services.reader)
