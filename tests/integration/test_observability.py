"""Metrics, request ids, traces and body limits through the real app (one process; the e2e
test `tests/e2e/test_production_server.py` covers several workers and the logs)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import anyio
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api
from tests.integration.live import serve

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def _sample(text: str, series: str) -> float:
    match = re.search(re.escape(series) + r" ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    tenant = await api.provision("metered")
    headers = await api.token(tenant)
    series = (
        'tenantry_http_requests_total{method="GET",route="/api/v1/files/{file_id}",'
        'status="404",tenant="other"}'
    )
    before = _sample((await api.client.get("/metrics")).text, series)
    for _ in range(3):
        missing = await api.client.get(
            "/api/v1/files/00000000-0000-0000-0000-000000000000",
            headers={"Host": tenant.host, **headers},
        )
        assert missing.status_code == 404
    scraped = await api.client.get("/metrics")
    assert scraped.headers["content-type"].startswith("text/plain")
    assert _sample(scraped.text, series) == before + 3


async def test_router_refusals_carry_a_request_id_and_a_metric(api: Api) -> None:
    response = await api.client.get("/nowhere", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "probe-1"
    assert response.json()["request_id"] == "probe-1"
    refused = await api.client.delete("/health/live")
    assert refused.status_code == 405 and refused.headers["x-request-id"]
    text = (await api.client.get("/metrics")).text
    assert 'route="unmatched",status="405"' in text


async def test_metrics_token_when_configured(settings: Settings, clean_database: None) -> None:
    app = create_app(msgspec.structs.replace(settings, metrics_token="scrape-" + "s" * 32))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "s" * 32})
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_token")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_token")
    assert right.status_code == 200 and "tenantry_http_requests_total" in right.text


async def test_json_bodies_are_bounded(api: Api) -> None:
    big = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    response = await api.client.post(
        "/platform/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


class _Collector(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A real OTLP/HTTP endpoint: it decodes what the exporter posts."""
    received: list[ExportTraceServiceRequest] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_spans_continue_the_callers_trace_over_otlp(
    settings: Settings,
    clean_database: None,
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    endpoint, received = collector
    app = create_app(msgspec.structs.replace(settings, otlp_endpoint=endpoint))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        response = await client.get(
            "/health/live", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        )
        assert response.status_code == 200
    # The app's shutdown flushed its spans to the collector.
    spans = [
        span
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for span in spans] == ["GET /health/live"]
    (span,) = spans
    assert span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == PARENT_ID
    attributes = {item.key: item.value.string_value for item in span.attributes}
    assert attributes["http.route"] == "/health/live"
    service = {
        item.key: item.value.string_value
        for item in received[0].resource_spans[0].resource.attributes
    }
    assert service["service.name"] == "tenantry"


async def test_a_client_that_hangs_up_mid_body_is_counted_as_499_not_500(
    settings: Settings, clean_database: None
) -> None:
    app = create_app(settings)
    series = (
        'tenantry_http_requests_total{method="POST",route="/platform/v1/auth/login",'
        'status="{status}",tenant=""}'
    )

    def hang_up_and_scrape(base_url: str) -> str:
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /platform/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"email": '
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = httpx.get(f"{base_url}/metrics").text
            if series.replace("{status}", "499") in text:
                return text
            time.sleep(0.05)
        return text

    def run() -> str:
        with serve(app) as base_url:
            return hang_up_and_scrape(base_url)

    text = await anyio.to_thread.run_sync(run)
    assert _sample(text, series.replace("{status}", "499")) >= 1
    assert series.replace("{status}", "500") not in text
