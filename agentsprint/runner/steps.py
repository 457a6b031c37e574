"""Durable steps: every model call, tool execution, gate run and state change of an item.

Each step takes serializable arguments, returns a serializable (pickled by DBOS) value and reaches
the process's store, gateway and workspace through `runtime.current()`. Errors the workflow must act
on come back as values (`ModelOutcome.failure`, typed and whole: kind, message, retries), so replaying
a recorded step never depends on unpickling an exception.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentsprint import backlog, dod, notify
from agentsprint.agents.errors import Escalate
from agentsprint.agents.external import ExternalOutcome, run_external
from agentsprint.agents.tools import ToolPolicy, ToolResult, execute
from agentsprint.audit.otel import export_item_run
from agentsprint.backlog.epics import epic_budget
from agentsprint.backlog.sprints import list_sprints
from agentsprint.domain import Item, SprintState, Status
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted, LLMError, ProviderError, ProviderErrorKind
from agentsprint.llm.gateway import Reply
from agentsprint.policy import redact
from agentsprint.runner import durable, settle, undo
from agentsprint.runner.runtime import current
from agentsprint.sandbox import Sandbox
from agentsprint.store import runs
from agentsprint.store.agents import record_handoff, record_tool_call
from agentsprint.store.ledger import settle_orphans
from agentsprint.store.records import RoundRecord
from agentsprint.store.sprints import sprint_budget, sprints_of

# Kept per round (events, escalation package, DBOS step output); QA's prompt takes its own smaller cut
# (agents.qa.DIFF_PROMPT_CAP) and says when the diff was cut.
DIFF_CAP = 200_000
EXTERNAL_DEFAULT_TIMEOUT = 3600.0
"""Seconds an external agent may run when its item has no time budget."""


class CallFailure(BaseModel):
    """Why a model call step returned no reply: a budget refused it (no call made), or the provider
    failed after its retries. Kept whole, so the workflow raises what the gateway raised."""

    model_config = ConfigDict(frozen=True)

    budget: bool = False
    kind: ProviderErrorKind = "unknown"
    message: str
    retries: int = 0

    @classmethod
    def of(cls, exc: LLMError) -> CallFailure:
        if isinstance(exc, BudgetExhausted):
            return cls(budget=True, message=str(exc))
        if isinstance(exc, ProviderError):
            return cls(kind=exc.kind, message=exc.message, retries=exc.retries)
        return cls(message=str(exc))

    def error(self) -> Escalate | ProviderError:
        """The exception the workflow raises: a budget escalation, or the provider's error as it was."""
        if self.budget:
            return Escalate("budget", self.message)
        return ProviderError(self.kind, self.message, self.retries)


class ModelOutcome(BaseModel):
    """A model call's reply, or why it has none, and when the step finished."""

    reply: Reply | None = None
    failure: CallFailure | None = None
    at: float

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read a step output recorded before `failure` (error_kind / provider_kind / error strings)."""
        fields = state.get("__dict__", {})
        if "error_kind" in fields:
            kind, provider, text = fields.pop("error_kind"), fields.pop("provider_kind"), fields.pop("error")
            fields["failure"] = None if kind is None else CallFailure(
                budget=kind == "budget", kind=provider or "unknown", message=text or "")
            state["__pydantic_fields_set__"] = set(fields)
        super().__setstate__(state)


class RoundCheck(BaseModel):
    """The round's committed work and the deterministic DoD gates' results."""

    sha: str | None
    diff: str
    diff_hash: str
    changed_files: list[str]
    added: int
    removed: int
    gates: list[dod.GateResult]


def _step_key() -> str:
    workflow_id, step_id = durable.step_key()
    return f"{workflow_id}:{step_id}"


@durable.step()
def load_item(item_id: str) -> Item:
    """The item's definition as it is at the start of this attempt."""
    settings = current().settings
    loaded = backlog.load_backlog(settings.backlog_dir)
    if item_id not in loaded.items:
        problems = [p for p in loaded.problems if item_id in str(p)]
        raise LookupError(f"{item_id}: no valid backlog item ({'; '.join(map(str, problems)) or 'not found'})")
    return loaded.items[item_id]


@durable.step()
def begin(item: Item, run_id: str, workflow_id: str, sprint: str | None, shadow: bool = False) -> runs.ItemStart:
    """Mark the item running, open its budgets (item, every sprint holding it, its epic) and its worktree.

    A shadow attempt is charged to scopes of its own (`shadow:<run id>:item:<ID>`, ...) with the same
    limits, so it stops where a real attempt would but never spends the real budgets.
    """
    rt = current()
    start = runs.begin_item(rt.store, item, run_id, workflow_id, actor=executor_actor(), shadow=shadow)
    if start.skip:
        return start
    scopes = budget_scopes(item, sprint)
    if shadow:
        scopes = shadow_scopes(scopes, run_id)
    for scope, tokens, usd in scopes:
        rt.gateway.open_budget(scope, tokens=tokens, usd=usd)
        start.scopes.append(scope)
    rt.workspace.create_worktree(item.id)
    rt.emit(item.id, status="running", round=start.round)
    return start


