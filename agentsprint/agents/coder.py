"""Coders: anything that turns a plan into changes in a worktree and reports its spend.

`Coder` is the seam: the built-in coder runs the tool loop; an external coding CLI can be another
implementation (see docs/agents.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from agentsprint.agents import prompts
from agentsprint.agents.loop import Limits, run_agent
from agentsprint.agents.schemas import CODER_TOOLS
from agentsprint.agents.tools import ToolPolicy
from agentsprint.domain import Item

if TYPE_CHECKING:
    from agentsprint.agents.io import AgentIO
    from agentsprint.agents.supervisor import Plan
    from agentsprint.llm.context import CallContext


class CoderOutcome(BaseModel):
    """What a coder reports for one round: its summary and its spend."""

    model_config = ConfigDict(frozen=True)

    summary: str
    finished: bool
    steps: int
    tokens: int
    usd: float
    malformed: int = 0
    transcript: str = ""
    """An external agent's own record of the round (redacted, capped); empty for the built-in coder."""


class Coder(Protocol):
    """Works on an item in a worktree until it considers the round finished."""

    def work(self, io: AgentIO, ctx: CallContext, item: Item, plan: Plan, findings: list[str],
             worktree: str) -> CoderOutcome:
        """Change the worktree following `plan` and `findings`; report what was done and spent."""
        ...


class BuiltinCoder:
    """The built-in coder: the tool loop with the coder tools, ending at `finish`."""

    def __init__(self, limits: Limits, policy: ToolPolicy) -> None:
        self.limits = limits
        self.policy = policy

    def messages(self, ctx: CallContext, item: Item, plan: Plan, findings: list[str]) -> list[dict[str, str]]:
        """The opening system and user messages of a round."""
        system = prompts.render("coder_system.j2", allowed_commands=self.policy.allowed_commands,
                                timeout=f"{self.policy.command_timeout_s:g}",
                                protected_paths=self.policy.protected_paths, max_steps=self.limits.max_steps)
        user = prompts.render("coder_user.j2", item=item, plan=plan, findings=findings, round=ctx.round,
                              protected_paths=self.policy.protected_paths)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def work(self, io: AgentIO, ctx: CallContext, item: Item, plan: Plan, findings: list[str],
             worktree: str) -> CoderOutcome:
        """Run the tool loop in `worktree` until the model calls `finish`."""
        result = run_agent(io, ctx, self.messages(ctx, item, plan, findings), CODER_TOOLS, "finish",
                           execute_tools=True, limits=self.limits, worktree=worktree)
        return CoderOutcome(summary=str(result.terminal_args["summary"]), finished=True, steps=result.steps,
                            tokens=result.tokens, usd=result.usd, malformed=result.malformed)
