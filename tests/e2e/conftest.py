"""`server`: a `tenantry serve` of its own for the test, on the session's database, emptied after."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.config import Settings
from tests.conftest import empty_database
from tests.e2e.production_server import ProductionServer


@pytest.fixture
def server(settings: Settings, tmp_path: Path, project_root: Path) -> Iterator[ProductionServer]:
    running = ProductionServer(settings, tmp_path, project_root)
    try:
        yield running
    finally:
        running.close()
        asyncio.run(empty_database(settings))
