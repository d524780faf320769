"""What the files domain offers the operator's offboarding: remove one tenant's files.

Rows go in the offboarding transaction (files, their audiences and direct upload sessions by
cascade, the stats rollup, the counters and reservations back to zero); the objects go after its commit (`storage.delete_prefix`), and the
reconciler finishes that if the store fails.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, update

from tenantry.db.models import File, FileStat, TenantUsage
from tenantry.files.repository import lock_counters
from tenantry.files.rollup import Session


async def purge_tenant_files(session: Session, tenant_id: uuid.UUID) -> None:
    # The tenant's write lock first, as every upload, edit and delete takes it: the same order,
    # so an upload finishing at this moment waits or is waited for, and never deadlocks.
    await lock_counters(session, tenant_id)
    await session.execute(delete(File).where(File.tenant_id == tenant_id))
    await session.execute(delete(FileStat).where(FileStat.tenant_id == tenant_id))
    await session.execute(
        update(TenantUsage)
        .where(TenantUsage.tenant_id == tenant_id)
        .values(storage_bytes=0, file_count=0, reserved_bytes=0)
    )
