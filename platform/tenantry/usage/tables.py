"""Usage reports as CSV: one table per report, a header row, a closing `total` row.

Without `group_by` a row is a period; with it, a row is a period and a group key. Spreadsheet
formula injection is defused: a cell that starts with = + - @ (or a tab or CR) gets a leading
apostrophe, as OWASP advises, since labels are tenant-made text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from tenantry.usage.schemas import PlatformUsage, UsageReport
from tenantry.usage.services import COUNT_FIELDS

_PERIOD_FIELDS = (*COUNT_FIELDS, "active_users", "storage_bytes", "file_count")
_PLATFORM_FIELDS = (
    "tenant_id",
    "slug",
    "name",
    "status",
    "storage_bytes",
    "storage_quota_bytes",
    "quota_used_pct",
    "file_count",
    "uploads",
    "downloads",
    "deletes",
    "bytes_in",
    "bytes_out",
    "active_users",
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def report_csv(report: UsageReport) -> str:
    if report.group_by is None:
        rows: list[Sequence[object]] = [
            [point.period.isoformat(), *(getattr(point, f) for f in _PERIOD_FIELDS)]
            for point in report.series
        ]
        rows.append(["total", *(getattr(report.totals, f) for f in _PERIOD_FIELDS)])
        return _write(["period", *_PERIOD_FIELDS], rows)
    labels = {group.key: group.label for group in report.groups}
    grouped: list[Sequence[object]] = [
        [point.period.isoformat(), point.key, labels.get(point.key, point.key)]
        + [getattr(point, f) for f in COUNT_FIELDS]
        for point in report.group_series
    ]
    grouped += [
        ["total", group.key, group.label, *(getattr(group, f) for f in COUNT_FIELDS)]
        for group in report.groups
    ]
    return _write(["period", report.group_by, "label", *COUNT_FIELDS], grouped)


def platform_csv(usage: PlatformUsage) -> str:
    rows: list[Sequence[object]] = [
        [getattr(item, f) for f in _PLATFORM_FIELDS] for item in usage.items
    ]
    totals = usage.totals
    rows.append(
        [
            "total",
            "",
            f"{totals.tenants} tenants",
            "",
            totals.storage_bytes,
            "",
            "",
            totals.file_count,
            totals.uploads,
            totals.downloads,
            totals.deletes,
            totals.bytes_in,
            totals.bytes_out,
            totals.active_users,
        ]
    )
    return _write(_PLATFORM_FIELDS, rows)
