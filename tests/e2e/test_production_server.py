"""`tenantry serve` as operators run it: production settings, two granian worker processes.

One run, in order: requests of every kind, their access lines and metrics (summed over both
workers), then SIGTERM with an upload in flight, then the whole log checked to be JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil

from tenantry.config import Settings
from tests.e2e.production_server import (
    DRAIN_SECONDS,
    GRACE_SECONDS,
    WORKERS,
    ProductionServer,
)
from tests.integration.files_support import pdf_of_size
from tests.integration.live import LiveTenant, operator_token, provision

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(f"{name}{{{wanted}}}" if labels else name) + r" ([0-9.e+]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{{{wanted}}} not in the metrics"
    return float(match.group(1))


def _requests_are_logged(server: ProductionServer, alpha: LiveTenant, beta: LiveTenant) -> None:
    """One access line each for a 200, a router 404 and a tenancy 403, with their fields."""
    own = {"Host": alpha.host, "Authorization": f"Bearer {alpha.owner_token}"}
    with httpx.Client(base_url=server.base_url) as http:
        ok = http.get(
            "/api/v1/auth/me", headers={**own, "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        )
        missing = http.get("/no/such/route", headers={"Host": alpha.host})
        foreign = http.get("/api/v1/auth/me", headers={**own, "Host": beta.host})
    assert (ok.status_code, missing.status_code, foreign.status_code) == (200, 404, 403)
    assert foreign.json()["code"] == "tenant_mismatch"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]

    line = server.access_line(ok.headers["x-request-id"])
    assert line["route"] == "/api/v1/auth/me" and line["status"] == 200
    assert line["tenant"] == "alpha" and line["tenant_id"] == alpha.id
    assert line["principal"] == "user" and line["principal_id"] == ok.json()["id"]
    assert line["trace_id"] == TRACE_ID and line["client_address"] == "127.0.0.1"
    assert line["duration_ms"] > 0 and line["level"] == "info"

    line = server.access_line(missing.headers["x-request-id"])
    assert (line["route"], line["status"], line["path"]) == (None, 404, "/no/such/route")

    line = server.access_line(foreign.headers["x-request-id"])
    assert (line["route"], line["status"], line["tenant"]) == ("/api/v1/auth/me", 403, "beta")
    assert line["principal"] is None


def _metrics_sum_both_workers(server: ProductionServer, alpha: LiveTenant) -> None:
    count = 60

    async def probe() -> None:
        # A connection per request, eight at a time: both workers accept some.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:
            gate = asyncio.Semaphore(8)

            async def one() -> None:
                async with gate:
                    assert (await http.get("/health/live")).status_code == 200

            await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(probe())
    refused = httpx.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"email": "owner@alpha.example", "password": "not-the-password"},
        headers={"Host": alpha.host},
    )
    assert refused.status_code == 401
    text = httpx.get(f"{server.base_url}/metrics").text

    pids = {
        entry["pid"]
        for entry in map(json.loads, server.lines())
        if entry.get("event") == "request" and entry.get("route") == "/health/live"
    }
    assert len(pids) == WORKERS, f"the probes reached {len(pids)} worker(s)"
    live = {"method": "GET", "route": "/health/live", "status": "200", "tenant": ""}
    assert _metric(text, "tenantry_http_requests_total", **live) == count
    assert (
        _metric(
            text,
            "tenantry_http_request_duration_seconds_count",
            method="GET",
            route="/health/live",
        )
        == count
    )
    me = {"method": "GET", "route": "/api/v1/auth/me"}
    assert _metric(text, "tenantry_http_requests_total", **me, status="200", tenant="alpha") == 1
    assert _metric(text, "tenantry_http_requests_total", **me, status="403", tenant="other") == 1
    # The router refused it before tenancy ran: no tenant.
    unmatched = {"method": "GET", "route": "unmatched", "status": "404", "tenant": ""}
    assert _metric(text, "tenantry_http_requests_total", **unmatched) == 1
    assert _metric(text, "tenantry_login_failures_total", realm="tenant") == 1
    # provision() uploaded one file per tenant.
    assert _metric(text, "tenantry_upload_bytes_total", outcome="stored") > 0
    assert _metric(text, "tenantry_upload_duration_seconds_count", outcome="stored") == 2
    assert _metric(text, "tenantry_tenant_cache_lookups_total", result="hit") > 0
    limit = _metric(text, "tenantry_db_pool_connections", pool="read", state="limit")
    assert limit == WORKERS * 16
    assert _metric(text, "tenantry_http_requests_in_flight") >= 1  # this scrape


def _sigterm_drains_and_finishes_the_upload(server: ProductionServer, alpha: LiveTenant) -> None:
    size = 2 * 1024 * 1024
    content = pdf_of_size(size)
    boundary = "tenantry-e2e-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nSlow\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    started = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield head
        for offset in range(0, size, 128 * 1024):  # 16 chunks over about 4 seconds
            yield content[offset : offset + 128 * 1024]
            started.set()
            time.sleep(0.25)
        yield tail

    outcome: dict[str, Any] = {}

    def upload() -> None:
        outcome["response"] = httpx.post(
            f"{server.base_url}/api/v1/files",
            content=slow_body(),
            headers={
                "Host": alpha.host,
                "Authorization": f"Bearer {alpha.owner_token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=60,
        )

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert started.wait(10)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    readiness = httpx.get(f"{server.base_url}/health/ready", timeout=5)
    assert readiness.status_code == 503 and readiness.json()["status"] == "draining"

    code = server.process.wait(timeout=GRACE_SECONDS + DRAIN_SECONDS + 10)
    uploader.join(timeout=10)
    assert code == 0, "\n".join(server.lines()[-30:])
    assert time.monotonic() - signalled < DRAIN_SECONDS + GRACE_SECONDS
    response = outcome["response"]
    assert response.status_code == 201, response.text
    assert response.json()["size"] == size and response.json()["status"] == "ready"


def test_serve_logs_measures_and_stops_gracefully(
    server: ProductionServer, settings: Settings
) -> None:
    operator = operator_token(settings, server.base_url)
    alpha = provision(server.base_url, operator, "alpha")
    beta = provision(server.base_url, operator, "beta")

    _requests_are_logged(server, alpha, beta)
    _metrics_sum_both_workers(server, alpha)
    _sigterm_drains_and_finishes_the_upload(server, alpha)

    lines = server.lines()
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not not_json, f"{len(not_json)} lines are not JSON, e.g. {not_json[:3]}"
    events = [json.loads(line)["event"] for line in lines]
    assert "draining" in events and "Granian shutdown completed, see ya!" in events


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_workers_stop_when_their_server_is_killed(server: ProductionServer) -> None:
    """SIGKILL to the main process (the OOM killer, a lost supervisor): its workers must not
    serve on unsupervised, holding their database connections."""
    workers = psutil.Process(server.process.pid).children()
    assert len(workers) == WORKERS
    server.process.kill()
    server.process.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"{len(alive)} worker(s) outlived their server"
