"""The supervisor: plans each round through `submit_plan`, and may escalate through the same tool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from agentsprint.agents import prompts
from agentsprint.agents.loop import Limits, run_agent
from agentsprint.agents.schemas import SUPERVISOR_TOOLS
from agentsprint.domain import Item

if TYPE_CHECKING:
    from agentsprint.agents.io import AgentIO
    from agentsprint.llm.context import CallContext


class Plan(BaseModel):
    """A round's plan; `escalate` set means the supervisor hands the item to a human."""

    model_config = ConfigDict(frozen=True)

    steps: list[str] = Field(default_factory=list)
    acceptance: list[str] = Field(default_factory=list)
    escalate: str | None = None


def plan(io: AgentIO, ctx: CallContext, item: Item, findings: list[str], previous: Plan | None = None,
         *, limits: Limits | None = None, protected_paths: Sequence[str] = ()) -> Plan:
    """The supervisor's plan for this round (the supervisor is offered only `submit_plan`)."""
    messages = [
        {"role": "system", "content": prompts.render("supervisor_system.j2")},
        {"role": "user", "content": prompts.render(
            "supervisor_user.j2", item=item, findings=findings, previous=previous, round=ctx.round,
            protected_paths=list(protected_paths))},
    ]
    result = run_agent(io, ctx, messages, SUPERVISOR_TOOLS, "submit_plan", execute_tools=False,
                       limits=limits or Limits(), worktree=None)
    return Plan.model_validate(result.terminal_args)
