"""How the reports write numbers and periods for a person (the exact values travel beside them)."""

from __future__ import annotations

from datetime import date

from tenantry.usage.schemas import Granularity

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(size: float, *, short: bool = False) -> str:
    """Binary units, one decimal from KiB up: 1048576 is "1.0 MiB" ("1 MiB" if `short`)."""
    magnitude, unit = abs(size), 0
    while magnitude >= 1024 and unit < len(BYTE_UNITS) - 1:
        magnitude /= 1024
        unit += 1
    sign = "-" if size < 0 else ""
    if unit == 0:
        return f"{sign}{magnitude:.0f} B"
    return f"{sign}{magnitude:{'.4g' if short else '.1f'}} {BYTE_UNITS[unit]}"


def human_count(count: float) -> str:
    return f"{count:,.0f}"


def period_label(period: date, granularity: Granularity) -> str:
    """A day as its date, a week as its ISO week ("2026-W48"), a month as "2026-11"."""
    if granularity == "week":
        iso = period.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if granularity == "month":
        return f"{period.year:04d}-{period.month:02d}"
    return period.isoformat()