def executor_actor() -> str:
    """Who executes steps in this process: `runner` (agentsprint run) or `worker:<executor id>`."""
    executor_id = current().executor_id
    return "runner" if executor_id == "local" else f"worker:{executor_id}"


def note_execution(item_id: str, run_id: str, workflow_id: str) -> None:
    """Record that this process executes the workflow; not a step, so each recovery records itself too.

    Calls of the item a dead process left in flight are charged at their reservation here: no other
    execution of the item is live now.
    """
    runs.record_execution(current().store, item_id, run_id, workflow_id, executor_actor())
    settle_orphans(current().store, item_id)


def budget_scopes(item: Item, sprint: str | None) -> list[tuple[str, int | None, float | None]]:
    """(scope, token limit, USD limit) of the item, each sprint that holds it (or the run's), and its epic."""
    rt = current()
    scopes: list[tuple[str, int | None, float | None]] = [(f"item:{item.id}", item.budget.tokens, item.budget.usd)]
    defined = {s.name: s for s in list_sprints(rt.settings.backlog_dir)}
    holding = {name for name, s in defined.items() if item.id in s.items and s.state is not SprintState.CLOSED}
    for name in sorted(set(sprints_of(rt.store, item.id)) | holding | ({sprint} if sprint else set())):
        limits = (defined[name].capacity.tokens, defined[name].capacity.usd) if name in defined else None
        scopes.append((f"sprint:{name}", *(limits or sprint_budget(rt.store, name))))
    if item.epic:
        scopes.append((f"epic:{item.epic}", *epic_budget(rt.settings.backlog_dir, item.epic)))
    return scopes


def shadow_scopes(scopes: list[tuple[str, int | None, float | None]],
                  run_id: str) -> list[tuple[str, int | None, float | None]]:
    """The shadow twin of each scope, with the real scope's effective limits (top-ups included)."""
    from agentsprint.store.ledger import budgets

    real = budgets(current().store, [scope for scope, _, _ in scopes])
    twins = []
    for scope, tokens, usd in scopes:
        row = real[scope]
        opened = row.limit_tokens is not None or row.limit_usd is not None or row.spent_tokens > 0
        twins.append((f"shadow:{run_id}:{scope}", *((row.limit_tokens, row.limit_usd) if opened else (tokens, usd))))
    return twins


@durable.step()
def set_round(item_id: str, round_no: int) -> None:
    runs.set_round(current().store, item_id, round_no)
    current().emit(item_id, round=round_no)


