"""The HTML usage reports: exact numbers in the tables, nothing a browser would fetch, no script,
tenant text escaped, empty reports, the same bytes for the same report.

Pure rendering: the reports are built by hand and the pages parsed with the stdlib's parser.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser

import msgspec
import pytest

from tenantry.usage.charts import MAX_BARS, Palette, ranking_chart, storage_chart
from tenantry.usage.formatting import human_bytes, period_label
from tenantry.usage.html import render_platform_report, render_tenant_report
from tenantry.usage.schemas import Granularity, GroupRow, PeriodPoint, TopFile, UsageReport
from tests.fixtures.usage_reports import (
    BREAKDOWNS,
    FILE_ID,
    MiB,
    TiB,
    group,
    platform_usage,
    tenant_report,
    tenant_row,
)

PRIMARY, ACCENT = "#0a7d5a", "#d9480f"
HOSTILE = "</svg><script>alert(1)</script>"


# -- what a page holds, as a browser's parser sees it ---------------------------------------------


@dataclass
class Cell:
    text: str
    value: str | None
    title: str | None


@dataclass
class Table:
    fields: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, Cell]] = field(default_factory=dict)

    def value(self, key: str, column: str) -> str | None:
        return self.rows[key][column].value


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Table] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {}  # innermost element -> the texts in it
        self.styles: list[str] = []  # <style> bodies and style attributes
        self._open: list[str] = []
        self._table: Table | None = None
        self._row: dict[str, Cell] | None = None
        self._cell: dict[str, str | None] | None = None
        self._cell_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("style"):
            self.styles.append(attributes["style"] or "")
        if tag not in {"meta", "br", "img", "input", "link"}:
            self._open.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(attributes["id"] or "", Table())
        elif tag == "th" and self._table is not None and "data-field" in attributes:
            self._table.fields.append(attributes["data-field"] or "")
        elif tag == "tr" and self._table is not None and "data-key" in attributes:
            self._row = self._table.rows.setdefault(attributes["data-key"] or "", {})
        elif tag == "td" and self._row is not None:
            self._cell, self._cell_text = attributes, []

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass
        if tag == "td" and self._cell is not None and self._table is not None:
            assert self._row is not None
            column = self._table.fields[len(self._row)]
            self._row[column] = Cell(
                "".join(self._cell_text), self._cell.get("data-value"), self._cell.get("title")
            )
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell_text.append(data)
        if self._open:
            self.texts.setdefault(self._open[-1], []).append(data)
            if self._open[-1] == "style":
                self.styles.append(data)


def parse(page: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(page)
    parsed.close()
    return parsed


# -- rendering the reports of tests.fixtures.usage_reports ----------------------------------------


def render(
    report: UsageReport | None = None,
    *,
    display_name: str = "Acme Media",
    primary_color: str = PRIMARY,
    accent_color: str = ACCENT,
    breakdowns: Mapping[str, list[GroupRow]] = BREAKDOWNS,
) -> str:
    return render_tenant_report(
        report or tenant_report(),
        display_name=display_name,
        primary_color=primary_color,
        accent_color=accent_color,
        breakdowns=breakdowns,
    )


# -- the numbers ----------------------------------------------------------------------------------


def test_tenant_tables_carry_the_exact_numbers() -> None:
    report = tenant_report()
    tables = parse(render(report)).tables

    assert set(tables) == {
        "totals",
        "storage",
        "series",
        "breakdown-category",
        "breakdown-language",
        "breakdown-audience",
        "breakdown-role",
        "top-files",
    }
    totals = tables["totals"]
    for name in ("uploads", "downloads", "bytes_in", "bytes_out", "storage_bytes", "file_count"):
        assert totals.value(name, "value") == str(getattr(report.totals, name))
    assert totals.rows["bytes_in"]["value"].text == "1.0 MiB"
    assert totals.rows["bytes_in"]["value"].title == "1,048,576 bytes"

    series = tables["series"]
    assert list(series.rows) == [p.period.isoformat() for p in report.series]
    assert series.fields == [
        "period",
        "uploads",
        "downloads",
        "deletes",
        "logins",
        "signups",
        "bytes_in",
        "bytes_out",
        "bytes_served",
        "active_users",
        "storage_bytes",
        "file_count",
    ]
    for p in report.series:
        row = series.rows[p.period.isoformat()]
        assert row["period"] == Cell(p.period.isoformat(), p.period.isoformat(), None)
        for name in series.fields[1:]:
            assert row[name].value == str(getattr(p, name)), name
    assert series.rows["2026-11-02"]["bytes_out"] == Cell(
        "5.0 TiB", str(5 * TiB + 1), f"{5 * TiB + 1:,} bytes"
    )

    storage = tables["storage"]
    assert storage.fields == ["period", "storage_bytes", "file_count"]
    assert [
        int(storage.value(p.period.isoformat(), "storage_bytes") or "") for p in report.series
    ] == [p.storage_bytes for p in report.series]

    for dimension, groups in BREAKDOWNS.items():
        table = tables[f"breakdown-{dimension}"]
        assert list(table.rows) == [g.key for g in groups]
        for g in groups:
            assert table.rows[g.key]["label"].text == (g.label or "(none)")
            for name in ("uploads", "downloads", "bytes_in", "bytes_out", "bytes_served"):
                assert table.value(g.key, name) == str(getattr(g, name))

    top = tables["top-files"]
    assert top.fields == ["title", "downloads", "bytes_out"]
    assert top.rows[str(FILE_ID)]["title"].text == "Keynote"
    assert top.value(str(FILE_ID), "bytes_out") == str(4 * MiB)
    assert top.rows[str(uuid.UUID(int=6))]["title"].text == "(deleted file)"


@pytest.mark.parametrize(
    ("granularity", "periods", "labels"),
    [
        ("day", [date(2026, 11, 30)], ["2026-11-30"]),
        ("week", [date(2026, 11, 23), date(2026, 11, 30)], ["2026-W48", "2026-W49"]),
        ("week", [date(2026, 12, 28)], ["2026-W53"]),  # ISO year 2026 has 53 weeks
        ("month", [date(2026, 10, 1), date(2026, 11, 1)], ["2026-10", "2026-11"]),
    ],
)
def test_periods_are_named_for_the_granularity(
    granularity: Granularity, periods: list[date], labels: list[str]
) -> None:
    parsed = parse(render(tenant_report(granularity=granularity, periods=periods)))
    for table in ("series", "storage"):
        cells = [row["period"] for row in parsed.tables[table].rows.values()]
        assert [c.text for c in cells] == labels
        assert [c.value for c in cells] == [p.isoformat() for p in periods]
    assert period_label(periods[0], granularity) == labels[0]


def test_platform_tables_carry_the_exact_numbers() -> None:
    usage = platform_usage()
    tables = parse(render_platform_report(usage, granularity="week")).tables

    assert set(tables) == {"totals", "tenants", "storage", "series"}
    for name in ("tenants", "storage_bytes", "downloads", "bytes_in", "active_users"):
        assert tables["totals"].value(name, "value") == str(getattr(usage.totals, name))
    tenants = tables["tenants"]
    assert list(tenants.rows) == [item.slug for item in usage.items]
    for item in usage.items:
        for name in tenants.fields:
            expected = getattr(item, name)
            cell = tenants.rows[item.slug][name]
            if isinstance(expected, str):
                assert cell.text == expected
            elif isinstance(expected, float):
                assert float(cell.value or "") == expected
            else:
                assert cell.value == str(expected), name
    series = tables["series"]
    assert series.fields == [
        "period",
        "uploads",
        "downloads",
        "bytes_in",
        "bytes_out",
        "storage_bytes",
        "active_tenants",
    ]
    for p in usage.series:
        row = series.rows[p.period.isoformat()]
        assert row["period"].text == period_label(p.period, "week")
        for name in series.fields[1:]:
            assert row[name].value == str(getattr(p, name))
    assert [row["storage_bytes"].value for row in tables["storage"].rows.values()] == [
        str(p.storage_bytes) for p in usage.series
    ]


def test_human_readable_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1, 1023, 1024, 1536, MiB, 5 * TiB + 1)] == [
        "0 B",
        "1 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "1.0 MiB",
        "5.0 TiB",
    ]
    assert human_bytes(25 * 1024**3, short=True) == "25 GiB"


# -- self-contained, no script --------------------------------------------------------------------

FETCHING_ATTRIBUTES = {
    "src",
    "href",
    "xlink:href",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "background",
    "cite",
    "ping",
    "manifest",
}


def pages() -> dict[str, str]:
    return {
        "tenant": render(),
        "platform": render_platform_report(platform_usage()),
    }


@pytest.mark.parametrize("kind", ["tenant", "platform"])
def test_nothing_a_browser_would_fetch(kind: str) -> None:
    page = pages()[kind]
    parsed = parse(page)

    namespaces = 0
    for tag, attributes in parsed.tags:
        assert tag not in {"link", "img", "iframe", "object", "embed", "base", "use", "image"}
        for name, value in attributes.items():
            if name == "xmlns" or name.startswith("xmlns:"):
                namespaces += value is not None and value.startswith("http://")
                continue  # a namespace name, never fetched
            if name in FETCHING_ATTRIBUTES:
                assert value is None or value.startswith(("#", "data:")), (tag, name, value)
            assert not re.search(r"(https?:)?//", value or ""), (tag, name, value)
    # Every http:// in the page is one of those namespace names.
    assert page.count("http://") == namespaces > 0
    assert "https://" not in page
    for css in parsed.styles:
        assert "@import" not in css
        assert all(
            u.startswith(("#", "data:")) for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", css)
        )
        assert "//" not in re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)


@pytest.mark.parametrize("kind", ["tenant", "platform"])
def test_no_script_and_a_policy_that_blocks_loads(kind: str) -> None:
    page = pages()[kind]
    parsed = parse(page)
    assert "<script" not in page.lower()
    assert not [a for _, attributes in parsed.tags for a in attributes if a.startswith("on")]
    policies = [
        attributes["content"]
        for tag, attributes in parsed.tags
        if tag == "meta" and attributes.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]
    assert not page.startswith("<?xml")
    assert page.count("<!DOCTYPE html>") == 1
    assert "<?xml" not in page


def test_tenant_text_is_escaped() -> None:
    hostile_file = '"><img src=x onerror=alert(1)>'
    breakdowns = {"category": [group("c1", HOSTILE, 3)], "language": [group("x", "a & b", 1)]}
    report = tenant_report(
        top_files=[TopFile(file_id=FILE_ID, title=hostile_file, downloads=1, bytes_out=1)]
    )
    page = render(report, display_name=HOSTILE, breakdowns=breakdowns)
    parsed = parse(page)

    assert "<script" not in page.lower()
    assert not [tag for tag, _ in parsed.tags if tag in {"script", "img"}]
    assert parsed.texts["h1"] == [HOSTILE]
    assert parsed.texts["title"][0].startswith(HOSTILE)
    assert parsed.tables["breakdown-category"].rows["c1"]["label"].text == HOSTILE
    assert parsed.tables["top-files"].rows[str(FILE_ID)]["title"].text == hostile_file
    # In the chart the label is SVG text, still whole up to where it is shortened.
    assert any(t.startswith(HOSTILE[:20]) for t in parsed.texts["text"])
    assert "&lt;/svg&gt;&lt;script&gt;" in page


def test_platform_tenant_names_are_escaped() -> None:
    page = render_platform_report(platform_usage([tenant_row(1, HOSTILE)]))
    parsed = parse(page)
    assert "<script" not in page.lower()
    assert not [tag for tag, _ in parsed.tags if tag == "script"]
    assert parsed.tables["tenants"].rows["t01"]["name"].text == HOSTILE
    # Both tenant charts label the bar with the name, as text.
    assert len([t for t in parsed.texts["text"] if t.startswith(HOSTILE[:20])]) == 2


@pytest.mark.parametrize(
    "colour", ["rebeccapurple", "#12345g", "#0a7d5a;}</style><script>", "#0a7d5a\n", "url(//x)", ""]
)
def test_a_colour_that_is_not_rrggbb_never_reaches_the_page(colour: str) -> None:
    page = render(primary_color=colour, accent_color=colour)
    if colour:
        assert colour not in page
    assert "--primary: #0969da;" in page  # the defaults instead
    assert "--accent: #bc4c00;" in page
    with pytest.raises(ValueError, match="rrggbb"):
        Palette(colour, ACCENT)


def test_the_tenant_brand() -> None:
    page = render(display_name="acme Media")
    parsed = parse(page)
    assert f"--primary: {PRIMARY};" in page
    assert f"--accent: {ACCENT};" in page
    assert parsed.texts["h1"] == ["acme Media"]
    assert parsed.texts["title"][0] == "acme Media: usage 2026-11-01 to 2026-11-30"
    circles = [a for tag, a in parsed.tags if tag == "circle" and a.get("fill") == PRIMARY]
    assert circles  # the monogram, in the primary colour
    assert "A" in parsed.texts["text"]
    # The charts are drawn in the tenant's colours (pygal's CSS for the first two series).
    assert f"stroke:{PRIMARY};fill:{PRIMARY}" in page
    assert f"stroke:{ACCENT};fill:{ACCENT}" in page


# -- empty, large, deterministic ------------------------------------------------------------------


def test_an_empty_report_renders() -> None:
    report = tenant_report(periods=[], top_files=[])
    empty: dict[str, list[GroupRow]] = {name: [] for name in BREAKDOWNS}
    page = render(report, breakdowns=empty)
    parsed = parse(page)
    for table in ("storage", "series", "top-files", *(f"breakdown-{n}" for n in BREAKDOWNS)):
        assert parsed.tables[table].rows == {}
    assert page.count("No data in this range") >= 2 * (2 + len(BREAKDOWNS))  # charts and tables

    platform = render_platform_report(platform_usage(items=[], series=[]))
    parsed_platform = parse(platform)
    assert parsed_platform.tables["tenants"].rows == {}
    assert "Tenants 0 to 0 of 0" in platform


def test_zero_activity_renders() -> None:
    zeros = [PeriodPoint(period=date(2026, 11, 1) + timedelta(i)) for i in range(3)]
    report = msgspec.structs.replace(tenant_report(), series=zeros)
    parsed = parse(render(report, breakdowns={"role": [GroupRow(key="admin", label="admin")]}))
    assert [r["uploads"].value for r in parsed.tables["series"].rows.values()] == ["0", "0", "0"]


def test_a_long_breakdown_charts_its_largest_and_tables_all() -> None:
    rows = [group(f"k{i}", f"Category {i}", i) for i in range(MAX_BARS + 5)]
    page = render(breakdowns={"category": rows})
    parsed = parse(page)
    assert len(parsed.tables["breakdown-category"].rows) == MAX_BARS + 5
    assert f"The chart shows the {MAX_BARS} largest of {MAX_BARS + 5}" in page
    chart = ranking_chart(
        "c",
        "By category",
        [r.label for r in rows],
        {"Uploads": [r.uploads for r in rows]},
        Palette(PRIMARY, ACCENT),
        in_bytes=False,
    )
    labels = parse(chart).texts["text"]
    assert "Category 24" in labels and "Category 5" in labels and "Category 4" not in labels


def test_rendering_is_deterministic_and_ids_are_unique() -> None:
    assert render() == render()
    usage = platform_usage()
    assert render_platform_report(usage) == render_platform_report(usage)
    for page in pages().values():
        ids = [a["id"] for _, a in parse(page).tags if "id" in a]
        assert len(ids) == len(set(ids))


def test_a_chart_is_one_bare_svg_element() -> None:
    svg = storage_chart("s", "Storage", ["2026-11-01"], [MiB], Palette(PRIMARY, ACCENT))
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert "<!--" not in svg and "<script" not in svg and "width=" not in svg.split(">", 1)[0]
    assert 'viewBox="0 0 ' in svg.split(">", 1)[0]
    assert "<title>Storage, 2026-11-01: 1.0 MiB</title>" in svg  # the hover title of the point
