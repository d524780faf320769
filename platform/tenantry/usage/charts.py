"""Inline SVG charts for the usage reports, drawn by pygal.

Each function returns one `<svg>` element to put in an HTML page as it is. The page loads
nothing and runs nothing, so neither do the charts: pygal's config script and its tooltip script
(from a CDN by default) are left out, and so are the XML declaration and pygal's comments (they
carry the day of rendering and pygal's URLs); a hover title on each point stands in for the
script tooltips. The caller names each chart, which scopes pygal's CSS to it: the same data
gives the same bytes, and two charts on a page never share an id.

The SVGs have a viewBox and no size, so they take the width of their container; the fonts are
sized for a 520-unit-wide chart shown at about 350 px on a phone (10 px type).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

from tenantry.usage.formatting import human_bytes, human_count

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
WIDTH = 520
TIME_SERIES_HEIGHT = 300
# A dot per point is a hover target; past two months of days the dots only blur the line.
MAX_DOTTED_POINTS = 62
# A breakdown charts its largest rows; its table lists them all.
MAX_BARS = 20
MAX_LABEL = 28
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Palette:
    """The tenant's colours, checked here because they end up in CSS unquoted."""

    primary: str
    accent: str

    def __post_init__(self) -> None:
        for colour in (self.primary, self.accent):
            if not HEX_COLOUR.fullmatch(colour):
                raise ValueError(f"not a #rrggbb colour: {colour!r}")


def storage_chart(
    chart_id: str,
    title: str,
    periods: Sequence[str],
    storage_bytes: Sequence[int],
    palette: Palette,
) -> str:
    """Storage at the end of each period, as a filled line."""
    chart = pygal.Line(
        **_config(
            palette, TIME_SERIES_HEIGHT, max(storage_bytes, default=0), in_bytes=True, steps=5
        ),
        **_time_axis(len(periods)),
        fill=True,
        show_legend=False,
    )
    chart.x_labels = list(periods)
    chart.add(title, list(storage_bytes))
    return _render(chart, chart_id, title, [title])


def activity_chart(
    chart_id: str,
    title: str,
    periods: Sequence[str],
    series: Mapping[str, Sequence[int]],
    palette: Palette,
) -> str:
    """Event counts per period (uploads and downloads), one line each."""
    top = max((max(values, default=0) for values in series.values()), default=0)
    chart = pygal.Line(
        **_config(palette, TIME_SERIES_HEIGHT, top, in_bytes=False, steps=5),
        **_time_axis(len(periods)),
        legend_at_bottom=True,
        legend_at_bottom_columns=len(series),
    )
    chart.x_labels = list(periods)
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart, chart_id, title, list(series))


def ranking_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    palette: Palette,
    *,
    in_bytes: bool,
) -> str:
    """Horizontal bars per label (category, language, tenant...), the largest `MAX_BARS` by the
    sum of the series, largest at the top."""
    columns = list(series.values())
    ranked = sorted(range(len(labels)), key=lambda row: (-sum(c[row] for c in columns), row))
    # pygal draws the first label at the bottom.
    shown = ranked[:MAX_BARS][::-1]
    top = max((column[row] for column in columns for row in shown), default=0)
    chart = pygal.HorizontalBar(
        **_config(palette, 110 + 34 * max(len(shown), 2), top, in_bytes=in_bytes, steps=3),
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        legend_at_bottom_columns=len(series),
    )
    chart.x_labels = [_shorten(labels[row]) for row in shown]
    for name, values in series.items():
        chart.add(name, [values[row] for row in shown])
    return _render(chart, chart_id, title, list(series))


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "\u2026"


