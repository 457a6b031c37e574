"""The seam between the agent loop and the world: every model call and tool execution is one call.

Inputs and outputs are serializable, so the runner can make each call a durable step (its own
AgentIO); `DirectIO` is the plain, non-durable implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from agentsprint.agents import tools
from agentsprint.agents.tools import ToolPolicy, ToolResult
from agentsprint.config import Settings
from agentsprint.store import agents as agent_records

if TYPE_CHECKING:
    from agentsprint.llm.context import CallContext
    from agentsprint.llm.gateway import Gateway, Reply
    from agentsprint.store import Store

ProgressCallback = Callable[["CallContext", str], None]
Messages = list[dict[str, Any]]


class AgentIO(Protocol):
    """What an agent may do besides thinking: call its model, run tools, and leave records."""

    def call_model(self, ctx: CallContext, messages: Messages, tools: list[dict[str, Any]]) -> Reply:
        """One model call through the gateway (budget errors propagate)."""
        ...

    def run_tool(self, worktree: str, name: str, args: dict[str, Any]) -> ToolResult:
        """One tool execution in the worktree."""
        ...

    def record_handoff(self, ctx: CallContext, call_id: int | None, tool: str | None, valid: bool,
                       error: str | None) -> None:
        """Record one reply as a valid or malformed handoff."""
        ...

    def record_tool(self, ctx: CallContext, name: str, args: dict[str, Any], result: ToolResult) -> None:
        """Record one tool execution (an audit event; policy blocks are counted)."""
        ...

    def progress(self, ctx: CallContext, text: str) -> None:
        """Show what the agent is doing (live display only, never durable)."""
        ...


class DirectIO:
    """AgentIO straight onto the gateway, the tools and the store (no durability)."""

    def __init__(self, gateway: Gateway, store: Store, settings: Settings,
                 progress_cb: ProgressCallback | None = None) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings
        self.policy = ToolPolicy.from_settings(settings)
        self.progress_cb = progress_cb

    def call_model(self, ctx: CallContext, messages: Messages, tools: list[dict[str, Any]]) -> Reply:
        """The gateway's reply to `messages` with `tools` offered."""
        return self.gateway.complete(ctx, messages, tools=tools)

    def run_tool(self, worktree: str, name: str, args: dict[str, Any]) -> ToolResult:
        """Execute a tool under the project's tool policy."""
        return tools.execute(worktree, name, args, self.policy)

    def record_handoff(self, ctx: CallContext, call_id: int | None, tool: str | None, valid: bool,
                       error: str | None) -> None:
        """A handoffs row and a `handoff` event."""
        model = self.settings.model_for(ctx.role).model
        agent_records.record_handoff(self.store, ctx, model, call_id, tool, valid, error)

    def record_tool(self, ctx: CallContext, name: str, args: dict[str, Any], result: ToolResult) -> None:
        """A `tool.call` event (and a `policy.block` event when refused)."""
        agent_records.record_tool_call(self.store, ctx, name, args, result)

    def progress(self, ctx: CallContext, text: str) -> None:
        """Pass the text to the progress callback, if any."""
        if self.progress_cb is not None:
            self.progress_cb(ctx, text)
