"""Sending the rebuilt spans to an OpenTelemetry collector over OTLP/HTTP (the `otel` extra).

Nothing here imports OpenTelemetry at module level: it is loaded only when an endpoint is configured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentsprint import __version__
from agentsprint.audit.spans import SERVICE_NAME, Span, traces
from agentsprint.config import Settings
from agentsprint.store.audit_log import iter_events
from agentsprint.store.core import Store

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
TIMEOUT_SECONDS = 5.0
log = logging.getLogger(__name__)


class TelemetryError(Exception):
    """Telemetry is configured but cannot be sent (the extra is not installed)."""


def traces_url(settings: Settings, environ: dict[str, str] | None = None) -> str | None:
    """Where traces go: `[telemetry] otlp_endpoint`, else the standard variables; None when not configured."""
    env = os.environ if environ is None else environ
    base = settings.telemetry.otlp_endpoint or env.get(ENV_ENDPOINT)
    if base:
        return base.rstrip("/") + "/v1/traces"
    return env.get(ENV_TRACES_ENDPOINT) or None


def sdk_spans(spans: Sequence[Span]) -> list[ReadableSpan]:
    """The spans as the SDK's finished spans, ready for any span exporter."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": __version__})
    scope = InstrumentationScope("agentsprint.audit", __version__)

    def context(trace_id: str, span_id: str) -> SpanContext:
        return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1))

    return [ReadableSpan(s.name, context(s.trace_id, s.span_id),
                         context(s.trace_id, s.parent_id) if s.parent_id else None,
                         resource=resource, attributes=s.attributes, events=_events(s),
                         status=Status(StatusCode.ERROR, s.error) if s.error else Status(StatusCode.UNSET),
                         start_time=_ns(s.start), end_time=_ns(s.end), instrumentation_scope=scope)
            for s in spans]


def _ns(at: float) -> int:
    return round(at * 1_000_000_000)


def _events(span: Span) -> list[Any]:
    from opentelemetry.sdk.trace import Event

    return [Event(name, attrs, _ns(at)) for name, at, attrs in span.events]


def otlp_exporter(url: str) -> SpanExporter:
    """The OTLP/HTTP span exporter for `url`; TelemetryError naming the extra when it is not installed."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TelemetryError("telemetry is configured but OpenTelemetry is not installed: "
                             "pip install 'agentsprint[otel]'") from exc
    return OTLPSpanExporter(endpoint=url, timeout=TIMEOUT_SECONDS)


def item_run_spans(store: Store, item_id: str, run_id: str, content: bool) -> list[Span]:
    """The rebuilt spans of one item's run."""
    events = [e for e in iter_events(store, item_id=item_id) if e.run_id == run_id]
    return traces(events, content=content)


def send(spans: Sequence[Span], exporter: SpanExporter) -> bool:
    """Hand the spans to `exporter`; whether it reported success."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    return bool(exporter.export(sdk_spans(spans)) == SpanExportResult.SUCCESS)


def export_item_run(settings: Settings, store: Store, item_id: str, run_id: str | None) -> None:
    """Send the trace of an item run that reached an end state, when telemetry is configured; never raises."""
    url = traces_url(settings)
    if url is None or not run_id:
        return
    try:
        spans = item_run_spans(store, item_id, run_id, settings.telemetry.content)
        exporter = otlp_exporter(url) if spans else None
        if exporter is not None and not send(spans, exporter):
            log.warning("trace of %s not accepted by %s", item_id, url)
        if exporter is not None:
            exporter.shutdown()
    except Exception:  # telemetry must never fail the item
        log.warning("trace of %s not sent", item_id, exc_info=True)
