"""Per-run state shared by the worker processes of one `tenantry serve`, in its runtime
directory: every worker's metrics samples, and the mark that the server is draining.

Kept free of prometheus_client: the server sets the metrics directory before anything imports
it (see tenantry.server).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

# prometheus_client's own variable: where each process writes its samples.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
RUNTIME_DIR_VARIABLE = "TENANTRY_RUNTIME_DIR"


def metrics_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "metrics"


class Drain:
    """Whether the server is draining (SIGTERM arrived): readiness then answers 503.

    A file every worker sees costs one stat per readiness probe and no shared memory."""

    def __init__(self, runtime_dir: Path | None) -> None:
        self._marker = runtime_dir / "draining" if runtime_dir is not None else None

    def start(self) -> None:
        if self._marker is not None:
            self._marker.touch()

    @property
    def draining(self) -> bool:
        return self._marker is not None and self._marker.exists()


def record_server(runtime_dir: Path) -> None:
    """The server's own pid, for its workers to tell whether it still runs."""
    (runtime_dir / "server.pid").write_text(str(os.getpid()))


async def stop_when_orphaned(runtime_dir: Path, interval_seconds: float) -> None:
    """A worker whose server process died (killed, not stopped) stops itself gracefully rather
    than serve on unsupervised: once orphaned, its parent is no longer the server. (Compared
    with the recorded pid, not the parent at start: a worker may start after its server died.)"""
    server = int((runtime_dir / "server.pid").read_text())
    while os.getppid() == server:  # noqa: ASYNC110 - no event tells a process of a new parent
        await asyncio.sleep(interval_seconds)
    os.kill(os.getpid(), signal.SIGTERM)
