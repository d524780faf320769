"""Usage reports as one self-contained HTML page each: inline CSS, inline SVG charts, no script,
nothing fetched from anywhere (its Content-Security-Policy blocks every load but data: images).

Every chart stands next to a table with its exact numbers. Each table has an `id` (`totals`,
`storage`, `series`, `breakdown-<dimension>`, `top-files`, `tenants`), each column heading a
`data-field` (the schema's field name), each row a `data-key` (the period's date, the group key,
the file id, the tenant slug) and each number or period cell a `data-value` with the exact value
(bytes and counts as integers, periods as ISO dates); the cell's text is for a person
("1.0 MiB", "2026-W48"). Tenant-supplied text is escaped by Jinja (HTML) and by pygal's XML
serialiser (charts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeVar

import jinja2
import msgspec
from markupsafe import Markup

from tenantry.usage import charts
from tenantry.usage.charts import HEX_COLOUR, Palette
from tenantry.usage.formatting import human_bytes, human_count, period_label
from tenantry.usage.schemas import (
    Granularity,
    GroupRow,
    PeriodPoint,
    PlatformPoint,
    PlatformTotals,
    PlatformUsage,
    TenantUsageRow,
    TopFile,
    UsageReport,
    UsageTotals,
)

DEFAULT_PRIMARY = "#0969da"
DEFAULT_ACCENT = "#bc4c00"
PLATFORM_PALETTE = Palette(DEFAULT_PRIMARY, DEFAULT_ACCENT)

NO_GROUP = "(none)"

Kind = Literal["count", "bytes", "percent", "period", "text"]
Item = TypeVar("Item")

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("tenantry.usage", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Column:
    field: str
    heading: str
    kind: Kind
    # What a text cell shows when the value is None or "".
    empty: str = "\u2014"
    # How a period cell names its period.
    granularity: Granularity = "day"


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    # The exact value for machines (data-value), and its long form for a hover (title).
    value: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Row:
    key: str
    cells: list[Cell]


@dataclass(frozen=True)
class Table:
    id: str
    caption: str
    columns: list[Column]
    rows: list[Row]


@dataclass(frozen=True)
class Chart:
    svg: Markup
    # Needed where a figure has more than one chart.
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    heading: str
    charts: list[Chart]
    table: Table
    note: str = ""


@dataclass(frozen=True)
class Page:
    title: str
    heading: str
    subtitle: str
    as_of: str
    palette: Palette
    # The uploaded logo as a data: URI, or else the initial on the primary colour (or neither).
    logo: str | None
    monogram: str | None
    monogram_ink: str
    totals: Table
    figures: list[Figure]
    tables: list[Table]


UPLOADS = Column("uploads", "Uploads", "count")
DOWNLOADS = Column("downloads", "Downloads", "count")
DELETES = Column("deletes", "Deletes", "count")
BYTES_IN = Column("bytes_in", "Bytes in", "bytes")
BYTES_OUT = Column("bytes_out", "Bytes out", "bytes")
STORAGE = Column("storage_bytes", "Storage", "bytes")
FILE_COUNT = Column("file_count", "Files", "count")
ACTIVE_USERS = Column("active_users", "Active users", "count")
ACTIVE_TENANTS = Column("active_tenants", "Active tenants", "count")
# The fields of `Counts`, in every table of a tenant's events.
COUNT_FIELDS = [
    UPLOADS,
    DOWNLOADS,
    DELETES,
    Column("logins", "Logins", "count"),
    Column("signups", "Sign-ups", "count"),
    BYTES_IN,
    BYTES_OUT,
    Column("bytes_served", "Bytes served", "bytes"),
]
TENANT_POINT_COLUMNS = [*COUNT_FIELDS, ACTIVE_USERS, STORAGE, FILE_COUNT]
PLATFORM_POINT_COLUMNS = [UPLOADS, DOWNLOADS, BYTES_IN, BYTES_OUT, STORAGE, ACTIVE_TENANTS]
TENANT_ROW_COLUMNS = [
    Column("slug", "Slug", "text"),
    Column("name", "Name", "text"),
    Column("status", "Status", "text"),
    STORAGE,
    Column("storage_quota_bytes", "Quota", "bytes"),
    Column("quota_used_pct", "Quota used", "percent"),
    FILE_COUNT,
    UPLOADS,
    DOWNLOADS,
    DELETES,
    BYTES_IN,
    BYTES_OUT,
    ACTIVE_USERS,
]
TOP_FILE_COLUMNS = [
    Column("title", "File", "text", empty="(deleted file)"),
    DOWNLOADS,
    BYTES_OUT,
]
# The totals table: one row a measure, in this order, for the measures a totals struct has.
TOTALS = [Column("tenants", "Tenants", "count"), STORAGE, FILE_COUNT, *COUNT_FIELDS, ACTIVE_USERS]


def render_tenant_report(
    report: UsageReport,
    *,
    display_name: str,
    primary_color: str,
    accent_color: str,
    breakdowns: Mapping[str, list[GroupRow]],
    logo: str | None = None,
) -> str:
    """One tenant's report, in its name, colours and logo (a `data:` URI; a monogram without
    one); `breakdowns` maps a dimension (category, language, audience, role) to its rows, each
    charted and tabled in the mapping's order."""
    palette = Palette(
        _checked_colour(primary_color, DEFAULT_PRIMARY),
        _checked_colour(accent_color, DEFAULT_ACCENT),
    )
    figures = _time_figures(
        report.series,
        report.granularity,
        palette,
        storage_columns=[STORAGE, FILE_COUNT],
        series_columns=TENANT_POINT_COLUMNS,
    )
    for dimension, rows in breakdowns.items():
        name = dimension.replace("_", " ")
        chart = charts.ranking_chart(
            f"breakdown-{dimension}-chart",
            f"Uploads and downloads by {name}",
            [row.label or NO_GROUP for row in rows],
            _series(rows, (UPLOADS, DOWNLOADS)),
            palette,
            in_bytes=False,
        )
        columns = [Column("label", name.capitalize(), "text", empty=NO_GROUP), *COUNT_FIELDS]
        table = _table(f"breakdown-{dimension}", f"Totals by {name}", columns, rows, _group_key)
        figures.append(Figure(f"By {name}", [_chart(chart)], table, _shown_note(len(rows))))
    top_files = _table(
        "top-files", "Most downloaded files", TOP_FILE_COLUMNS, report.top_files, _file_key
    )
    page = Page(
        title=f"{display_name}: usage {report.from_.isoformat()} to {report.to.isoformat()}",
        heading=display_name,
        subtitle=(
            f"Usage from {report.from_.isoformat()} to {report.to.isoformat()} ({report.tz}),"
            f" per {report.granularity}"
        ),
        as_of=report.as_of.isoformat(),
        palette=palette,
        logo=logo,
        monogram=_initial(display_name),
        monogram_ink=_ink_on(palette.primary),
        totals=_totals(report.totals),
        figures=figures,
        tables=[top_files],
    )
    return _templates.get_template("report.html.j2").render(page=page)


