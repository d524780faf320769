"""Usage routes: a tenant's own reports (admin and up), the operator's cross-tenant reports and
the billing export (platform admins, platform engine only).

JSON by default, CSV with `Accept: text/csv`; `/report` is one self-contained HTML page.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.guards import requires_role
from tenantry.db.enums import Role
from tenantry.db.tenant_scope import TenantRecord
from tenantry.lib.errors import ErrorCode
from tenantry.lib.openapi import problems
from tenantry.lib.schemas import Offset
from tenantry.lib.zones import PLATFORM
from tenantry.storage import ObjectStore
from tenantry.tenancy.branding import logo_data_uri
from tenantry.usage.export import EventExport
from tenantry.usage.html import render_platform_report, render_tenant_report
from tenantry.usage.repository import PlatformUsageRepository, TenantUsageRepository
from tenantry.usage.schemas import PlatformSort, PlatformUsage, TenantRef, UsageReport
from tenantry.usage.services import (
    PlatformUsageService,
    ReportRange,
    TenantUsageService,
    parse_group_by,
    parse_range,
)
from tenantry.usage.tables import platform_csv, report_csv

CSV = "text/csv; charset=utf-8"
NDJSON = "application/x-ndjson"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
# The HTML reports load nothing: no script, no other host, inline styles and data: images only.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}

From = Annotated[
    date | None,
    QueryParameter(name="from", description="first day (default: 29 days before `to`)"),
]
To = Annotated[date | None, QueryParameter(description="last day, inclusive (default: today)")]
GranularityParam = Annotated[
    str, QueryParameter(description="day, week (ISO, from Monday) or month")
]
GroupByParam = Annotated[
    str | None,
    QueryParameter(description="kind, category, language, audience, role or content_type"),
]
TimeZone = Annotated[
    str | None,
    QueryParameter(description="IANA zone of the days; must be the tenant's reporting zone"),
]
_RANGE_PROBLEMS = problems(ErrorCode.INVALID_FIELD, ErrorCode.TIMEZONE_NOT_KEPT)


def _wants_csv(request: Request[Any, Any, Any]) -> bool:
    return request.accept.best_match(["application/json", "text/csv"]) == "text/csv"


def _csv(body: str, name: str) -> Response[str]:
    return Response(
        body,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _report_or_csv(
    request: Request[Any, Any, Any],
    usage: TenantUsageService,
    span: ReportRange,
    group_by: str | None,
) -> UsageReport:
    report = await usage.report(span, parse_group_by(group_by))
    if _wants_csv(request):
        name = f"usage-{report.tenant.slug}-{span.first}-{span.last}"
        return _csv(report_csv(report), name)  # type: ignore[return-value]
    return report


def _html(page: str) -> Response[str]:
    return Response(page, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)


async def _tenant_page(usage: TenantUsageService, span: ReportRange, store: ObjectStore) -> str:
    report = await usage.report(span, None)
    return render_tenant_report(
        report,
        display_name=usage.branding.display_name or usage.tenant.name,
        primary_color=usage.branding.primary_color,
        accent_color=usage.branding.accent_color,
        logo=await logo_data_uri(store, usage.tenant.id, usage.branding),
        breakdowns=await usage.breakdowns(span),
    )


# -- a tenant's own reports ---------------------------------------------------------------------


def provide_tenant_usage(
    db_session: NamedDependency[AsyncSession], tenant: NamedDependency[TenantRecord]
) -> TenantUsageService:
    return TenantUsageService(
        TenantUsageRepository(db_session, tenant.id),
        TenantRef(id=tenant.id, slug=tenant.slug, name=tenant.name),
        settings=tenant.settings,
        branding=tenant.branding,
    )


class UsageController(Controller):
    path = "/api/v1/usage"
    tags = ["usage"]
    guards = [requires_role(Role.ADMIN)]
    dependencies = {"usage": Provide(provide_tenant_usage, sync_to_thread=False)}

    @get("/", responses=_RANGE_PROBLEMS)
    async def usage(
        self,
        request: Request[Any, Any, Any],
        usage: NamedDependency[TenantUsageService],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
        group_by: GroupByParam = None,
        tz: TimeZone = None,
    ) -> UsageReport:
        """The tenant's usage over a range of days: totals, a series per period (storage at
        each period's end), groups by `group_by`, and the files downloaded most. CSV with
        `Accept: text/csv`."""
        span = usage.span(from_, to, granularity, tz)
        return await _report_or_csv(request, usage, span, group_by)

    @get("/report", media_type="text/html", responses=_RANGE_PROBLEMS)
    async def report(
        self,
        usage: NamedDependency[TenantUsageService],
        store: NamedDependency[ObjectStore],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
    ) -> Response[str]:
        """The usage report as one self-contained HTML page in the tenant's branding."""
        return _html(await _tenant_page(usage, usage.span(from_, to, granularity), store))


