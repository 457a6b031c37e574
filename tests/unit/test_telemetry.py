"""Trace spans rebuilt from the event log, checked through the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentsprint.audit import otlp_json
from agentsprint.audit.otel import sdk_spans, send, traces_url
from agentsprint.audit.spans import traces
from agentsprint.config import Settings
from agentsprint.store.audit_log import AuditEvent

TOKEN = "ghp_" + "a1B2c3D4e5" * 4
RUN = "run-20260101-000000-abcdef"


class Log:
    """Builds a run's events in sequence order, one second apart."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def add(self, kind: str, actor: str = "runner", **data: Any) -> None:
        seq = len(self.events) + 1
        self.events.append(AuditEvent(seq, 1_700_000_000.0 + seq, kind, "AS-1", RUN, actor,
                                      json.dumps(data), f"{seq - 1:064x}", f"{seq:064x}"))

    def call(self, role: str, round_no: int, tool: str, tokens: tuple[int, int], usd: float) -> None:
        self.add("model.call", f"agent:{role}", role=role, round=round_no, model=f"openai/t-{role}", outcome="ok",
                 input_tokens=tokens[0], output_tokens=tokens[1], cached_input_tokens=0, usd=usd,
                 latency_ms=250.0, finish_reason="tool_calls", retries=0)
        self.add("handoff", f"agent:{role}", role=role, round=round_no, tool=tool, valid=True)


def run_log() -> list[AuditEvent]:
    """Two rounds: plan, code with one tool call, gates, QA rejects; then code and QA approves."""
    log = Log()
    log.add("item.status", **{"from": "planned", "to": "running"})
    for round_no, verdict in ((1, "reject"), (2, "approve")):
        log.call("supervisor", round_no, "submit_plan", (500, 50), 0.002)
        log.call("coder", round_no, "run", (1200, 20), 0.0005)
        log.add("tool.call", "agent:coder", role="coder", round=round_no, tool="run", ok=True,
                args={"command": f"echo {TOKEN}"}, output=f"printed {TOKEN}", policy_block=None)
        log.call("coder", round_no, "finish", (1300, 30), 0.0006)
        log.call("qa", round_no, "submit_verdict", (1000, 25), 0.00045)
        log.add("round", round=round_no, verdict=verdict,
                gates=[{"name": "tests", "kind": "command", "passed": True, "seconds": 0.4},
                       {"name": "secrets", "kind": "secrets", "passed": round_no == 2, "seconds": 0.1}])
    log.add("item.status", **{"from": "running", "to": "done"})
    return log.events


def exported(content: bool = False) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    assert send(traces(run_log(), content=True) if content else traces(run_log()), exporter)
    return list(exporter.get_finished_spans())


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None and span.end_time is not None
    return span.start_time, span.end_time


def usage(spans: list[ReadableSpan], key: str) -> float:
    return sum(float(str((s.attributes or {}).get(key, 0))) for s in spans)


def parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    return by_id(spans)[span.parent.span_id].name if span.parent else None


def test_one_trace_per_item_run_with_rounds_turns_calls_and_gates() -> None:
    spans = exported()
    assert len({s.context.trace_id for s in spans}) == 1
    roots = [s for s in spans if s.parent is None]
    assert [r.name for r in roots] == ["item AS-1"]
    tree = sorted({(parent_name(s, spans), s.name) for s in spans if s.parent}, key=str)
    assert tree == sorted({("item AS-1", "round 1"), ("item AS-1", "round 2"),
                           ("round 1", "invoke_agent supervisor"), ("round 1", "invoke_agent coder"),
                           ("round 1", "invoke_agent qa"), ("round 1", "gate tests"), ("round 1", "gate secrets"),
                           ("round 2", "invoke_agent supervisor"), ("round 2", "invoke_agent coder"),
                           ("round 2", "invoke_agent qa"), ("round 2", "gate tests"), ("round 2", "gate secrets"),
                           ("invoke_agent supervisor", "chat openai/t-supervisor"),
                           ("invoke_agent coder", "chat openai/t-coder"), ("invoke_agent coder", "execute_tool run"),
                           ("invoke_agent qa", "chat openai/t-qa")}, key=str)
    assert len([s for s in spans if s.name.startswith("chat ")]) == 8


def test_children_lie_within_their_parents() -> None:
    spans = exported()
    for span in spans:
        if span.parent:
            parent = by_id(spans)[span.parent.span_id]
            assert times(parent)[0] <= times(span)[0] <= times(span)[1] <= times(parent)[1], span.name


