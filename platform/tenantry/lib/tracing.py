"""OpenTelemetry tracing, exported by OTLP/HTTP, through Litestar's OpenTelemetry middleware.

Built only when `TENANTRY_OTLP_ENDPOINT` is set: without it nothing of OpenTelemetry is even
imported, and requests pay nothing. The middleware continues an incoming W3C `traceparent`
(the server span becomes its child) and starts a trace otherwise.
"""

from __future__ import annotations

from litestar.types import ASGIApp

# One span per request: the ASGI instrumentation's spans for every body chunk received or sent
# would make an upload of a gigabyte thousands of spans.
_EXCLUDED_SPANS = ["receive", "send"]


class Tracing:
    def __init__(self, endpoint: str, *, service_name: str, version: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service_name, "service.version": version})
        )
        # The endpoint is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is.
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        self._provider.add_span_processor(BatchSpanProcessor(exporter))

    def wrap(self, app: ASGIApp) -> ASGIApp:
        from litestar.plugins.opentelemetry import (
            OpenTelemetryConfig,
            OpenTelemetryInstrumentationMiddleware,
        )

        config = OpenTelemetryConfig(
            tracer_provider=self._provider,
            exclude_spans=_EXCLUDED_SPANS,  # type: ignore[arg-type]
        )
        return OpenTelemetryInstrumentationMiddleware(app, config)

    def log_context(self, traceparent: str | None) -> dict[str, str]:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return {}
        return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}

    def name_span(self, method: str, route: str) -> None:
        from opentelemetry import trace

        span = trace.get_current_span()
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)

    def shutdown(self) -> None:
        """Exports what is still buffered."""
        self._provider.shutdown()
