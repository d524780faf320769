"""A usage report renders in a real headless Chromium from a file, with nothing to fetch: the
page's own Content-Security-Policy would block (and Chromium would log) any load, and none is
logged; it draws in the tenant's colour at desktop and phone widths and prints to a PDF."""

from __future__ import annotations

import re
import struct
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.usage.html import render_platform_report, render_tenant_report
from tests.fixtures.usage_reports import BREAKDOWNS, platform_usage, tenant_report, tenant_row
from tests.integration import test_docs_browser
from tests.integration.live import operator_token, provision, serve
from tests.integration.test_docs_browser import chromium, png_pixels

pytestmark = test_docs_browser.pytestmark

PRIMARY = (0x0A, 0x7D, 0x5A)
# How Chromium logs a load that the page's policy blocked ("Loading the image '...' violates
# the following Content Security Policy directive", "Refused to load ...") or that failed. The
# page has no script, so any message from its console is one of these.
REFUSED = re.compile(
    r"Refused to|Failed to load|Content Security Policy|net::ERR_|:CONSOLE", re.IGNORECASE
)
# Rows of the screenshot decoded to look for the primary colour: the masthead is at the top.
TOP_ROWS = 160


def tenant_page() -> str:
    days = [date(2026, 9, 1) + timedelta(i) for i in range(90)]
    return render_tenant_report(
        tenant_report(periods=days),
        display_name="Acme <b>Media</b>",
        primary_color="#0a7d5a",
        accent_color="#d9480f",
        breakdowns={**BREAKDOWNS, "audience": []},
    )


def platform_page() -> str:
    return render_platform_report(
        platform_usage([tenant_row(i) for i in range(1, 13)]), granularity="week"
    )


def png_top_pixels(data: bytes, rows: int) -> set[tuple[int, ...]]:
    """The distinct colours of the first `rows` rows of an 8-bit RGB or RGBA PNG, unfiltered
    (`png_pixels` gives the filtered scanlines)."""
    width, _, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    scanlines = png_pixels(data)
    previous, colours = bytearray(stride), set[tuple[int, ...]]()
    for y in range(rows):
        kind = scanlines[y * (stride + 1)]
        line = bytearray(scanlines[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            upper_left = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - upper_left
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
                line[x] = (line[x] + predictor) & 0xFF
        colours.update(tuple(line[x : x + 3]) for x in range(0, stride, channels))
        previous = line
    return colours


@pytest.mark.parametrize("kind", ["tenant", "platform"])
def test_the_report_renders_offline_and_prints(kind: str, tmp_path: Path) -> None:
    page = tenant_page() if kind == "tenant" else platform_page()
    assert_renders_offline(page, tmp_path, primary=PRIMARY if kind == "tenant" else None)


def test_the_served_reports_render_offline(
    settings: Settings, clean_database: None, tmp_path: Path
) -> None:
    """The pages as the real server sends them (its own rollup job running), in Chromium."""
    live = msgspec.structs.replace(settings, usage_rollup_interval_seconds=0.2)
    with serve(create_app(live)) as base_url:
        operator = operator_token(settings, base_url)
        tenant = provision(base_url, operator, "acme")
        owner = {"Host": tenant.host, "Authorization": f"Bearer {tenant.owner_token}"}
        with httpx.Client(base_url=base_url) as client:
            brand = {"branding": {"primary_color": "#0a7d5a", "display_name": "Acme Media"}}
            patched = client.patch(
                f"/platform/v1/tenants/{tenant.id}",
                json=brand,
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert patched.status_code == 200, patched.text
            link = client.get(f"/api/v1/files/{tenant.file_id}/download", headers=owner)
            assert link.status_code == 200, link.text
            report = _rolled_up(client, owner)
            assert report["totals"]["uploads"] == 1 and report["totals"]["downloads"] == 1
            pages = {
                "tenant": client.get("/api/v1/usage/report", headers=owner),
                "operator-tenant": client.get(
                    f"/platform/v1/tenants/{tenant.id}/usage/report",
                    headers={"Authorization": f"Bearer {operator}"},
                ),
                "overview": client.get(
                    "/platform/v1/usage/report", headers={"Authorization": f"Bearer {operator}"}
                ),
            }
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.text)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert_renders_offline(
            response.text, tmp_path / name, primary=None if name == "overview" else PRIMARY
        )


def _rolled_up(client: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """The tenant's report once the server's job has rolled up the upload (within seconds)."""
    deadline = time.monotonic() + 15
    while True:
        report: dict[str, Any] = client.get("/api/v1/usage", headers=owner).json()
        if report["totals"]["downloads"] or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def assert_renders_offline(
    page: str, tmp_path: Path, *, primary: tuple[int, int, int] | None
) -> None:
    """Opens the page in Chromium: nothing fetched or refused, charts drawn (not blank, not one
    colour, in the tenant's colour when given) at desktop and phone widths, and a PDF."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    url = path.as_uri()

    dom = chromium(url, tmp_path, "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert dom.returncode == 0, dom.stderr[-2000:]
    refused = [line for line in dom.stderr.splitlines() if REFUSED.search(line)]
    assert refused == [], refused
    assert dom.stdout.count("<svg") >= 3  # the charts are in the DOM
    assert 'id="series"' in dom.stdout
    assert "<script" not in dom.stdout

    for width in (1280, 375):
        screenshot = tmp_path / f"report-{width}.png"
        shot = chromium(
            url,
            tmp_path,
            f"--screenshot={screenshot}",
            f"--window-size={width},2000",
            "--hide-scrollbars",
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
        data = screenshot.read_bytes()
        assert len(set(png_pixels(data))) > 32  # not blank
        colours = png_top_pixels(data, TOP_ROWS)
        assert len(colours) > 16  # not one colour: text, rules, the masthead
        if primary is not None:
            assert primary in colours  # the masthead and the monogram in the tenant's colour

    pdf = tmp_path / "report.pdf"
    printed = chromium(url, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert printed.returncode == 0, printed.stderr[-2000:]
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF-")
    # The page tree's root counts every page (Chromium compresses the page objects themselves).
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", document))
    assert pages > 1 or len(document) > 20_000, (pages, len(document))
