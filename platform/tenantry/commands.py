"""What the CLI's commands do, apart from `tenantry.__main__`: the click layer imports this module
only inside a command, so `tenantry --help` loads no Litestar, SQLAlchemy, asyncpg or boto."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import TypeVar

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.app import build_mailer
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import upsert_platform_admin
from tenantry.config import ConfigError, Settings
from tenantry.db import bootstrap
from tenantry.db.engines import platform_db_config
from tenantry.db.errors import translate_database_error
from tenantry.files import rollup as file_stats
from tenantry.files.reconcile import Reconciler, ReconcileReport
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.manifests import Manifest, ManifestError, apply_manifest
from tenantry.platform.schemas import TenantCreate
from tenantry.platform.services import TenantService
from tenantry.storage.factory import build_store
from tenantry.usage.rollups import RollupJob
from tenantry.usage.seed import SeedPlan, SeedReport
from tenantry.usage.seed import seed_usage as seed_usage_events

T = TypeVar("T")

# Refusals at connect time that are the setup's, not the code's: a wrong password or role, a
# database that does not exist.
_CONNECT_REFUSALS = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


def explain(exc: Exception) -> str | None:
    """The one line a command prints for a failure of the setup or of the input; None for a bug
    (its traceback is then the useful output)."""
    if isinstance(exc, ConfigError | ManifestError):
        return str(exc)
    if isinstance(exc, DomainError):
        return exc.detail
    cause = _innermost(exc)
    if isinstance(cause, _CONNECT_REFUSALS):
        return f"cannot connect to the database: {cause}"
    error = translate_database_error(exc)
    if error is None:
        return None
    if error.error is ErrorCode.DATABASE_UNAVAILABLE:
        return f"cannot connect to the database: {cause}"
    return error.detail


def _innermost(exc: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's and Alembic's wrappers (their text spans lines)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=settings.bcrypt_concurrency)


async def in_platform_session(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """One committed transaction on the platform engine, for commands outside a request."""
    config = platform_db_config(settings)
    try:
        async with config.get_session() as session, session.begin():
            return await work(session)
    finally:
        await config.get_engine().dispose()


async def ensure_platform_admin(settings: Settings, email: str, password: str) -> bool:
    passwords = hasher(settings)
    return await in_platform_session(
        settings, lambda session: upsert_platform_admin(session, passwords, email, password)
    )


async def apply_manifests(settings: Settings, manifests: list[Manifest]) -> dict[str, str]:
    passwords = hasher(settings)
    return {
        manifest.slug: await in_platform_session(
            settings, partial(apply_manifest, manifest, settings=settings, passwords=passwords)
        )
        for manifest in manifests
    }


def prepare_database(settings: Settings) -> None:
    """Roles, grants and migrations: everything a fresh or existing database needs."""
    asyncio.run(bootstrap.bootstrap_roles(settings))
    bootstrap.upgrade(settings)


async def reconcile_once(settings: Settings) -> ReconcileReport | None:
    store = build_store(settings)
    config = platform_db_config(settings)
    await store.start()
    try:
        reconciler = Reconciler(
            config,
            store,
            pending_timeout=timedelta(seconds=settings.pending_upload_timeout_seconds),
        )
        return await reconciler.run_once()
    finally:
        await store.close()
        await config.get_engine().dispose()


async def with_rollups(settings: Settings, work: Callable[[RollupJob], Awaitable[T]]) -> T:
    config = platform_db_config(settings)
    try:
        return await work(RollupJob(config, retention_days=settings.usage_retention_days))
    finally:
        await config.get_engine().dispose()


async def seed_usage(settings: Settings, plan: SeedPlan, *, replace: bool = False) -> SeedReport:
    """The usage seed, then the file stats rollup of its tenants: the seeded files bypassed the
    write paths that keep that rollup."""
    report = await seed_usage_events(settings, plan, replace=replace)

    async def recount(session: AsyncSession) -> None:
        for tenant_id in report.tenant_ids:
            await file_stats.rebuild(session, tenant_id)

    started = time.perf_counter()
    await in_platform_session(settings, recount)
    report.file_stats_seconds = time.perf_counter() - started
    return report


# Tenants per transaction of `tenants import`: a failure undoes at most this many.
IMPORT_BATCH = 200


class TenantLinesError(Exception):
    """Lines of a `tenants import` file that are not tenants; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        super().__init__("\n  ".join([f"{len(problems)} lines are not tenants:", *shown]))


def parse_tenant_lines(lines: Iterable[bytes]) -> list[TenantCreate]:
    """Every line checked before anything is written: all problems at once."""
    decoder = msgspec.json.Decoder(TenantCreate)
    tenants: list[TenantCreate] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tenant = decoder.decode(line)
        except msgspec.DecodeError as exc:  # ValidationError included
            problems.append(f"line {number}: {exc}")
            continue
        if tenant.slug in first_line_of:
            problems.append(
                f"line {number}: slug '{tenant.slug}' again (line {first_line_of[tenant.slug]})"
            )
            continue
        first_line_of[tenant.slug] = number
        tenants.append(tenant)
    if problems:
        raise TenantLinesError(problems)
    return tenants


async def import_tenants(
    settings: Settings, tenants: Sequence[TenantCreate], report: Callable[[bytes], None]
) -> tuple[int, int]:
    """Creates the tenants whose slugs are new (owners invited unless a line gives a password),
    IMPORT_BATCH per transaction; `report` gets one JSON line per tenant once its batch is
    committed. Returns (created, existing): a rerun after a failure skips what was made."""
    passwords = hasher(settings)
    mailer = build_mailer(settings)
    config = platform_db_config(settings)
    created = existing = 0
    try:
        for start in range(0, len(tenants), IMPORT_BATCH):
            batch = tenants[start : start + IMPORT_BATCH]
            lines: list[bytes] = []
            async with config.get_session() as session, session.begin():
                service = TenantService(
                    session, settings=settings, passwords=passwords, mailer=mailer
                )
                taken = await service.existing_slugs([tenant.slug for tenant in batch])
                for data in batch:
                    if data.slug in taken:
                        existing += 1
                        lines.append(msgspec.json.encode({"slug": data.slug, "outcome": "exists"}))
                        continue
                    tenant = await service.create_tenant(data)
                    created += 1
                    lines.append(
                        msgspec.json.encode(
                            {
                                "slug": tenant.slug,
                                "outcome": "created",
                                "id": tenant.id,
                                "host": tenant.host,
                                "owner_invitation": tenant.owner_invitation,
                            }
                        )
                    )
            for line in lines:
                report(line)
    finally:
        passwords.close()
        await config.get_engine().dispose()
    return created, existing