@durable.step()
def call_model(ctx: CallContext, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelOutcome:
    """One model call through the gateway; a replay after a crash gets the settled reply back."""
    rt = current()
    rt.emit(ctx.item_id or "", role=ctx.role)
    try:
        reply = rt.gateway.complete(ctx, messages, tools=tools or None, idempotency_key=_step_key())
    except LLMError as exc:
        return ModelOutcome(failure=CallFailure.of(exc), at=runs.clock(rt.store, ctx.item_id))
    if ctx.item_id:
        spend = rt.gateway.spend(ctx.scopes[0] if ctx.scopes else f"item:{ctx.item_id}")
        rt.emit(ctx.item_id, tokens=spend.spent_tokens + spend.reserved_tokens, token_limit=spend.limit_tokens,
                usd=spend.spent_usd, usd_limit=spend.limit_usd)
    return ModelOutcome(reply=reply, at=runs.clock(rt.store, ctx.item_id))


@durable.step()
def run_tool(worktree: str, name: str, args: dict[str, Any], policy: ToolPolicy) -> ToolResult:
    """One tool execution; file changes are journaled so a replay after a crash repeats them exactly."""
    undo.prepare(undo_dir(), *durable.step_key(), worktree, name, args.get("path"))
    return execute(worktree, name, args, policy)


def undo_dir() -> Path:
    return current().settings.state_dir / "journal"  # the folder keeps its name: entries of workflows in flight


@durable.step()
def record_tool(ctx: CallContext, name: str, args: dict[str, Any], result: ToolResult) -> float:
    record_tool_call(current().store, ctx, name, args, result)
    current().emit(ctx.item_id or "", last_tool=f"{name}({_brief(args)})")
    return runs.clock(current().store, ctx.item_id)


@durable.step()
def handoff(ctx: CallContext, call_id: int | None, tool: str | None, valid: bool, error: str | None) -> None:
    model = current().settings.model_for(ctx.role).model
    record_handoff(current().store, ctx, model, call_id, tool, valid, error)


def _brief(args: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) < 60 else text[:57] + "..."


@durable.step()
def run_external_coder(ctx: CallContext, prompt: str, worktree: str, started_at: float,
                       time_limit: float | None) -> ExternalOutcome:
    """Run the role's external agent once through the metering proxy, within what is left of the item's time."""
    rt = current()
    rt.emit(ctx.item_id or "", role=ctx.role, note="external agent running")
    left = EXTERNAL_DEFAULT_TIMEOUT if time_limit is None else time_limit - (runs.clock(rt.store, ctx.item_id)
                                                                             - started_at)
    return run_external(rt.metering_proxy(), ctx, rt.settings.model_for(ctx.role), prompt, worktree, left,
                        Sandbox.from_settings(rt.settings))


@durable.step()
def check_round(item: Item, round_no: int) -> RoundCheck:
    """Commit the round's work, then run the deterministic gates on its diff."""
    rt = current()
    ws = rt.workspace
    sha = ws.commit_all(item.id, f"agentsprint: {item.id} round {round_no}")
    diff = ws.diff(item.id)
    changed = ws.changed_files(item.id)
    stats = ws.diff_stats(item.id)
    rt.emit(item.id, role="gates")
    gates = dod.run_item_gates(item, ws, changed, diff, rt.settings)  # the raw diff: the
    # secrets gate must see what it scans; everything kept or sent on gets the redacted one
    kept = redact(diff)[:DIFF_CAP]
    return RoundCheck(sha=sha, diff=kept, diff_hash=hashlib.sha256(diff.encode("utf-8")).hexdigest(),
                      changed_files=changed,
                      added=stats.added, removed=stats.removed, gates=gates)


@durable.step()
def release_gate_checkout(item_id: str) -> None:
    """The item has ended: its gate checkout (kept between rounds) goes."""
    current().workspace.drop_gate_checkout(item_id)


@durable.step()
def record_round(item_id: str, run_id: str, record: RoundRecord) -> None:
    runs.record_round(current().store, item_id, run_id, record)


@durable.step()
def finish(item: Item, run_id: str, shadow: bool, changed_lines: int) -> str:
    """QA approved: await human review, or merge and mark done; in shadow mode only say which."""
    rt = current()
    if shadow:
        return (Status.AWAITING_REVIEW if item.needs_human_review else Status.DONE).value
    if item.needs_human_review:
        runs.finish_item(rt.store, item.id, run_id, Status.AWAITING_REVIEW, detail=f"{changed_lines} changed lines")
        return _done(item.id, Status.AWAITING_REVIEW, run_id)
    return merge_item(item, run_id, actor=executor_actor())


@durable.step()
def end_shadow(item: Item, run_id: str, outcome: str, round_before: int = 0) -> str:
    """Shadow mode never changes what a real run does next: archive the branch, put the item back to todo
    at the round it had before."""
    rt = current()
    branch: str | None = f"agentsprint-shadow/{item.id}/{run_id}"
    if rt.workspace.branch_exists(item.id):
        rt.workspace.archive_branch(item.id, branch or "")
    else:
        branch = None
    runs.end_shadow(rt.store, item.id, run_id, outcome, branch, round_before)
    undo.discard(undo_dir(), durable.workflow_id() or "")
    rt.emit(item.id, status=f"{outcome} (shadow)")
    return outcome


def project() -> settle.Project:
    """This process's project, for the settle functions the steps share with the review commands."""
    rt = current()
    return settle.Project(rt.settings, rt.store, rt.workspace)


def merge_item(item: Item, run_id: str, actor: str) -> str:
    status = settle.merge_item(project(), item, run_id, actor)
    return _done(item.id, status, run_id)


def _done(item_id: str, status: Status, run_id: str) -> str:
    rt = current()
    undo.discard(undo_dir(), durable.workflow_id() or "")
    rt.emit(item_id, status=status.value)
    notify.item_settled(rt.settings, rt.store, item_id, run_id)
    export_item_run(rt.settings, rt.store, item_id, run_id)
    return status.value


@durable.step()
def merge_blockers(item: Item, run_id: str) -> list[str]:
    """Higher-precedence items of this run, still active, whose scope overlaps this one's."""
    from agentsprint.runner.conflicts import merge_blockers as blockers

    rt = current()
    active = runs.active_in_run(rt.store, run_id)
    loaded = backlog.load_backlog(rt.settings.backlog_dir).items
    others = {i: (loaded[i], status) for i, status in active.items() if i in loaded}
    found = blockers(item, others, list(rt.settings.policy.precedence))
    if found:
        rt.emit(item.id, note="waiting to merge after " + ", ".join(found))
    return found


@durable.step()
def escalate(item: Item, run_id: str, reason: str, detail: str, partial: dict[str, Any] | None = None) -> str:
    return escalate_now(item, run_id, reason, detail, partial=partial)


@durable.step()
def fail(item: Item, run_id: str, detail: str) -> str:
    return escalate_now(item, run_id, "failed", detail, to=Status.FAILED)


def escalate_now(item: Item, run_id: str, reason: str, detail: str, to: Status = Status.ESCALATED,
                 partial: dict[str, Any] | None = None) -> str:
    """Commit the agents' work, build the escalation package, and escalate (or dead-letter) the item."""
    status = settle.escalate_now(project(), item, run_id, reason, detail, to, partial=partial)
    undo.discard(undo_dir(), durable.workflow_id() or "")
    current().emit(item.id, status=status.value, reason=reason)
    notify.item_settled(current().settings, current().store, item.id, run_id)
    export_item_run(current().settings, current().store, item.id, run_id)
    return status.value
