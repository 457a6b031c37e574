"""What agents record: handoffs (valid or malformed) and tool calls, each with its audit event.

Arguments and outputs are redacted and shortened before they are stored: the event log keeps what
happened, not whole files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import col, select

from agentsprint.redaction import redact
from agentsprint.store import Store
from agentsprint.store.events import append_event
from agentsprint.store.tables import HandoffRow

STORED_TEXT = 500
"""Characters of each tool argument and of a tool's output kept in an event."""


class AgentContext(Protocol):
    """The fields of a call context the store needs (agentsprint.llm.gateway.CallContext has them)."""

    role: str
    item_id: str | None
    run_id: str | None
    round: int


class ToolOutcome(Protocol):
    """The fields of a tool's result the store records (agentsprint.agents.tools.ToolResult has them)."""

    @property
    def output(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def policy_block(self) -> str | None: ...


@dataclass(frozen=True)
class Handoff:
    item_id: str | None
    run_id: str | None
    round: int
    role: str
    model: str
    call_id: int | None
    tool: str | None
    valid: bool
    error: str | None
    at: float


def _short(text: str, limit: int = STORED_TEXT) -> str:
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + f"[... {len(text) - limit} more characters]"


def _stored_args(args: dict[str, Any]) -> dict[str, Any]:
    return {key: _short(value) if isinstance(value, str) else value for key, value in args.items()}


def record_handoff(store: Store, ctx: AgentContext, model: str, call_id: int | None, tool: str | None,
                   valid: bool, error: str | None) -> None:
    """One reply where the agent had to call an offered tool; malformed ones carry their error."""
    stored_error = _short(error, 2000) if error is not None else None
    with store.session() as session:
        session.add(HandoffRow(item_id=ctx.item_id, run_id=ctx.run_id, round=ctx.round, role=ctx.role,
                               model=model, call_id=call_id, tool=tool, valid=valid, error=stored_error,
                               at=time.time()))
        append_event(session, "handoff", item_id=ctx.item_id, run_id=ctx.run_id, actor=f"agent:{ctx.role}",
                     data={"round": ctx.round, "role": ctx.role, "model": model, "call_id": call_id,
                           "tool": tool, "valid": valid, "error": stored_error})


def record_tool_call(store: Store, ctx: AgentContext, name: str, args: dict[str, Any],
                     result: ToolOutcome) -> None:
    """One tool execution as a `tool.call` event, plus a `policy.block` event when policy refused it."""
    actor = f"agent:{ctx.role}"
    with store.session() as session:
        append_event(session, "tool.call", item_id=ctx.item_id, run_id=ctx.run_id, actor=actor,
                     data={"round": ctx.round, "role": ctx.role, "tool": name, "args": _stored_args(args),
                           "ok": result.ok, "policy_block": result.policy_block,
                           "output": _short(result.output)})
        if result.policy_block is not None:
            append_event(session, "policy.block", item_id=ctx.item_id, run_id=ctx.run_id, actor=actor,
                         data={"round": ctx.round, "role": ctx.role, "tool": name,
                               "kind": result.policy_block, "args": _stored_args(args),
                               "detail": _short(result.output)})


def handoffs(store: Store, item_id: str | None = None) -> list[Handoff]:
    """Recorded handoffs in order, of one item or of all."""
    query = select(HandoffRow).order_by(col(HandoffRow.id))
    if item_id is not None:
        query = query.where(HandoffRow.item_id == item_id)
    with store.session() as session:
        return [Handoff(row.item_id, row.run_id, row.round, row.role, row.model, row.call_id, row.tool,
                        row.valid, row.error, row.at) for row in session.exec(query).all()]
