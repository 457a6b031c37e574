"""Trace spans rebuilt from the event log: one trace per item run, no OpenTelemetry library needed.

The tree: item run > round > agent turn > model call / tool call, and round > gate. Only model-call
spans carry usage and cost (GenAI semantic conventions plus `agentsprint.cost.usd`); ids are derived
from the run, the item and the event hashes, so exporting the same run twice gives the same spans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentsprint.redaction import redact_value
from agentsprint.store.audit_log import AuditEvent

SERVICE_NAME = "agentsprint"
TURN_KINDS = {"model.call", "handoff", "tool.call"}
Attributes = dict[str, Any]


@dataclass
class Span:
    """One span: ids as hex, times in seconds since the epoch, attributes and timestamped events."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start: float
    end: float
    attributes: Attributes
    events: list[tuple[str, float, Attributes]] = field(default_factory=list)
    error: str | None = None


def _id(width: int, *parts: object) -> str:
    """A stable hex id of `width` characters from `parts` (never all zeros)."""
    digest = hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:width]
    return digest if digest.strip("0") else "1" * width


def _data(event: AuditEvent) -> dict[str, Any]:
    return dict(json.loads(event.data_json))


def _model_span(event: AuditEvent, trace: str, parent: str) -> Span:
    """A `chat` span: the model, the provider's usage and the call's cost."""
    d = _data(event)
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": d.get("model"),
             "gen_ai.provider.name": str(d.get("model") or "").partition("/")[0] or None,
             "gen_ai.agent.name": d.get("role"),
             "gen_ai.usage.input_tokens": int(d.get("input_tokens") or 0),
             "gen_ai.usage.output_tokens": int(d.get("output_tokens") or 0),
             "gen_ai.usage.cache_read.input_tokens": int(d.get("cached_input_tokens") or 0),
             "agentsprint.cost.usd": float(d.get("usd") or 0.0), "agentsprint.call.outcome": d.get("outcome"),
             "agentsprint.call.retries": int(d.get("retries") or 0)}
    if d.get("finish_reason"):
        attrs["gen_ai.response.finish_reasons"] = [str(d["finish_reason"])]
    start = event.at - float(d.get("latency_ms") or 0.0) / 1000
    error = None if d.get("outcome") == "ok" else str(d.get("outcome"))
    return Span(trace, _id(16, event.hash), parent, f"chat {d.get('model')}", start, event.at,
                _clean(attrs), error=error)


def _tool_span(event: AuditEvent, trace: str, parent: str, start: float, content: bool) -> Span:
    """An `execute_tool` span (arguments and output only when content is on, redacted)."""
    d = _data(event)
    attrs: Attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": d.get("tool"),
                         "gen_ai.agent.name": d.get("role")}
    if d.get("policy_block"):
        attrs["agentsprint.policy.block"] = str(d["policy_block"])
    if content:
        attrs["gen_ai.tool.call.arguments"] = json.dumps(redact_value(d.get("args")), ensure_ascii=False)
        attrs["gen_ai.tool.call.result"] = str(redact_value(str(d.get("output") or "")))
    error = None if d.get("ok") else str(d.get("policy_block") or "tool call failed")
    return Span(trace, _id(16, event.hash), parent, f"execute_tool {d.get('tool')}", start, event.at,
                _clean(attrs), error=error)


def _clean(attrs: Attributes) -> Attributes:
    """The attributes without missing values (OpenTelemetry has no null)."""
    return {key: value for key, value in attrs.items() if value is not None}


def _round_of(event: AuditEvent) -> int:
    return int(_data(event).get("round") or 0) if event.kind in TURN_KINDS | {"round"} else 0


def _turns(events: list[AuditEvent]) -> list[list[AuditEvent]]:
    """The round's model/tool events split into agent turns: consecutive events of one role."""
    turns: list[list[AuditEvent]] = []
    for event in events:
        if not turns or _data(turns[-1][0]).get("role") != _data(event).get("role"):
            turns.append([])
        turns[-1].append(event)
    return turns


