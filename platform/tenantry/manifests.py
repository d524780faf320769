"""Tenant manifests (`tenants/*.toml`), applied idempotently: a second run changes nothing.

A composition of two domains (the operator's provisioning and the files domain's taxonomy), so
it sits above both, beside the app and the CLI.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from pathlib import Path
from typing import Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.passwords import PasswordHasher
from tenantry.config import Settings
from tenantry.db.enums import TenantStatus
from tenantry.db.models import Tenant
from tenantry.files.taxonomy import AUDIENCES, CATEGORIES, TaxonomyService, TermName
from tenantry.platform.schemas import (
    AdminIn,
    DomainCreate,
    Quotas,
    QuotasPatch,
    Slug,
    TenantCreate,
    TenantPatch,
)
from tenantry.platform.services import TenantService
from tenantry.tenancy.schemas import Branding, TenantSettings

Outcome = Literal["created", "updated", "unchanged", "skipped"]


class ManifestError(Exception):
    pass


class ManifestAdmin(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    password_env: str
    # Used only outside production, when `password_env` is unset.
    dev_password: str | None = None


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    slug: Slug
    name: str
    admin: ManifestAdmin
    domains: list[str] = msgspec.field(default_factory=list)
    plan: str = "standard"
    quotas: Quotas = msgspec.field(default_factory=Quotas)
    settings: TenantSettings = msgspec.field(default_factory=TenantSettings)
    branding: Branding = msgspec.field(default_factory=Branding)
    # Taxonomy to seed: missing names are created; names not listed are kept (admins' own).
    categories: list[TermName] = msgspec.field(default_factory=list)
    audiences: list[TermName] = msgspec.field(default_factory=list)

    def admin_password(self, settings: Settings) -> str:
        password = os.environ.get(self.admin.password_env)
        if password:
            return password
        if settings.is_production or not self.admin.dev_password:
            raise ManifestError(
                f"{self.slug}: set {self.admin.password_env} to the admin's password"
            )
        return self.admin.dev_password


def load_manifests(directory: Path) -> list[Manifest]:
    manifests = []
    for path in sorted(directory.glob("*.toml")):
        try:
            manifests.append(msgspec.convert(tomllib.loads(path.read_text()), Manifest))
        except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ManifestError(f"{path}: {exc}") from exc
    return manifests


async def apply_manifest(
    manifest: Manifest, session: AsyncSession, *, settings: Settings, passwords: PasswordHasher
) -> Outcome:
    service = TenantService(session, settings=settings, passwords=passwords)
    existing = (
        await session.execute(select(Tenant).where(Tenant.slug == manifest.slug))
    ).scalar_one_or_none()
    if existing is None:
        created = await service.create_tenant(
            TenantCreate(
                slug=manifest.slug,
                name=manifest.name,
                domains=manifest.domains,
                plan=manifest.plan,
                quotas=manifest.quotas,
                settings=manifest.settings,
                branding=manifest.branding,
                admin=AdminIn(
                    email=manifest.admin.email, password=manifest.admin_password(settings)
                ),
            )
        )
        await _seed_taxonomy(manifest, session, created.id)
        return "created"
    if existing.status == TenantStatus.DELETED:
        return "skipped"
    current = await service.get_tenant(existing.id)
    wanted_domains = [service.normalize_domain(domain) for domain in manifest.domains]
    changed = (
        current.name != manifest.name
        or current.plan != manifest.plan
        or current.quotas != manifest.quotas
        or current.settings != manifest.settings
        or current.branding != manifest.branding
    )
    if changed:
        await service.update_tenant(
            existing.id,
            TenantPatch(
                name=manifest.name,
                plan=manifest.plan,
                quotas=QuotasPatch(
                    storage_bytes=manifest.quotas.storage_bytes,
                    max_file_bytes=manifest.quotas.max_file_bytes,
                ),
                settings=msgspec.to_builtins(manifest.settings),
                branding=msgspec.to_builtins(manifest.branding),
            ),
        )
    for domain in set(current.domains) - set(wanted_domains):
        await service.remove_domain(existing.id, domain)
    for index, domain in enumerate(wanted_domains):
        if domain not in current.domains:
            await service.add_domain(
                existing.id, DomainCreate(domain=domain, is_primary=index == 0)
            )
    seeded = await _seed_taxonomy(manifest, session, existing.id)
    changed = changed or seeded or set(current.domains) != set(wanted_domains)
    return "updated" if changed else "unchanged"


async def _seed_taxonomy(manifest: Manifest, session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Create the manifest's missing categories and audiences; whether any was created.

    The platform session sees every tenant; the services' explicit tenant (their scoped
    repositories) is what keeps this to `tenant_id`.
    """
    categories = await TaxonomyService(CATEGORIES, session, tenant_id).ensure_names(
        manifest.categories
    )
    audiences = await TaxonomyService(AUDIENCES, session, tenant_id).ensure_names(
        manifest.audiences
    )
    return categories + audiences > 0
