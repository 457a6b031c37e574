"""`audit show ID`: one item's history as readable lines, each saying who or what did it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentsprint.audit.export import iso
from agentsprint.money import usd_text
from agentsprint.store.audit_log import AuditEvent


def _status(data: dict[str, Any]) -> str:
    why = f" ({data['reason']})" if data.get("reason") else ""
    return f"{data.get('from')} -> {data.get('to')}{why}"


def _model_call(data: dict[str, Any]) -> str:
    tokens = f"{data.get('input_tokens', 0)} in / {data.get('output_tokens', 0)} out"
    usd = usd_text(float(data.get("usd") or 0.0))
    return f"{data.get('role')} {data.get('model')}: {data.get('outcome')}, {tokens}, {usd}"


def _tool_call(data: dict[str, Any]) -> str:
    blocked = f", blocked: {data['policy_block']}" if data.get("policy_block") else ""
    return f"{data.get('role')} {data.get('tool')} {json.dumps(data.get('args'), ensure_ascii=False)}" \
           f" -> {'ok' if data.get('ok') else 'failed'}{blocked}"


def _round(data: dict[str, Any]) -> str:
    gates = ", ".join(f"{g.get('name')} {'passed' if g.get('passed') else 'FAILED'}" for g in data.get("gates") or [])
    return f"round {data.get('round')}: gates [{gates}], verdict {data.get('verdict')}"


def _review(data: dict[str, Any]) -> str:
    comment = f": {data['comment']}" if data.get("comment") else ""
    return f"{data.get('decision')}{comment}"


def _budget(data: dict[str, Any]) -> str:
    return f"+{data.get('tokens', 0)} tokens, +{usd_text(float(data.get('usd') or 0.0))} on {data.get('scope')}"


def _resolved(data: dict[str, Any]) -> str:
    return str(data.get("resolution"))


def _handoff(data: dict[str, Any]) -> str:
    valid = "valid" if data.get("valid") else f"MALFORMED: {data.get('error')}"
    return f"{data.get('role')} called {data.get('tool')} ({valid})"


def _refused(data: dict[str, Any]) -> str:
    return f"{data.get('action')} refused: {data.get('reason')}"


DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "item.status": _status, "model.call": _model_call, "tool.call": _tool_call, "round": _round,
    "review": _review, "budget.added": _budget, "escalation.resolved": _resolved, "decision.refused": _refused,
    "handoff": _handoff,
}


def describe(event: AuditEvent) -> str:
    """What the event says, in a few words (the raw data for kinds without a description)."""
    data = json.loads(event.data_json)
    shown = DESCRIBE.get(event.kind)
    return shown(data) if shown else json.dumps(data, ensure_ascii=False, sort_keys=True)[:200]


def line(event: AuditEvent) -> str:
    """One timeline line: time, sequence number, kind, actor, description."""
    return f"{iso(event.at)}  #{event.seq:<6} {event.kind:<20} {event.actor:<22} {describe(event)}"
