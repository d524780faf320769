"""`GET /files/stats` assembled from the rollup: every category and audience of the tenant, the
empty ones too, and a `null` group for files without a category."""

from __future__ import annotations

from tenantry.db.enums import StatsDimension
from tenantry.files import rollup
from tenantry.files.repository import StatsRows
from tenantry.files.schemas import FileStats, GroupStat


def assemble_stats(rows: StatsRows) -> FileStats:
    counted: dict[str, dict[str, tuple[int, int]]] = {}
    for row in rows.counts:
        if row["files"] > 0:
            counted.setdefault(row["dimension"], {})[row["key"]] = (row["files"], row["bytes"])
    files, size = counted.get(StatsDimension.TOTAL, {}).get(rollup.NONE, (0, 0))
    per_category = counted.get(StatsDimension.CATEGORY, {})
    by_category = [
        GroupStat(str(c["id"]), c["name"], *per_category.get(str(c["id"]), (0, 0)))
        for c in rows.categories
    ]
    if rollup.NONE in per_category:
        by_category.append(GroupStat(None, None, *per_category[rollup.NONE]))
    per_audience = counted.get(StatsDimension.AUDIENCE, {})
    return FileStats(
        files=files,
        bytes=size,
        by_category=by_category,
        by_language=_by_value(counted.get(StatsDimension.LANGUAGE, {})),
        by_audience=[
            GroupStat(str(a["id"]), a["name"], *per_audience.get(str(a["id"]), (0, 0)))
            for a in rows.audiences
        ],
        by_content_type=_by_value(counted.get(StatsDimension.CONTENT_TYPE, {})),
    )


def _by_value(groups: dict[str, tuple[int, int]]) -> list[GroupStat]:
    """A breakdown keyed by the value itself (language, content type); unset last, as null."""
    ordered = sorted(groups.items(), key=lambda item: (item[0] == rollup.NONE, item[0]))
    return [GroupStat(key or None, key or None, files, size) for key, (files, size) in ordered]
