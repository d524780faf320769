from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from tenantry.auth.one_time import Invitation
from tenantry.db.enums import TenantStatus
from tenantry.lib.schemas import Email, Password
from tenantry.tenancy.limits import LimitsPatch, TenantLimits
from tenantry.tenancy.schemas import Branding, TenantSettings

GiB = 1024**3
Slug = Annotated[
    str, msgspec.Meta(min_length=2, max_length=63, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Domain = Annotated[str, msgspec.Meta(min_length=3, max_length=253)]
Plan = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]


BIGINT_MAX = 2**63 - 1  # the columns are bigint
StorageBytes = Annotated[int, msgspec.Meta(ge=0, le=BIGINT_MAX)]
MaxFileBytes = Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]


class Quotas(msgspec.Struct, kw_only=True):
    storage_bytes: StorageBytes = 10 * GiB
    max_file_bytes: MaxFileBytes = 2 * GiB


class QuotasPatch(msgspec.Struct, kw_only=True):
    storage_bytes: StorageBytes | None = None
    max_file_bytes: MaxFileBytes | None = None


class AdminIn(msgspec.Struct):
    """The first owner: with a password, or none to invite them (mailed, or the token comes
    back once in `owner_invitation`), which also spares provisioning a bcrypt hash."""

    email: Email
    password: Password | None = None


class TenantCreate(msgspec.Struct, kw_only=True):
    slug: Slug
    name: Name
    admin: AdminIn
    domains: list[Domain] = msgspec.field(default_factory=list)
    plan: Plan = "standard"
    quotas: Quotas | None = None
    settings: TenantSettings | None = None
    branding: Branding | None = None


class TenantPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | None = None
    plan: Plan | None = None
    quotas: QuotasPatch | None = None
    settings: dict[str, object] | None = None
    branding: dict[str, object] | None = None
    # Overrides of the plan's rates and upload concurrency: a number replaces the plan's,
    # null lifts the limit, an absent key keeps what is set.
    limits: LimitsPatch | None = None


class TenantOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    slug: str
    name: str
    status: TenantStatus
    plan: str
    host: str
    domains: list[str]
    quotas: Quotas
    # In effect: the plan's, with the operator's overrides.
    limits: TenantLimits
    settings: TenantSettings
    branding: Branding
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    # Only in the answer that provisioned the tenant with an invited owner.
    owner_invitation: Invitation | None = None


class DomainCreate(msgspec.Struct, kw_only=True):
    domain: Domain
    is_primary: bool = False


class DomainOut(msgspec.Struct, kw_only=True):
    domain: str
    tenant_id: uuid.UUID
    verified: bool
    is_primary: bool
    created_at: datetime