def render_platform_report(usage: PlatformUsage, *, granularity: Granularity = "day") -> str:
    """The operator's overview: platform totals, the listed tenants (the largest charted) and
    the platform's totals per period. `granularity` only names the periods ("2026-W48")."""
    names = [item.name for item in usage.items]
    by_storage = charts.ranking_chart(
        "tenants-storage-chart",
        "Tenants by storage",
        names,
        {"Storage": [item.storage_bytes for item in usage.items]},
        PLATFORM_PALETTE,
        in_bytes=True,
    )
    by_downloads = charts.ranking_chart(
        "tenants-downloads-chart",
        "Tenants by downloads",
        names,
        {"Downloads": [item.downloads for item in usage.items]},
        Palette(PLATFORM_PALETTE.accent, PLATFORM_PALETTE.primary),
        in_bytes=False,
    )
    first = usage.offset + 1 if usage.items else usage.offset
    caption = (
        f"Tenants {first} to {usage.offset + len(usage.items)} of {usage.total},"
        f" sorted by {usage.sort}"
    )
    tenants = Figure(
        "Tenants",
        [_chart(by_storage, "By storage"), _chart(by_downloads, "By downloads")],
        _table("tenants", caption, TENANT_ROW_COLUMNS, usage.items, _tenant_key),
        _shown_note(len(usage.items)),
    )
    time_figures = _time_figures(
        usage.series,
        granularity,
        PLATFORM_PALETTE,
        storage_columns=[STORAGE, ACTIVE_TENANTS],
        series_columns=PLATFORM_POINT_COLUMNS,
    )
    page = Page(
        title=f"Platform usage {usage.from_.isoformat()} to {usage.to.isoformat()}",
        heading="Platform usage",
        subtitle=f"From {usage.from_.isoformat()} to {usage.to.isoformat()}, per {granularity}",
        as_of=usage.as_of.isoformat(),
        palette=PLATFORM_PALETTE,
        logo=None,
        monogram=None,
        monogram_ink=_ink_on(PLATFORM_PALETTE.primary),
        totals=_totals(usage.totals),
        figures=[tenants, *time_figures],
        tables=[],
    )
    return _templates.get_template("report.html.j2").render(page=page)