def test_model_call_spans_carry_the_genai_names_and_the_cost() -> None:
    chat = next(s for s in exported() if s.name == "chat openai/t-coder")
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "openai/t-coder"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (1200, 20)
    assert attrs["agentsprint.cost.usd"] == pytest.approx(0.0005)
    assert abs(times(chat)[1] - times(chat)[0] - 250_000_000) < 1_000, "the call's measured latency"
    tool = next(s for s in exported() if s.name == "execute_tool run")
    assert dict(tool.attributes or {})["gen_ai.operation.name"] == "execute_tool"
    assert dict(tool.attributes or {})["gen_ai.tool.name"] == "run"


def test_usage_is_only_on_model_call_spans_and_totals_the_events() -> None:
    spans = exported()
    usage_keys = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "agentsprint.cost.usd")
    carrying = {s.name for s in spans if any(k in (s.attributes or {}) for k in usage_keys)}
    assert carrying == {"chat openai/t-supervisor", "chat openai/t-coder", "chat openai/t-qa"}
    assert usage(spans, "gen_ai.usage.input_tokens") == 2 * (500 + 1200 + 1300 + 1000)
    assert usage(spans, "gen_ai.usage.output_tokens") == 2 * (50 + 20 + 30 + 25)
    assert usage(spans, "agentsprint.cost.usd") == pytest.approx(2 * (0.002 + 0.0005 + 0.0006 + 0.00045))


def test_failures_are_error_status_and_state_changes_are_span_events() -> None:
    spans = exported()
    failed = [s.name for s in spans if s.status.status_code.name == "ERROR"]
    assert failed == ["gate secrets"]
    root = next(s for s in spans if s.parent is None)
    assert [dict(e.attributes or {})["to"] for e in root.events] == ["running", "done"]
    assert dict(root.attributes or {})["agentsprint.item.status"] == "done"


def test_no_content_unless_enabled_and_then_redacted() -> None:
    def values(spans: list[ReadableSpan]) -> str:
        return json.dumps([dict(s.attributes or {}) for s in spans])

    off = values(exported())
    assert "gen_ai.tool.call" not in off and "echo" not in off and "printed" not in off
    on = values(exported(content=True))
    assert "gen_ai.tool.call.arguments" in on and "gen_ai.tool.call.result" in on and "printed" in on
    assert TOKEN not in on, "content is redacted"


def test_the_same_events_give_the_same_ids_so_a_second_export_duplicates_nothing_new() -> None:
    first = [(s.context.trace_id, s.context.span_id) for s in exported()]
    assert first == [(s.context.trace_id, s.context.span_id) for s in exported()]
    assert len(set(first)) == len(first)


def test_otlp_json_holds_the_same_spans_as_the_sdks_own_encoding(tmp_path: Path) -> None:
    spans = traces(run_log())
    out = tmp_path / "trace.json"
    assert otlp_json.write(spans, out) == len(spans)
    written = json.loads(out.read_text(encoding="utf-8"))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    proto = encode_spans(sdk_spans(spans)).resource_spans[0].scope_spans[0].spans

    def key_values(attrs: list[dict[str, Any]]) -> dict[str, str]:
        return {a["key"]: json.dumps(next(iter(a["value"].values()))) for a in attrs}

    def proto_values(attrs: Any) -> dict[str, str]:
        from google.protobuf.json_format import MessageToDict

        return {a.key: json.dumps(next(iter(MessageToDict(a.value).values()))) for a in attrs}

    assert [(w["name"], w["spanId"], w["traceId"], w.get("parentSpanId", ""), w["startTimeUnixNano"],
             w["endTimeUnixNano"], key_values(w["attributes"])) for w in written] == \
           [(p.name, p.span_id.hex(), p.trace_id.hex(), p.parent_span_id.hex(), str(p.start_time_unix_nano),
             str(p.end_time_unix_nano), proto_values(p.attributes)) for p in proto]


def test_the_endpoint_comes_from_the_settings_then_the_standard_variables() -> None:
    configured = Settings.model_validate({"telemetry": {"otlp_endpoint": "http://127.0.0.1:4318/"}})
    plain = Settings()
    assert traces_url(configured, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1"}) == "http://127.0.0.1:4318/v1/traces"
    assert traces_url(plain, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1"}) == "http://x:1/v1/traces"
    assert traces_url(plain, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://y:2/t"}) == "http://y:2/t"
    assert traces_url(plain, {}) is None


def test_a_misspelt_telemetry_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="otlp_endpiont"):
        Settings.model_validate({"telemetry": {"otlp_endpiont": "http://127.0.0.1:4318"}})
