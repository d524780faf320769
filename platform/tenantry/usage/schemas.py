"""Usage reports on the wire: what a tenant's admins and the operator read (JSON, CSV, HTML).

Counts are events; bytes are bytes. `bytes_out` is what download links were issued for (the
store serves them, so it is what a client was allowed to fetch); `bytes_served` is what the
local store actually sent, Range requests included (S3 serves its links itself and reports
nothing back, so there it stays 0).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import msgspec

Granularity = Literal["day", "week", "month"]
GroupBy = Literal["kind", "category", "language", "audience", "role", "content_type"]
PlatformSort = Literal[
    "slug",
    "-storage_bytes",
    "-quota_used_pct",
    "-file_count",
    "-uploads",
    "-downloads",
    "-bytes_in",
    "-bytes_out",
    "-active_users",
]


class Counts(msgspec.Struct, kw_only=True):
    uploads: int = 0
    downloads: int = 0
    deletes: int = 0
    logins: int = 0
    signups: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_served: int = 0


class UsageTotals(Counts, kw_only=True):
    active_users: int = 0
    # At the end of the range.
    storage_bytes: int = 0
    file_count: int = 0


class PeriodPoint(Counts, kw_only=True):
    """One day, week (ISO, starting Monday) or month, named by its first day."""

    period: date
    active_users: int = 0
    # At the end of the period.
    storage_bytes: int = 0
    file_count: int = 0


class GroupRow(Counts, kw_only=True):
    """Totals over the range for one key of `group_by` (`key` "" is "none": no category, ...)."""

    key: str
    label: str


class GroupPoint(Counts, kw_only=True):
    period: date
    key: str


class TopFile(msgspec.Struct, kw_only=True):
    file_id: uuid.UUID
    # None once the file is deleted (its downloads still count).
    title: str | None
    downloads: int
    bytes_out: int


class TenantRef(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    slug: str
    name: str


class UsageReport(msgspec.Struct, kw_only=True, rename={"from_": "from"}):
    tenant: TenantRef
    from_: date
    to: date  # inclusive
    tz: str
    granularity: Granularity
    group_by: GroupBy | None
    # Rollups include every event committed before this instant (see README: usage).
    as_of: datetime
    totals: UsageTotals
    series: list[PeriodPoint]
    groups: list[GroupRow]
    group_series: list[GroupPoint]
    top_files: list[TopFile]


class TenantUsageRow(msgspec.Struct, kw_only=True):
    tenant_id: uuid.UUID
    slug: str
    name: str
    status: str
    storage_bytes: int
    storage_quota_bytes: int
    quota_used_pct: float
    file_count: int
    uploads: int
    downloads: int
    deletes: int
    bytes_in: int
    bytes_out: int
    active_users: int


class PlatformTotals(msgspec.Struct, kw_only=True):
    tenants: int
    storage_bytes: int
    file_count: int
    uploads: int
    downloads: int
    deletes: int
    bytes_in: int
    bytes_out: int
    active_users: int


class PlatformPoint(msgspec.Struct, kw_only=True):
    period: date
    uploads: int
    downloads: int
    bytes_in: int
    bytes_out: int
    storage_bytes: int
    active_tenants: int


class PlatformUsage(msgspec.Struct, kw_only=True, rename={"from_": "from"}):
    from_: date
    to: date
    sort: PlatformSort
    as_of: datetime
    totals: PlatformTotals
    series: list[PlatformPoint]
    items: list[TenantUsageRow]
    total: int
    limit: int
    offset: int
