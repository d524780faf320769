"""Usage report rules: the range a report may cover, periods, carrying storage forward, labels."""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast, get_args

import msgspec
from sqlalchemy import Row

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.timezones import known_zones
from tenantry.tenancy.schemas import StoredBranding, stored_branding
from tenantry.usage.repository import PlatformUsageRepository, TenantUsageRepository
from tenantry.usage.schemas import (
    Counts,
    Granularity,
    GroupBy,
    GroupPoint,
    GroupRow,
    PeriodPoint,
    PlatformPoint,
    PlatformSort,
    PlatformTotals,
    PlatformUsage,
    TenantRef,
    TenantUsageRow,
    TopFile,
    UsageReport,
    UsageTotals,
)

MAX_DAYS = 400
DEFAULT_DAYS = 30
TOP_FILES = 10
# The dimensions the HTML report breaks down by.
BREAKDOWNS = ("category", "language", "audience", "role")
COUNT_FIELDS = tuple(Counts.__struct_fields__)
# A report may reach this far ahead (a month still running, a year planned); no further.
_FUTURE = timedelta(days=366)
_EARLIEST = date(2000, 1, 1)
_UNITS: dict[str, str] = {"day": "day", "week": "week", "month": "month"}
_KIND_COUNTS = {
    "upload": ("uploads", "bytes_in"),
    "download": ("downloads", "bytes_out"),
    "delete": ("deletes",),
    "login": ("logins",),
    "signup": ("signups",),
    "serve": ("bytes_served",),
}


def tenant_zone(settings: dict[str, Any]) -> str:
    return str(settings.get("usage_timezone") or "UTC")


@dataclass(frozen=True, slots=True)
class ReportRange:
    first: date
    last: date  # inclusive
    granularity: Granularity
    tz: str

    @property
    def unit(self) -> str:
        return _UNITS[self.granularity]

    def periods(self) -> list[date]:
        periods, period = [], period_start(self.first, self.granularity)
        while period <= self.last:
            periods.append(period)
            period = next_period(period, self.granularity)
        return periods

    def period_end(self, period: date) -> date:
        return min(next_period(period, self.granularity) - timedelta(days=1), self.last)


def period_start(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def next_period(period: date, granularity: Granularity) -> date:
    if granularity == "week":
        return period + timedelta(days=7)
    if granularity == "month":
        return (period.replace(day=28) + timedelta(days=4)).replace(day=1)
    return period + timedelta(days=1)


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_FIELD, f"{field}: {message}", field=field)


def parse_range(
    first: date | None,
    last: date | None,
    granularity: str,
    tz: str | None,
    *,
    zone: str,
    now: datetime | None = None,
) -> ReportRange:
    """The report's days, checked: `to` defaults to today (in the tenant's zone), `from` to 29
    days before it; at most 400 days, in order, and not absurdly far in the past or future."""
    if granularity not in get_args(Granularity):
        raise _invalid("granularity", f"one of {', '.join(get_args(Granularity))}")
    if tz is not None:
        if tz not in known_zones():
            raise _invalid("tz", "not an IANA time zone name (e.g. Europe/Berlin)")
        if tz != zone:
            raise DomainError(
                ErrorCode.TIMEZONE_NOT_KEPT,
                f"tz: this tenant's usage is kept in days of {zone}",
                field="tz",
            )
    today = (now or datetime.now(UTC)).astimezone(zoneinfo.ZoneInfo(zone)).date()
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first < _EARLIEST:
        raise _invalid("from", f"no usage before {_EARLIEST}")
    if last > today + _FUTURE:
        raise _invalid("to", "more than a year ahead")
    if last < first:
        raise _invalid("to", "before `from`")
    if (last - first).days + 1 > MAX_DAYS:
        raise _invalid("from", f"a report covers at most {MAX_DAYS} days")
    return ReportRange(first, last, cast(Granularity, granularity), zone)


def parse_group_by(group_by: str | None) -> GroupBy | None:
    if group_by is None:
        return None
    if group_by not in get_args(GroupBy):
        raise _invalid("group_by", f"one of {', '.join(get_args(GroupBy))}")
    return cast(GroupBy, group_by)


