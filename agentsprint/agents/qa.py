"""QA and security review: read-only tools, then `submit_verdict` on the diff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from agentsprint.agents import prompts
from agentsprint.agents.loop import Limits, run_agent
from agentsprint.agents.schemas import REVIEW_TOOLS
from agentsprint.domain import Item

if TYPE_CHECKING:
    from agentsprint.agents.io import AgentIO
    from agentsprint.agents.supervisor import Plan
    from agentsprint.llm.context import CallContext

DIFF_PROMPT_CAP = 60_000
"""Characters of the diff put in the review prompt; the reviewer reads files for the rest."""

SYSTEM_TEMPLATES = {"qa": "qa_system.j2", "security": "security_system.j2"}


class Verdict(BaseModel):
    """A reviewer's decision and its reasons."""

    model_config = ConfigDict(frozen=True)

    verdict: Literal["approve", "reject"]
    reasons: list[str]

    @property
    def approved(self) -> bool:
        return self.verdict == "approve"


def review(io: AgentIO, ctx: CallContext, item: Item, plan: Plan, diff: str, gates_summary: str,
           worktree: str, role: Literal["qa", "security"] = "qa", *, limits: Limits | None = None,
           protected_paths: Sequence[str] = (), coder_summary: str | None = None,
           diff_cap: int = DIFF_PROMPT_CAP) -> Verdict:
    """The reviewer's verdict on `diff` against the item, the plan and the gate results."""
    if role not in SYSTEM_TEMPLATES:
        raise ValueError(f"no reviewer role {role!r}")
    user = prompts.render("qa_user.j2", item=item, plan=plan, round=ctx.round, diff=diff[:diff_cap],
                          diff_truncated=len(diff) > diff_cap, gates_summary=gates_summary,
                          coder_summary=coder_summary, protected_paths=list(protected_paths))
    messages = [{"role": "system", "content": prompts.render(SYSTEM_TEMPLATES[role])},
                {"role": "user", "content": user}]
    result = run_agent(io, ctx, messages, REVIEW_TOOLS, "submit_verdict", execute_tools=True,
                       limits=limits or Limits(), worktree=worktree)
    return Verdict.model_validate(result.terminal_args)
