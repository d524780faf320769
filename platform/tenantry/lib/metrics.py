"""Prometheus metrics, correct across granian's worker processes.

`tenantry serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before any worker starts
(workers are forked, and prometheus_client picks its value store at import), so every worker
writes its samples to its own files there and `/metrics`, answered by any one worker, sums them
all. Without it (dev, tests) the metrics live in this process.

Labels stay bounded: routes are templates (`/api/v1/files/{file_id}`, or "unmatched" for
what the router refused), statuses are the few the app answers, and the tenant label names
only the slugs in `TENANTRY_METRICS_TENANTS` ("other" for every other tenant, "" for none):
a hundred thousand tenants must not make a hundred thousand series. Per-tenant figures come
from the usage reports instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from tenantry.lib.runtime import METRICS_DIR_VARIABLE

# Litestar appends the charset of a text/ type itself.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")
UNMATCHED_ROUTE = "unmatched"
OTHER_TENANT = "other"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_UPLOAD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

http_requests = Counter(
    "tenantry_http_requests",
    "HTTP requests answered, by route template, method, status and (bounded) tenant.",
    ["method", "route", "status", "tenant"],
)
http_request_seconds = Histogram(
    "tenantry_http_request_duration_seconds",
    "Time from the request's arrival to its last response byte.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
http_in_flight = Gauge(
    "tenantry_http_requests_in_flight",
    "Requests being answered now.",
    multiprocess_mode="livesum",
)
db_pool_connections = Gauge(
    "tenantry_db_pool_connections",
    "Database connections per pool: in use, idle, and the pool's limit.",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
upload_bytes = Counter(
    "tenantry_upload_bytes",
    "Bytes received by uploads, stored or refused.",
    ["outcome"],
)
upload_seconds = Histogram(
    "tenantry_upload_duration_seconds",
    "Time an upload took from its first byte to the file's commit (or its failure).",
    ["outcome"],
    buckets=_UPLOAD_BUCKETS,
)
store_errors = Counter(
    "tenantry_store_errors",
    "Object store failures (each one a 503 storage_unavailable or a retried background call).",
)
login_failures = Counter(
    "tenantry_login_failures",
    "Logins refused for a wrong email or password.",
    ["realm"],
)
tenant_cache_lookups = Counter(
    "tenantry_tenant_cache_lookups",
    "Tenant lookups by host, slug or id: answered from memory (hit) or from Postgres (miss).",
    ["result"],
)
tenant_cache_hits = tenant_cache_lookups.labels("hit")
tenant_cache_misses = tenant_cache_lookups.labels("miss")


class PoolUse(NamedTuple):
    in_use: int
    idle: int
    limit: int


async def sample_pools(pools: Mapping[str, Callable[[], PoolUse]], interval: float) -> None:
    """Every `interval` seconds, each pool's use as this process's gauges (summed over the
    workers at scrape time: a gauge read at scrape would only see the scraped worker)."""
    while True:
        for name, use in pools.items():
            for state, count in use()._asdict().items():
                db_pool_connections.labels(name, state).set(count)
        await asyncio.sleep(interval)


def render() -> bytes:
    """The exposition text: every worker's samples summed when several share the directory."""
    if METRICS_DIR_VARIABLE in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def forget_this_process() -> None:
    """A stopping worker's live gauges stop counting (its counters stay summed)."""
    if METRICS_DIR_VARIABLE in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@contextmanager
def observed_upload(received: Callable[[], int]) -> Iterator[Callable[[], None]]:
    """Times an upload and counts its bytes (`received()` at the end); call the yielded
    function once the file is stored, or it counts as failed."""
    started = time.perf_counter()
    stored = False

    def succeeded() -> None:
        nonlocal stored
        stored = True

    try:
        yield succeeded
    finally:
        outcome = "stored" if stored else "failed"
        upload_seconds.labels(outcome).observe(time.perf_counter() - started)
        upload_bytes.labels(outcome).inc(received())