def _counts(row: Row[Any] | None) -> dict[str, int]:
    return {name: int(getattr(row, name)) if row else 0 for name in COUNT_FIELDS}


def _kind_counts(kind: str, totals: Counts) -> dict[str, int]:
    return {name: getattr(totals, name) for name in _KIND_COUNTS[kind]}


def carry_forward(snapshots: Iterable[Row[Any]], ends: Sequence[date]) -> list[tuple[int, int]]:
    """(storage_bytes, file_count) at each end day, from rows on days that changed."""
    rows = sorted(snapshots, key=lambda row: row.day)
    values, position, current = [], 0, (0, 0)
    for end in ends:
        while position < len(rows) and rows[position].day <= end:
            current = (int(rows[position].storage_bytes), int(rows[position].file_count))
            position += 1
        values.append(current)
    return values


class TenantUsageService:
    """One tenant's reports; `zone` is the tenant's reporting zone, `branding` its brand."""

    def __init__(
        self,
        usage: TenantUsageRepository,
        tenant: TenantRef,
        *,
        settings: dict[str, Any],
        branding: dict[str, Any],
    ) -> None:
        self.usage = usage
        self.tenant = tenant
        self.zone = tenant_zone(settings)
        self.branding = _branding(branding)

    def span(
        self, first: date | None, last: date | None, granularity: str, tz: str | None = None
    ) -> ReportRange:
        return parse_range(first, last, granularity, tz, zone=self.zone)

    async def report(self, span: ReportRange, group_by: GroupBy | None) -> UsageReport:
        periods = span.periods()
        counted = {
            row.period: row for row in await self.usage.series(span.unit, span.first, span.last)
        }
        active, active_overall = await self.usage.active_users(span.unit, span.first, span.last)
        storage = carry_forward(
            await self.usage.storage(span.first, span.last), [span.period_end(p) for p in periods]
        )
        series = [
            PeriodPoint(
                period=period,
                active_users=active.get(period, 0),
                storage_bytes=stored[0],
                file_count=stored[1],
                **_counts(counted.get(period)),
            )
            for period, stored in zip(periods, storage, strict=True)
        ]
        sums = {name: sum(getattr(point, name) for point in series) for name in COUNT_FIELDS}
        totals = UsageTotals(
            active_users=active_overall,
            storage_bytes=storage[-1][0] if storage else 0,
            file_count=storage[-1][1] if storage else 0,
            **sums,
        )
        groups, group_series = await self._grouped(span, group_by, totals)
        top = await self.usage.top_files(span.first, span.last, TOP_FILES)
        return UsageReport(
            tenant=self.tenant,
            from_=span.first,
            to=span.last,
            tz=span.tz,
            granularity=span.granularity,
            group_by=group_by,
            as_of=await self.usage.as_of(),
            totals=totals,
            series=series,
            groups=groups,
            group_series=group_series,
            top_files=[
                TopFile(
                    file_id=row.file_id,
                    title=row.title,
                    downloads=int(row.downloads),
                    bytes_out=int(row.bytes_out),
                )
                for row in top
            ],
        )

    async def breakdowns(self, span: ReportRange) -> dict[str, list[GroupRow]]:
        """Totals over the range by category, language, audience and role (the HTML report)."""
        rows = await self.usage.groups(BREAKDOWNS, span.first, span.last)
        labels = await self.usage.names()
        breakdowns: dict[str, list[GroupRow]] = {dimension: [] for dimension in BREAKDOWNS}
        for row in rows:
            breakdowns[row.dimension].append(
                GroupRow(key=row.key, label=_label(labels, row.dimension, row.key), **_counts(row))
            )
        for dimension_rows in breakdowns.values():
            dimension_rows.sort(key=lambda group: (-_activity(group), group.label))
        return breakdowns

    async def _grouped(
        self, span: ReportRange, group_by: GroupBy | None, totals: Counts
    ) -> tuple[list[GroupRow], list[GroupPoint]]:
        if group_by is None:
            return [], []
        if group_by == "kind":
            rows = await self.usage.series(span.unit, span.first, span.last)
            groups = [
                GroupRow(key=kind, label=kind, **_kind_counts(kind, totals))
                for kind in _KIND_COUNTS
            ]
            points = [
                GroupPoint(
                    period=row.period, key=kind, **_kind_counts(kind, Counts(**_counts(row)))
                )
                for row in rows
                for kind in _KIND_COUNTS
            ]
            return groups, points
        labels = await self.usage.names()
        grouped = await self.usage.groups([group_by], span.first, span.last)
        groups = sorted(
            (
                GroupRow(key=row.key, label=_label(labels, group_by, row.key), **_counts(row))
                for row in grouped
            ),
            key=lambda group: (-_activity(group), group.label),
        )
        points = [
            GroupPoint(period=row.period, key=row.key, **_counts(row))
            for row in await self.usage.group_series(group_by, span.unit, span.first, span.last)
        ]
        return groups, points


