"""The tool loop every role runs: call the model, validate the handoff, execute tools, guard limits.

The loop is deterministic given the outputs of `io` (no clock, no randomness, no direct I/O), so a
durable runner can replay it from recorded model calls and tool results. Control flow is by small
exceptions: `MalformedHandoff` (answered, retried), `Escalate` and `LoopDetected` (end the run).
Budget and provider errors from the gateway propagate unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentsprint.agents import prompts
from agentsprint.agents.errors import Escalate, LoopDetected
from agentsprint.agents.guards import LoopGuard
from agentsprint.agents.handoff import MalformedHandoff, answer, parse_calls
from agentsprint.agents.schemas import Offered, ToolArgs, tool_schemas
from agentsprint.config import RunSettings
from agentsprint.domain import EscalationReason
from agentsprint.text import shorten

if TYPE_CHECKING:
    from agentsprint.agents.io import AgentIO
    from agentsprint.llm.context import CallContext
    from agentsprint.llm.gateway import Reply, ToolCall

__all__ = ["AgentResult", "Escalate", "Limits", "LoopDetected", "run_agent"]

Message = dict[str, Any]


class Limits(BaseModel):
    """Caps of one agent run (from RunSettings)."""

    model_config = ConfigDict(frozen=True)

    max_steps: int = Field(default=40, gt=0)
    max_malformed: int = Field(default=3, ge=0)
    max_policy_blocks: int = Field(default=5, ge=1)
    loop_repeat_threshold: int = Field(default=3, ge=2)

    @classmethod
    def from_settings(cls, run: RunSettings) -> Limits:
        """The limits configured in `[run]`."""
        return cls(max_steps=run.max_coder_steps, max_malformed=run.max_malformed,
                   max_policy_blocks=run.max_policy_blocks, loop_repeat_threshold=run.loop_repeat_threshold)


class AgentResult(BaseModel):
    """How a run ended: the terminal tool's arguments, the transcript and the spend."""

    terminal_args: dict[str, Any]
    steps: int
    malformed: int
    messages: list[Message]
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class _Run:
    """Mutable state of one run."""

    messages: list[Message]
    steps: int = 0
    malformed: int = 0
    malformed_in_row: int = 0
    blocked_in_row: int = 0  # tool calls in a row the policy refused
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    pending: list[Message] = field(default_factory=list)  # appended after the tool results

    def charge(self, reply: Reply) -> None:
        self.model_calls += 1
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.usd += reply.usd

    def result(self, terminal_args: dict[str, Any]) -> AgentResult:
        return AgentResult(terminal_args=terminal_args, steps=self.steps, malformed=self.malformed,
                           messages=self.messages, model_calls=self.model_calls,
                           input_tokens=self.input_tokens, output_tokens=self.output_tokens, usd=self.usd)


def _check_limits(run: _Run, limits: Limits, terminal: str, last_error: str | None = None) -> None:
    """The one place caps are enforced; raises Escalate("loop") when one is exceeded."""
    if run.malformed_in_row > limits.max_malformed:
        raise Escalate(EscalationReason.LOOP,
                       f"{run.malformed_in_row} malformed replies in a row (last: {last_error})")
    if run.steps >= limits.max_steps:
        raise Escalate(EscalationReason.LOOP, f"step cap of {limits.max_steps} tool calls reached "
                                              f"without calling {terminal}")


def run_agent(io: AgentIO, ctx: CallContext, messages: list[Message], offered: Offered, terminal: str,
              execute_tools: bool, limits: Limits, worktree: str | None) -> AgentResult:
    """Run the loop until the model calls `terminal`; its validated arguments end the run."""
    if terminal not in offered:
        raise ValueError(f"terminal tool {terminal!r} is not offered")
    if execute_tools and worktree is None:
        raise ValueError("tools need a worktree")
    valid = offered if execute_tools else {terminal: offered[terminal]}
    schemas = tool_schemas(valid)
    run, guard = _Run(messages=list(messages)), LoopGuard(limits.loop_repeat_threshold)
    while True:
        reply = io.call_model(ctx, list(run.messages), schemas)
        run.charge(reply)
        try:
            calls = parse_calls(reply, valid)
        except MalformedHandoff as bad:
            _on_malformed(io, ctx, run, reply, bad)
            _check_limits(run, limits, terminal, bad.error)
            continue
        run.malformed_in_row = 0
        io.record_handoff(ctx, reply.call_id, ",".join(call.name for call, _ in calls), True, None)
        run.messages.append(reply.to_message())
        finished = _act(io, ctx, run, calls, terminal, limits, guard, worktree or "")
        if finished is not None:
            return run.result(finished)
        run.messages.extend(run.pending)
        run.pending.clear()


def _on_malformed(io: AgentIO, ctx: CallContext, run: _Run, reply: Reply, bad: MalformedHandoff) -> None:
    """Record a malformed handoff and answer it with the validation error."""
    run.malformed += 1
    run.malformed_in_row += 1
    io.record_handoff(ctx, reply.call_id, bad.tool, False, bad.error)
    io.progress(ctx, f"malformed reply ({bad.kind}): {bad.error.splitlines()[0]}")
    run.messages.extend(answer(reply, bad))


def _act(io: AgentIO, ctx: CallContext, run: _Run, calls: list[tuple[ToolCall, ToolArgs]], terminal: str,
         limits: Limits, guard: LoopGuard, worktree: str) -> dict[str, Any] | None:
    """Execute the calls of one reply in order; the terminal call's arguments if it was made."""
    for call, parsed in calls:
        args = parsed.model_dump(mode="json")
        if call.name == terminal:
            io.progress(ctx, terminal)
            return args
        if guard.observe(call.name, args) == "nudge":
            run.pending.append({"role": "user", "content": prompts.render(
                "nudge.j2", pattern=guard.pattern, terminal=terminal)})
        _check_limits(run, limits, terminal)
        run.steps += 1
        io.progress(ctx, f"{call.name} {_args_line(args)}")
        result = io.run_tool(worktree, call.name, args)
        io.record_tool(ctx, call.name, args, result)
        run.messages.append({"role": "tool", "tool_call_id": call.id, "content": result.output})
        _count_policy_blocks(run, limits, call.name, result.policy_block, result.output)
    return None


def _count_policy_blocks(run: _Run, limits: Limits, tool: str, block: str | None, output: str) -> None:
    """Escalate("policy") when the agent keeps asking for what the policy refuses: only a person can
    decide whether the policy (allowed commands, paths) or the item should change."""
    run.blocked_in_row = run.blocked_in_row + 1 if block is not None else 0
    if run.blocked_in_row >= limits.max_policy_blocks:
        raise Escalate(EscalationReason.POLICY,
                       f"{run.blocked_in_row} tool calls in a row refused by policy "
                       f"(last: {tool}: {output.splitlines()[0] if output else block})")


def _args_line(args: dict[str, Any], limit: int = 80) -> str:
    """A one-line rendering of arguments for the live display."""
    return shorten(json.dumps(args, ensure_ascii=False), limit)
