"""The spans as OTLP JSON (an ExportTraceServiceRequest), for runs that have no collector to send to."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agentsprint import __version__
from agentsprint.audit.spans import SERVICE_NAME, Span

ERROR = 2  # STATUS_CODE_ERROR
INTERNAL = 1  # SPAN_KIND_INTERNAL


def any_value(value: Any) -> dict[str, Any]:
    """An attribute value in OTLP JSON's tagged form (64-bit integers as strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def attributes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """OTLP key/value attributes."""
    return [{"key": key, "value": any_value(value)} for key, value in attrs.items()]


def nanos(at: float) -> str:
    """Seconds since the epoch as OTLP's unix nanoseconds, a string."""
    return str(round(at * 1_000_000_000))


def span_json(span: Span) -> dict[str, Any]:
    """One span in OTLP JSON."""
    out: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id, "name": span.name, "kind": INTERNAL,
                           "startTimeUnixNano": nanos(span.start), "endTimeUnixNano": nanos(span.end),
                           "attributes": attributes(span.attributes),
                           "events": [{"name": n, "timeUnixNano": nanos(t), "attributes": attributes(a)}
                                      for n, t, a in span.events],
                           "status": {"code": ERROR, "message": span.error} if span.error else {}}
    if span.parent_id:
        out["parentSpanId"] = span.parent_id
    return out


def request(spans: list[Span]) -> dict[str, Any]:
    """The whole export request: one resource (agentsprint), one scope, every span."""
    resource = {"attributes": attributes({"service.name": SERVICE_NAME, "service.version": __version__})}
    scope = {"name": "agentsprint.audit", "version": __version__}
    return {"resourceSpans": [{"resource": resource,
                               "scopeSpans": [{"scope": scope, "spans": [span_json(s) for s in spans]}]}]}


def write(spans: list[Span], path: Path) -> int:
    """Write the request to `path` (all or nothing: a temporary file renamed into place); how many spans."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(request(spans), out, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(spans)