def _activity(counts: Counts) -> int:
    return sum(getattr(counts, name) for name in COUNT_FIELDS if not name.startswith("bytes"))


def _label(labels: dict[tuple[str, str], str], dimension: str, key: str) -> str:
    if not key:
        return "(none)"
    if dimension in ("category", "audience"):
        return labels.get((dimension, key), "(deleted)")
    return key


def _branding(raw: dict[str, Any]) -> StoredBranding:
    try:
        return stored_branding(raw)
    except msgspec.ValidationError:  # stored before a rule tightened: the defaults
        return StoredBranding()


class PlatformUsageService:
    def __init__(self, usage: PlatformUsageRepository) -> None:
        self.usage = usage

    async def tenant_usage(self, tenant_id: uuid.UUID) -> TenantUsageService:
        """A tenant's reports for the operator (404 for one offboarded or never made)."""
        row = await self.usage.tenant(tenant_id)
        if row is None:
            raise DomainError(ErrorCode.TENANT_NOT_FOUND, f"no tenant {tenant_id}")
        return TenantUsageService(
            TenantUsageRepository(self.usage.session, row.id),
            TenantRef(id=row.id, slug=row.slug, name=row.name),
            settings=dict(row.settings or {}),
            branding=dict(row.branding or {}),
        )

    async def report(
        self, span: ReportRange, *, sort: PlatformSort, limit: int, offset: int
    ) -> PlatformUsage:
        rows, totals = await self.usage.tenant_rows(
            span.first, span.last, sort=sort, limit=limit, offset=offset
        )
        return PlatformUsage(
            from_=span.first,
            to=span.last,
            sort=sort,
            as_of=await self.usage.as_of(),
            totals=PlatformTotals(**totals),
            series=await self._series(span),
            items=[TenantUsageRow(**_fields(row, TenantUsageRow)) for row in rows],
            total=totals["tenants"],
            limit=limit,
            offset=offset,
        )

    async def _series(self, span: ReportRange) -> list[PlatformPoint]:
        """Platform totals per period; storage is every tenant's at the period's end."""
        periods = span.periods()
        counted = {
            row.period: row for row in await self.usage.series(span.unit, span.first, span.last)
        }
        by_tenant: dict[uuid.UUID, list[Row[Any]]] = {}
        for row in await self.usage.storage(span.first, span.last):
            by_tenant.setdefault(row.tenant_id, []).append(row)
        ends = [span.period_end(period) for period in periods]
        storage = [0] * len(periods)
        for snapshots in by_tenant.values():
            for index, (stored_bytes, _) in enumerate(carry_forward(snapshots, ends)):
                storage[index] += stored_bytes
        empty = {"uploads": 0, "downloads": 0, "bytes_in": 0, "bytes_out": 0, "active_tenants": 0}
        return [
            PlatformPoint(
                period=period,
                storage_bytes=storage[index],
                **(
                    _fields(counted[period], PlatformPoint, skip=("period", "storage_bytes"))
                    if period in counted
                    else empty
                ),
            )
            for index, period in enumerate(periods)
        ]


def _fields(
    row: Row[Any], struct: type[msgspec.Struct], *, skip: Sequence[str] = ()
) -> dict[str, Any]:
    """A row's columns named like the struct's fields (integers as Python ints)."""
    return {name: getattr(row, name) for name in struct.__struct_fields__ if name not in skip}
