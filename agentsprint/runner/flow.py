"""An item's execution as one durable workflow: plan, code, gates, QA, repeat until approved or capped.

The workflow body is deterministic given its steps' recorded outputs (no clocks, no I/O of its own):
time budgets are checked against the timestamps steps return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from agentsprint import dod
from agentsprint.agents import qa, supervisor
from agentsprint.agents.coder import BuiltinCoder, Coder, CoderOutcome
from agentsprint.agents.errors import Escalate
from agentsprint.agents.external import ExternalAgentFailed, ExternalCoder, ExternalOutcome
from agentsprint.agents.guards import RoundGuard, fingerprint
from agentsprint.agents.loop import Limits
from agentsprint.agents.tools import ToolPolicy, ToolResult
from agentsprint.domain import Item, Status
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import ProviderError
from agentsprint.llm.gateway import Reply
from agentsprint.money import plural
from agentsprint.runner import durable, steps
from agentsprint.runner.runtime import current
from agentsprint.store.records import RoundRecord
from agentsprint.store.runs import ItemStart

MERGE_WAIT_SECONDS = 1.0
MERGE_WAIT_POLLS = 600  # at most ten minutes behind higher-precedence items, then merge anyway


class RunOptions(BaseModel):
    """Per-run choices that travel with the workflow."""

    run_id: str
    sprint: str | None = None
    shadow: bool = False
    rounds: int | None = None  # overrides the item's round cap for this attempt (escalation retry)


class TimeExceeded(Escalate):
    def __init__(self, detail: str) -> None:
        super().__init__("time", detail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TimeExceeded, (self.detail,))


class DurableIO:
    """AgentIO whose every model call and tool execution is a recorded step."""

    def __init__(self, item: Item, begin: ItemStart, policy: ToolPolicy) -> None:
        self.item = item
        self.started_at = begin.started_at
        self.time_limit = item.budget.time_seconds
        self.policy = policy

    def _check_time(self, at: float) -> None:
        if self.time_limit is not None and at - self.started_at > self.time_limit:
            raise TimeExceeded(f"item wall-clock budget of {self.item.budget.time} used up")

    def call_model(self, ctx: CallContext, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        outcome = steps.call_model(ctx, messages, tools)
        if outcome.failure is not None:
            raise outcome.failure.error()
        self._check_time(outcome.at)
        assert outcome.reply is not None
        return outcome.reply

    def run_tool(self, worktree: str, name: str, args: dict[str, Any]) -> ToolResult:
        return steps.run_tool(worktree, name, args, self.policy)

    def record_handoff(self, ctx: CallContext, call_id: int | None, tool: str | None, valid: bool,
                       error: str | None) -> None:
        steps.handoff(ctx, call_id, tool, valid, error)

    def record_tool(self, ctx: CallContext, name: str, args: dict[str, Any], result: ToolResult) -> None:
        self._check_time(steps.record_tool(ctx, name, args, result))

    def progress(self, ctx: CallContext, text: str) -> None:
        current().emit(ctx.item_id or "", note=text)


class ItemRun:
    """The rounds of one attempt at one item."""

    def __init__(self, item: Item, begin: ItemStart, options: RunOptions) -> None:
        settings = current().settings
        self.item, self.begin, self.options = item, begin, options
        self.policy = ToolPolicy.from_settings(settings)
        self.limits = Limits.from_settings(settings.run)
        self.io = DurableIO(item, begin, self.policy)
        self.coder = self.make_coder(settings.model_for("coder").backend)
        self.guard = RoundGuard(threshold=settings.run.loop_repeat_threshold)
        self.scopes = list(begin.scopes)
        self.worktree = str(current().workspace.worktree_path(item.id))
        self.round_cap = options.rounds if options.rounds is not None else item.budget.rounds
        self.protected = list(settings.policy.protected_paths)
        self.partial: dict[str, Any] = {}  # the round in progress, for an escalation package mid-round

    def make_coder(self, backend: str) -> Coder:
        """The built-in coder, or an external agent run as a durable step."""
        if backend != "builtin":
            return ExternalCoder(self.launch_external, list(current().settings.policy.protected_paths))
        return BuiltinCoder(self.limits, self.policy)

    def launch_external(self, ctx: CallContext, prompt: str, worktree: str) -> ExternalOutcome:
        outcome = steps.run_external_coder(ctx, prompt, worktree, self.begin.started_at,
                                           self.item.budget.time_seconds)
        if outcome.transcript:  # kept in the escalation package when the run ends the round
            self.partial["agent_transcript"] = outcome.transcript
        return outcome

    def ctx(self, role: str, round_no: int) -> CallContext:
        return CallContext(role=role, item_id=self.item.id, run_id=self.options.run_id, round=round_no,
                           scopes=self.scopes)

    def execute(self) -> str:
        outcome = self.attempt()
        steps.release_gate_checkout(self.item.id)
        if self.options.shadow:
            return steps.end_shadow(self.item, self.options.run_id, outcome, self.begin.round)
        return outcome

    def attempt(self) -> str:
        try:
            return self.rounds()
        except Escalate as exc:
            return steps.escalate(self.item, self.options.run_id, exc.reason.value, exc.detail, self.partial or None)
        except (ProviderError, ExternalAgentFailed) as exc:
            return steps.fail(self.item, self.options.run_id, str(exc))
        except Exception as exc:  # a defect must dead-letter the item, not leave it running forever
            return steps.fail(self.item, self.options.run_id, f"internal error: {type(exc).__name__}: {exc}")

    def rounds(self) -> str:
        findings, plan, rejections = list(self.begin.findings), None, 0
        round_no = self.begin.round
        while True:
            round_no += 1
            steps.set_round(self.item.id, round_no)
            self.partial = {"round": round_no, "plan": None}
            plan = supervisor.plan(self.io, self.ctx("supervisor", round_no), self.item, findings, plan,
                                   limits=self.limits, protected_paths=self.protected)
            self.partial["plan"] = plan.model_dump()
            if plan.escalate:
                raise Escalate("supervisor", plan.escalate)
            outcome = self.coder.work(self.io, self.ctx("coder", round_no), self.item, plan, findings, self.worktree)
            check = steps.check_round(self.item, round_no)
            verdict_reasons, approved = self.judge(round_no, plan, check, outcome.summary)
            self.record(round_no, plan, outcome, check, approved, verdict_reasons)
            self.partial = {}
            if approved:
                self.wait_for_precedence()
                return steps.finish(self.item, self.options.run_id, self.options.shadow, check.added + check.removed)
            findings = verdict_reasons
            rejections += 1
            if self.round_cap is not None and rejections >= self.round_cap:
                raise Escalate("rounds", f"{plural(rejections, 'rejection')} (cap {self.round_cap})")
            failed = [g for g in check.gates if not g.passed]
            self.guard.observe(fingerprint(dod.summarize(failed)) if failed else None, check.diff_hash)

    def wait_for_precedence(self) -> None:
        """Before merging, let active higher-precedence items with overlapping scopes merge first."""
        if self.item.needs_human_review or self.options.shadow:
            return
        for _ in range(MERGE_WAIT_POLLS):
            if not steps.merge_blockers(self.item, self.options.run_id):
                return
            durable.sleep(MERGE_WAIT_SECONDS)

    def judge(self, round_no: int, plan: supervisor.Plan, check: steps.RoundCheck,
              coder_summary: str) -> tuple[list[str], bool]:
        """Gates first (a failing gate is a rejection, no model call); then QA; then security if asked."""
        summary = dod.summarize(check.gates)
        if any(not g.passed for g in check.gates):
            return [summary], False
        verdict = self.review("qa", round_no, plan, check, summary, coder_summary)
        if verdict.verdict == "approve" and self.item.needs_security_review:
            security = self.review("security", round_no, plan, check, summary, coder_summary)
            if security.verdict == "reject":  # the security reviewer's reject overrides QA's approve
                return [f"security: {r}" for r in security.reasons], False
        return list(verdict.reasons), verdict.verdict == "approve"

    def review(self, role: Literal["qa", "security"], round_no: int, plan: supervisor.Plan, check: steps.RoundCheck,
               summary: str, coder_summary: str) -> qa.Verdict:
        return qa.review(self.io, self.ctx(role, round_no), self.item, plan, check.diff, summary, self.worktree,
                         role=role, limits=self.limits, protected_paths=self.protected,
                         coder_summary=coder_summary)

    def record(self, round_no: int, plan: supervisor.Plan, outcome: CoderOutcome, check: steps.RoundCheck,
               approved: bool, reasons: list[str]) -> None:
        steps.record_round(self.item.id, self.options.run_id, RoundRecord(
            round=round_no, plan=plan.model_dump(), coder_summary=outcome.summary, sha=check.sha, diff=check.diff,
            diff_hash=check.diff_hash, changed_files=check.changed_files, added=check.added, removed=check.removed,
            gates=[g.model_dump() for g in check.gates], verdict="approve" if approved else "reject",
            reasons=reasons, agent_transcript=outcome.transcript or None))


@durable.workflow()
def item_workflow(item_id: str, options: RunOptions) -> str:
    """Execute one item to done, awaiting_review, escalated or failed; returns the final status."""
    steps.note_execution(item_id, options.run_id, durable.workflow_id() or item_id)
    item = steps.load_item(item_id)
    begin = steps.begin(item, options.run_id, durable.workflow_id() or item_id, options.sprint, options.shadow)
    if begin.skip:
        return begin.status.value
    return ItemRun(item, begin, options).execute()


FINAL = {Status.DONE.value, Status.AWAITING_REVIEW.value, Status.ESCALATED.value, Status.FAILED.value}
