"""What the HTML usage reports cost to render: each chart type at 90, 180 and 400 points, and
whole pages, with pygal (what the reports use); with `--matplotlib`, the same charts through
matplotlib's SVG backend for comparison.

    uv run python benchmarks/bench_charts.py [--repeats 15]
    uv run --with matplotlib python benchmarks/bench_charts.py --matplotlib

Pure CPU in this process, no I/O: medians over `--repeats` runs after two warm-up runs, and the
size of what each run returns.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from tenantry.usage import charts
from tenantry.usage.html import render_platform_report, render_tenant_report
from tenantry.usage.schemas import (
    GroupRow,
    PeriodPoint,
    PlatformPoint,
    PlatformTotals,
    PlatformUsage,
    TenantRef,
    TenantUsageRow,
    UsageReport,
    UsageTotals,
)

# A month of days (dotted), then the range the brief asks for.
POINTS = (31, 90, 180, 400)
BREAKDOWN_ROWS = 12
PALETTE = charts.Palette("#0a7d5a", "#d9480f")
WARM_UP = 2


def measure(render: Callable[[], str | bytes], repeats: int) -> tuple[float, float, float, int]:
    """Median, min and max milliseconds of `render`, and the length of its output."""
    for _ in range(WARM_UP):
        output = render()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        output = render()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times), len(output)


def days(points: int) -> list[date]:
    return [date(2026, 1, 1) + timedelta(i) for i in range(points)]


def series(points: int) -> dict[str, list[int]]:
    return {
        "Uploads": [(i * 7) % 23 for i in range(points)],
        "Downloads": [(i * 13) % 41 for i in range(points)],
    }


def storage(points: int) -> list[int]:
    return [(i * 37 + (i * i) % 101) * 1024 * 1024 for i in range(points)]


def labels(rows: int) -> list[str]:
    return [f"Category {i}" for i in range(rows)]


def tenant_report(points: int) -> tuple[UsageReport, dict[str, list[GroupRow]]]:
    stored = storage(points)
    report = UsageReport(
        tenant=TenantRef(id=uuid.UUID(int=1), slug="bench", name="Bench"),
        from_=days(points)[0],
        to=days(points)[-1],
        tz="UTC",
        granularity="day",
        group_by=None,
        as_of=datetime(2026, 12, 1, tzinfo=UTC),
        totals=UsageTotals(uploads=points, downloads=points),
        series=[
            PeriodPoint(
                period=day,
                uploads=(i * 7) % 23,
                downloads=(i * 13) % 41,
                bytes_in=i * 1000,
                storage_bytes=stored[i],
            )
            for i, day in enumerate(days(points))
        ],
        groups=[],
        group_series=[],
        top_files=[],
    )
    rows = [
        GroupRow(key=f"k{i}", label=label, uploads=i, downloads=2 * i)
        for i, label in enumerate(labels(BREAKDOWN_ROWS))
    ]
    dimensions = ("category", "language", "audience", "role")
    return report, {dimension: rows for dimension in dimensions}


def platform_usage(points: int, tenants: int) -> PlatformUsage:
    stored = storage(points)
    return PlatformUsage(
        from_=days(points)[0],
        to=days(points)[-1],
        sort="-storage_bytes",
        as_of=datetime(2026, 12, 1, tzinfo=UTC),
        totals=PlatformTotals(
            tenants=tenants,
            storage_bytes=0,
            file_count=0,
            uploads=0,
            downloads=0,
            deletes=0,
            bytes_in=0,
            bytes_out=0,
            active_users=0,
        ),
        series=[
            PlatformPoint(
                period=day,
                uploads=i,
                downloads=2 * i,
                bytes_in=i,
                bytes_out=i,
                storage_bytes=stored[i],
                active_tenants=tenants,
            )
            for i, day in enumerate(days(points))
        ],
        items=[
            TenantUsageRow(
                tenant_id=uuid.UUID(int=i),
                slug=f"t{i}",
                name=f"Tenant {i}",
                status="active",
                storage_bytes=i * 1024**3,
                storage_quota_bytes=100 * 1024**3,
                quota_used_pct=float(i),
                file_count=i,
                uploads=i,
                downloads=i,
                deletes=0,
                bytes_in=i,
                bytes_out=i,
                active_users=i,
            )
            for i in range(tenants)
        ],
        total=tenants,
        limit=tenants,
        offset=0,
    )


Case = tuple[str, int, Callable[[], str]]


def pygal_cases() -> list[Case]:
    cases: list[Case] = []
    for n in POINTS:
        periods = [d.isoformat() for d in days(n)]
        cases += [
            (
                "storage (filled line)",
                n,
                partial(charts.storage_chart, "s", "Storage", periods, storage(n), PALETTE),
            ),
            (
                "uploads/downloads (2 lines)",
                2 * n,
                partial(charts.activity_chart, "a", "Activity", periods, series(n), PALETTE),
            ),
        ]
    cases.append(
        (
            "breakdown (horizontal bars, 2 series)",
            2 * charts.MAX_BARS,
            partial(
                charts.ranking_chart,
                "b",
                "By category",
                labels(charts.MAX_BARS),
                series(charts.MAX_BARS),
                PALETTE,
                in_bytes=False,
            ),
        )
    )
    for n in POINTS:
        report, breakdowns = tenant_report(n)
        cases.append(
            (
                f"tenant page ({n} days, 4 breakdowns of {BREAKDOWN_ROWS})",
                n,
                partial(
                    render_tenant_report,
                    report,
                    display_name="Bench",
                    primary_color=PALETTE.primary,
                    accent_color=PALETTE.accent,
                    breakdowns=breakdowns,
                ),
            )
        )
    cases.append(
        (
            "platform page (400 days, 50 tenants)",
            400,
            partial(render_platform_report, platform_usage(400, 50)),
        )
    )
    return cases


def matplotlib_cases() -> list[Case]:
    # Only with --matplotlib: not a dependency of the project.
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    def svg(draw: Callable[[Any], None], height: float = 3.0) -> str:
        figure, axes = pyplot.subplots(figsize=(5.2, height))
        draw(axes)
        out = io.StringIO()
        figure.savefig(out, format="svg")
        pyplot.close(figure)
        return out.getvalue()

    def filled_line(axes: Any, values: list[int]) -> None:
        axes.fill_between(range(len(values)), values)
        axes.plot(range(len(values)), values)

    def lines(axes: Any, named: dict[str, list[int]]) -> None:
        for name, values in named.items():
            axes.plot(range(len(values)), values, label=name)
        axes.legend()

    def bars(axes: Any, named: dict[str, list[int]]) -> None:
        for offset, (name, values) in zip((-0.2, 0.2), named.items(), strict=True):
            axes.barh([row + offset for row in range(len(values))], values, 0.4, label=name)
        axes.set_yticks(range(charts.MAX_BARS), labels(charts.MAX_BARS))
        axes.legend()

    cases: list[Case] = []
    for n in POINTS:
        cases += [
            (
                "matplotlib storage (filled line)",
                n,
                partial(svg, partial(filled_line, values=storage(n))),
            ),
            (
                "matplotlib uploads/downloads (2 lines)",
                2 * n,
                partial(svg, partial(lines, named=series(n))),
            ),
        ]
    cases.append(
        (
            "matplotlib breakdown (horizontal bars, 2 series)",
            2 * charts.MAX_BARS,
            partial(svg, partial(bars, named=series(charts.MAX_BARS)), height=7.9),
        )
    )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--matplotlib", action="store_true", help="compare matplotlib's SVG")
    args = parser.parse_args()

    cases = pygal_cases() + (matplotlib_cases() if args.matplotlib else [])
    print(f"| what | points | median ms | min ms | max ms | output KiB |  ({args.repeats} runs)")
    print("|---|---|---|---|---|---|")
    for name, points, render in cases:
        median, fastest, slowest, size = measure(render, args.repeats)
        print(
            f"| {name} | {points} | {median:.1f} | {fastest:.1f} | {slowest:.1f} | {size / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