def _turn_spans(turn: list[AuditEvent], trace: str, parent: str, since: float, content: bool) -> list[Span]:
    """An `invoke_agent` span for one turn and its model- and tool-call children."""
    role = _data(turn[0]).get("role")
    turn_id = _id(16, "turn", turn[0].hash)
    children: list[Span] = []
    previous = since
    for event in turn:
        if event.kind == "model.call":
            children.append(_model_span(event, trace, turn_id))
        elif event.kind == "tool.call":
            children.append(_tool_span(event, trace, turn_id, previous, content))
        previous = event.at
    start = min((c.start for c in children), default=since)
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": role}
    turn_span = Span(trace, turn_id, parent, f"invoke_agent {role}", start, turn[-1].at, _clean(attrs))
    return [turn_span, *children]


def _gate_spans(record: AuditEvent, trace: str, parent: str, start: float) -> list[Span]:
    """One span per gate of the round, laid end to end from `start` by each gate's measured seconds."""
    spans = []
    for gate in _data(record).get("gates") or []:
        end = start + float(gate.get("seconds") or 0.0)
        attrs = {"agentsprint.gate.name": gate.get("name"), "agentsprint.gate.kind": gate.get("kind"),
                 "agentsprint.gate.passed": bool(gate.get("passed"))}
        spans.append(Span(trace, _id(16, "gate", record.hash, gate.get("name")), parent,
                          f"gate {gate.get('name')}", start, end, _clean(attrs),
                          error=None if gate.get("passed") else "gate failed"))
        start = end
    return spans


def _round_spans(number: int, events: list[AuditEvent], trace: str, parent: str, content: bool) -> list[Span]:
    """The span of round `number` (ended by its `round` event when it has one) and everything under it."""
    round_id = _id(16, "round", trace, number)
    record = next((e for e in events if e.kind == "round"), None)
    calls = [e for e in events if e.kind in TURN_KINDS]
    spans: list[Span] = []
    since = events[0].at
    for turn in _turns(calls):
        spans += _turn_spans(turn, trace, round_id, since, content)
        since = turn[-1].at
    if record is not None:
        coder_end = max((e.at for e in calls if _data(e).get("role") == "coder"), default=since)
        spans += _gate_spans(record, trace, round_id, coder_end)
    attrs: Attributes = {"agentsprint.round": number}
    if record is not None:
        attrs["agentsprint.round.verdict"] = str(_data(record).get("verdict"))
    start = min([events[0].at, *(s.start for s in spans)])
    end = max([events[-1].at, *(s.end for s in spans)])
    return [Span(trace, round_id, parent, f"round {number}", start, end, attrs), *spans]


def _status_events(events: list[AuditEvent]) -> list[tuple[str, float, Attributes]]:
    """The item's state changes, as span events on the item-run span."""
    found = []
    for event in events:
        if event.kind == "item.status":
            d = _data(event)
            found.append(("item.status", event.at, _clean({"from": d.get("from"), "to": d.get("to"),
                                                           "reason": d.get("reason"), "actor": event.actor})))
    return found


def item_run_spans(item_id: str, run_id: str, events: list[AuditEvent], *, content: bool = False) -> list[Span]:
    """The spans of one item's run from its events in sequence order: the item-run span first."""
    trace = _id(32, "trace", run_id, item_id)
    root = _id(16, "item", run_id, item_id)
    by_round: dict[int, list[AuditEvent]] = {}
    for event in events:
        number = _round_of(event)
        if number:
            by_round.setdefault(number, []).append(event)
    spans = [s for n, evs in sorted(by_round.items()) for s in _round_spans(n, evs, trace, root, content)]
    statuses = _status_events(events)
    final = statuses[-1][2].get("to") if statuses else None
    attrs = _clean({"agentsprint.item.id": item_id, "agentsprint.run.id": run_id, "agentsprint.item.status": final,
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agentsprint"})
    start = min([events[0].at, *(s.start for s in spans)])
    end = max([events[-1].at, *(s.end for s in spans)])
    item_span = Span(trace, root, None, f"item {item_id}", start, end, attrs, statuses,
                     error="item failed" if final in {"failed", "escalated"} else None)
    return [item_span, *spans]


def traces(events: Iterable[AuditEvent], *, content: bool = False) -> list[Span]:
    """All spans of every item run among `events` (events without an item or a run are left out)."""
    runs: dict[tuple[str, str], list[AuditEvent]] = {}
    for event in events:
        if event.item_id and event.run_id:
            runs.setdefault((event.item_id, event.run_id), []).append(event)
    return [s for (item, run), evs in runs.items() for s in item_run_spans(item, run, evs, content=content)]