# -- the operator's reports and the export ----------------------------------------------------


def provide_platform_usage(
    platform_db_session: NamedDependency[AsyncSession],
) -> PlatformUsageRepository:
    return PlatformUsageRepository(platform_db_session)


PlatformLimit = Annotated[int, QueryParameter(ge=1, le=1000, description="tenants per page")]
EventLimit = Annotated[int, QueryParameter(ge=1, le=10_000, description="events per page")]


class PlatformUsageController(Controller):
    path = "/platform/v1"
    tags = ["platform"]
    opt = {"zone": PLATFORM}
    dependencies = {"platform_usage": Provide(provide_platform_usage, sync_to_thread=False)}

    @get("/usage", responses=_RANGE_PROBLEMS)
    async def usage(
        self,
        request: Request[Any, Any, Any],
        platform_usage: NamedDependency[PlatformUsageRepository],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
        sort: FromQuery[PlatformSort] = "-storage_bytes",
        limit: PlatformLimit = 100,
        offset: Offset = 0,
    ) -> PlatformUsage:
        """Every tenant side by side over a range (each in its own days), platform totals and
        the platform's series. CSV with `Accept: text/csv`."""
        span = parse_range(from_, to, granularity, None, zone="UTC")
        result = await PlatformUsageService(platform_usage).report(
            span, sort=sort, limit=limit, offset=offset
        )
        if _wants_csv(request):
            return _csv(platform_csv(result), f"usage-{span.first}-{span.last}")  # type: ignore[return-value]
        return result

    @get("/usage/report", media_type="text/html", responses=_RANGE_PROBLEMS)
    async def overview(
        self,
        platform_usage: NamedDependency[PlatformUsageRepository],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
    ) -> Response[str]:
        """The cross-tenant overview as an HTML page: top tenants and platform totals."""
        span = parse_range(from_, to, granularity, None, zone="UTC")
        result = await PlatformUsageService(platform_usage).report(
            span, sort="-storage_bytes", limit=20, offset=0
        )
        return _html(render_platform_report(result, granularity=span.granularity))

    @get("/usage/events", media_type=NDJSON, responses=problems(ErrorCode.INVALID_FIELD))
    async def events(
        self,
        request: Request[Any, Any, Any],
        platform_db_session: NamedDependency[AsyncSession],
        after: Annotated[str | None, QueryParameter(description="cursor to read on from")] = None,
        limit: EventLimit = 1000,
    ) -> Response[bytes]:
        """Raw events of every tenant as CloudEvents 1.0, oldest first: JSON lines, or a JSON
        array with `Accept: application/cloudevents-batch+json`. `Next-Cursor` (also each
        event's `cursor`) is where to read on."""
        events, next_cursor = await EventExport(platform_db_session).page(after, limit)
        headers = {"Next-Cursor": next_cursor}
        if request.accept.best_match([NDJSON, CLOUDEVENTS_BATCH]) == CLOUDEVENTS_BATCH:
            body = msgspec.json.encode(events)
            return Response(body, media_type=CLOUDEVENTS_BATCH, headers=headers)
        lines = b"".join(msgspec.json.encode(event) + b"\n" for event in events)
        return Response(lines, media_type=NDJSON, headers=headers)

    @get(
        "/tenants/{tenant_id:uuid}/usage",
        responses={**_RANGE_PROBLEMS, **problems(ErrorCode.TENANT_NOT_FOUND)},
    )
    async def tenant_usage(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        platform_usage: NamedDependency[PlatformUsageRepository],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
        group_by: GroupByParam = None,
        tz: TimeZone = None,
    ) -> UsageReport:
        """One tenant's usage report, as its admins see it."""
        usage = await PlatformUsageService(platform_usage).tenant_usage(tenant_id)
        span = usage.span(from_, to, granularity, tz)
        return await _report_or_csv(request, usage, span, group_by)

    @get(
        "/tenants/{tenant_id:uuid}/usage/report",
        media_type="text/html",
        responses={**_RANGE_PROBLEMS, **problems(ErrorCode.TENANT_NOT_FOUND)},
    )
    async def tenant_report(
        self,
        tenant_id: FromPath[uuid.UUID],
        platform_usage: NamedDependency[PlatformUsageRepository],
        store: NamedDependency[ObjectStore],
        from_: From = None,
        to: To = None,
        granularity: GranularityParam = "day",
    ) -> Response[str]:
        """One tenant's HTML usage report, in its branding."""
        usage = await PlatformUsageService(platform_usage).tenant_usage(tenant_id)
        return _html(await _tenant_page(usage, usage.span(from_, to, granularity), store))
