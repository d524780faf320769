"""Per-run state shared by the worker processes of one `tenantry serve`, in its runtime
directory: every worker's metrics samples, and the mark that the server is draining.

Kept free of prometheus_client: the server sets the metrics directory before anything imports
it (see tenantry.server).
"""

from __future__ import annotations

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
