"""The browsable docs render in a real headless Chromium, with no network beyond the app:
Swagger UI's assets come from the app itself."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from tests.integration.live import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (CI installs it and runs this test)",
)


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "chromium must be installed in CI (.ci/run installs it)"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_pixels(data: bytes) -> bytes:
    """The decompressed scanlines of a PNG (filter bytes included): enough to tell blank."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    return zlib.decompress(bytes(idat))


def test_docs_render_operations_offline(app: Litestar, tmp_path: Path) -> None:
    with serve(app) as base_url:
        page = httpx.get(f"{base_url}/schema")
        assert page.status_code == 200
        assert "https://" not in page.text  # nothing loads from a CDN
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
            assert httpx.get(f"{base_url}/schema/assets/{asset}").status_code == 200

        dom = chromium(f"{base_url}/schema", tmp_path, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert dom.stdout.count("opblock") > 20, dom.stdout[-2000:]
        assert "/api/v1/files" in dom.stdout
        assert "/platform/v1/tenants" in dom.stdout

        screenshot = tmp_path / "docs.png"
        shot = chromium(
            f"{base_url}/schema",
            tmp_path,
            f"--screenshot={screenshot}",
            "--window-size=1280,2000",
            "--hide-scrollbars",
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists()
    pixels = png_pixels(screenshot.read_bytes())
    assert len(set(pixels)) > 32  # a blank page has one colour (and the filter bytes)