def _config(
    palette: Palette, height: int, top: int, *, in_bytes: bool, steps: int
) -> dict[str, Any]:
    formatter: Formatter = human_bytes if in_bytes else human_count
    ticks = _ticks(top, _byte_unit(top) if in_bytes else 1, steps)
    # Round ticks read better without their decimals ("25 GiB"); hover titles keep them.
    tick_label: Formatter = partial(human_bytes, short=True) if in_bytes else human_count
    return {
        "style": _style(palette),
        "width": WIDTH,
        "height": height,
        "js": [],
        "disable_xml_declaration": True,
        "value_formatter": formatter,
        "y_labels": [{"label": tick_label(tick), "value": tick} for tick in ticks],
        "range": (0, ticks[-1]),
        "no_data_text": "No data in this range",
        # pygal would shorten the labels of the x axis to fit a slot per point (though it
        # shows four dates) or per value label; dates and numbers stay whole, and
        # `ranking_chart` shortens category names itself.
        "truncate_label": -1,
        "truncate_legend": -1,  # the legends are our own short series names
        "margin": 12,
        "margin_right": 44,  # room for the last axis label, centred on the right edge
        "spacing": 12,
    }


def _time_axis(points: int) -> dict[str, Any]:
    return {
        "x_labels_major_count": 4,
        "show_minor_x_labels": False,
        "show_dots": points <= MAX_DOTTED_POINTS,
        "dots_size": 3,
    }


def _style(palette: Palette) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#1f2328",
        foreground_strong="#1f2328",
        foreground_subtle="#59636e",
        guide_stroke_color="#d1d9e0",
        major_guide_stroke_color="#d1d9e0",
        font_family=FONT,
        colors=(palette.primary, palette.accent),
        label_font_size=16,
        major_label_font_size=16,
        legend_font_size=16,
        title_font_size=17,
        value_font_size=14,
        tooltip_font_size=14,
        no_data_font_size=22,
        opacity=".85",
        opacity_hover="1",
        stroke_width="2",
    )


def _byte_unit(top: int) -> int:
    """The largest binary unit (1, KiB, MiB...) not above `top`: axis steps are round in it."""
    unit = 1
    while unit * 1024 <= top:
        unit *= 1024
    return unit


def _ticks(top: int, unit: int, steps: int) -> list[float]:
    """Axis labels from 0 past `top` in about `steps` steps of 1, 2 or 5 times a power of ten
    (times `unit`); never steps below one, as counts and bytes are whole."""
    if top <= 0:
        return [0, unit]
    rough = top / unit / steps
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough) * unit
    step = max(step, 1)
    return [index * step for index in range(math.ceil(top / step) + 1)]


def _render(chart: Any, chart_id: str, title: str, series_names: Sequence[str]) -> str:
    chart.uuid = chart_id  # scopes pygal's CSS (#chart-<uuid>); a random uuid4 by default
    chart.add_xml_filter(partial(_self_contained, title=title, series_names=series_names))
    svg: str = chart.render(is_unicode=True)
    return svg


def _self_contained(
    root: ElementTree.Element, *, title: str, series_names: Sequence[str]
) -> ElementTree.Element:
    """pygal's tree without scripts, comments or script-only parts, titled, with hover titles."""
    for parent in list(root.iter()):
        for child in list(parent):
            if (
                callable(child.tag)  # a comment's tag is ElementTree.Comment
                or child.tag == "script"
                or "tooltip-overlay" in child.get("class", "")
                # An axis label's title repeats it, or is its position on a horizontal chart.
                or (child.tag == "title" and "guides" in parent.get("class", ""))
            ):
                parent.remove(child)
        # The legend's ids are the same in every chart (activate-serie-0) and only pygal.js
        # reads them.
        if parent.get("id", "").startswith("activate-serie-"):
            del parent.attrib["id"]
        classes = parent.get("class", "").split()
        if "series" in classes:
            serie = next(c for c in classes if c.startswith("serie-"))
            _hover_titles(parent, series_names[int(serie.removeprefix("serie-"))])
    root.set("role", "img")
    svg_title = root.find("title")
    if svg_title is not None:
        svg_title.text = title
    return root


def _hover_titles(series: ElementTree.Element, name: str) -> None:
    """Each point's `<desc>` elements (pygal.js reads them) become one `<title>`, which a browser
    shows on hover without any script."""
    for point in list(series.iter()):
        descriptions = {d.get("class", ""): d.text or "" for d in point.findall("desc")}
        if not descriptions:
            continue
        for description in point.findall("desc"):
            point.remove(description)
        label = descriptions.get("x_label")
        value = descriptions.get("value", "")
        ElementTree.SubElement(point, "title").text = (
            f"{name}, {label}: {value}" if label else f"{name}: {value}"
        )