def _time_figures(
    series: Sequence[PeriodPoint | PlatformPoint],
    granularity: Granularity,
    palette: Palette,
    *,
    storage_columns: list[Column],
    series_columns: list[Column],
) -> list[Figure]:
    """Storage per period, and uploads and downloads per period, each with its table."""
    periods = [period_label(point.period, granularity) for point in series]
    period = Column(
        "period",
        "Period" if granularity == "day" else granularity.capitalize(),
        "period",
        granularity=granularity,
    )
    storage = charts.storage_chart(
        "storage-chart",
        "Storage at the end of each period",
        periods,
        [point.storage_bytes for point in series],
        palette,
    )
    activity = charts.activity_chart(
        "activity-chart",
        f"Uploads and downloads per {granularity}",
        periods,
        _series(series, (UPLOADS, DOWNLOADS)),
        palette,
    )
    return [
        Figure(
            "Storage",
            [_chart(storage)],
            _table(
                "storage",
                "Storage at the end of each period",
                [period, *storage_columns],
                series,
                _period_key,
            ),
        ),
        Figure(
            "Uploads and downloads",
            [_chart(activity)],
            _table(
                "series",
                f"Totals per {granularity}",
                [period, *series_columns],
                series,
                _period_key,
            ),
        ),
    ]


def _checked_colour(colour: str, fallback: str) -> str:
    """Colours arrive validated; one that is not exactly #rrggbb still never reaches the CSS."""
    return colour if HEX_COLOUR.fullmatch(colour) else fallback


def _chart(svg: str, caption: str = "") -> Chart:
    # pygal's XML serialiser has escaped every label and title in the SVG.
    return Chart(Markup(svg), caption)  # noqa: S704


def _period_key(point: PeriodPoint | PlatformPoint) -> str:
    return point.period.isoformat()


def _group_key(row: GroupRow) -> str:
    return row.key


def _file_key(top_file: TopFile) -> str:
    return str(top_file.file_id)


def _tenant_key(row: TenantUsageRow) -> str:
    return row.slug


def _series(items: Sequence[msgspec.Struct], columns: Sequence[Column]) -> dict[str, list[int]]:
    """Chart series named as the table's columns are, one value an item."""
    return {c.heading: [getattr(item, c.field) for item in items] for c in columns}


def _shown_note(rows: int) -> str:
    if rows > charts.MAX_BARS:
        return f"The chart shows the {charts.MAX_BARS} largest of {rows}; the table lists all."
    return ""


def _table(
    table_id: str,
    caption: str,
    columns: list[Column],
    items: Sequence[Item],
    key: Callable[[Item], str],
) -> Table:
    return Table(
        table_id,
        caption,
        columns,
        [Row(key(item), [_cell(c, getattr(item, c.field)) for c in columns]) for item in items],
    )


def _totals(totals: UsageTotals | PlatformTotals) -> Table:
    rows = [
        Row(column.field, [Cell(column.heading), _cell(column, getattr(totals, column.field))])
        for column in TOTALS
        if hasattr(totals, column.field)
    ]
    headings = [Column("measure", "Measure", "text"), Column("value", "Total", "count")]
    return Table("totals", "Totals over the range", headings, rows)


def _cell(column: Column, value: object) -> Cell:
    if column.kind == "period":
        assert isinstance(value, date)
        return Cell(period_label(value, column.granularity), value=value.isoformat())
    if column.kind == "text":
        return Cell(str(value) if value else column.empty)
    assert isinstance(value, int | float)
    if column.kind == "bytes":
        return Cell(human_bytes(value), True, str(value), f"{value:,} bytes")
    if column.kind == "percent":
        return Cell(f"{value:.1f} %", True, repr(float(value)))
    return Cell(human_count(value), True, str(value))


def _initial(name: str) -> str:
    """The monogram's letter: the name's first letter or digit."""
    return next((c.upper() for c in name if c.isalnum()), "?")


def _ink_on(colour: str) -> str:
    """Dark or white text, whichever reads on `colour` (#rrggbb)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#1f2328" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#ffffff"
