"""`agentsprint run`: start or resume the selected items' workflows on the queue, respect depends_on, wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel

from agentsprint import notify
from agentsprint.audit.otel import export_item_run
from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.runner import durable
from agentsprint.runner.decision import Next, dependency_met, next_step
from agentsprint.runner.runtime import ProgressSink, Runtime, build_runtime, current, new_executor_id
from agentsprint.runner.selection import RunError as RunError  # what run_items raises on a bad selection
from agentsprint.runner.selection import selection
from agentsprint.runner.settle import MERGE_BLOCKED, Project
from agentsprint.runner.stopping import commit_stopped, drain_seconds, stop_item, stopped
from agentsprint.store import runs, workers
from agentsprint.store.ledger import usage_anomalies
from agentsprint.store.records import EscalationPackage

if TYPE_CHECKING:
    from agentsprint.runner.flow import RunOptions
    from agentsprint.runner.worker import Heartbeat
    from agentsprint.store import Store
    from agentsprint.workspace import Workspace


class RunReport(BaseModel):
    run_id: str
    results: dict[str, str] = {}  # only the items this run executed (or tried to)
    notes: dict[str, str] = {}
    skipped: dict[str, str] = {}  # item -> why a bare or sprint run left it out (its live status)
    warnings: list[str] = []
    seconds: float = 0.0
    interrupted: list[str] = []
    """Items this run left to the next one because it was interrupted (SIGINT / SIGTERM)."""

    @property
    def ok(self) -> bool:
        return all(s in (Status.DONE.value, Status.AWAITING_REVIEW.value) for s in self.results.values())


@dataclass
class Scheduler:
    """Starts items whose dependencies are done and watches their workflows until all settle."""

    items: list[Item]
    backlog_items: dict[str, Item]
    options: RunOptions
    report: RunReport
    handles: dict[str, durable.Handle] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    interrupt: threading.Event = field(default_factory=threading.Event)

    def run(self) -> RunReport:
        self.waiting = [i.id for i in self.items]
        current().emit("", run_items=list(self.waiting))  # a live view sizes its columns once, for every item
        while self.waiting or self.handles:
            if self.interrupt.is_set():
                self.stop_here()
                break
            self.start_ready()
            self.collect()
            if not self.handles and self.waiting and not self.ready():
                self.give_up_blocked()
            time.sleep(0.05)
        return self.report

    def give_up_blocked(self) -> None:
        """Nothing runs and nothing waiting can start: report each waiting item blocked by what it waits on."""
        for item_id in self.waiting:
            self.report.results[item_id] = self.status(item_id).value
            self.report.notes[item_id] = "blocked: " + ", ".join(self.unmet(item_id))
        self.waiting = []

    def stop_here(self) -> None:
        """Interrupted: freeze this run's items at their next step (resumable) and note what is left."""
        durable.quiet()  # its notes on the cancelled workflows are not news here
        for item_id, handle in list(self.handles.items()):
            if stop_item(item_id, handle.workflow_id, self.report.run_id):
                self.report.results[item_id] = Status.STOPPED.value
                self.report.notes[item_id] = "interrupted (resume with agentsprint run)"
                self.report.interrupted.append(item_id)
        self.report.interrupted += self.waiting
        self.handles, self.waiting = {}, []

    def status(self, item_id: str) -> Status:
        state = runs.item_state(current().store, item_id)
        return state.status if state else self.backlog_items[item_id].status

    def unmet(self, item_id: str) -> list[str]:
        deps = self.backlog_items[item_id].depends_on
        return [d for d in deps if d not in self.backlog_items or not dependency_met(self.status(d))]

    def ready(self) -> list[str]:
        return [item_id for item_id in self.waiting if not self.unmet(item_id)]

    def start_ready(self) -> None:
        for item_id in self.ready():
            self.waiting.remove(item_id)
            handle, note = start_item(self.backlog_items[item_id], self.options)
            if handle is None:
                self.report.results[item_id] = self.status(item_id).value
                self.report.notes[item_id] = note
                self.note_blocked_merge(item_id)
            else:
                self.handles[item_id] = handle
                self.show(item_id, note)

    def show(self, item_id: str, note: str) -> None:
        """Put a started or resumed item on the live board with the status and round it has now."""
        state = runs.item_state(current().store, item_id)
        status = "queued" if note == "started" or state is None else state.status.value
        current().emit(item_id, status=status, round=state.round if state else 0)

    def collect(self) -> None:
        for item_id, handle in list(self.handles.items()):
            wf_status = handle.status()
            if durable.is_active(wf_status):
                continue
            del self.handles[item_id]
            self.settled(item_id, handle, wf_status)

    def settled(self, item_id: str, handle: durable.Handle, wf_status: str | None) -> None:
        """Report an item whose workflow ended (dead-lettering it if the workflow died of an error)."""
        if wf_status == "ERROR":
            mark_failed(item_id, self.report.run_id, handle.error())
        self.report.results[item_id] = self.status(item_id).value
        if wf_status == "CANCELLED":
            self.report.notes[item_id] = "stopped (resume with agentsprint run)"
        elif wf_status == "SUCCESS" and self.options.shadow:
            # the item is back to todo; report what the run would have done
            self.report.results[item_id] = str(handle.result())
            self.report.notes[item_id] = shadow_note(item_id, self.report.run_id)
        else:
            self.note_blocked_merge(item_id)

    def note_blocked_merge(self, item_id: str) -> None:
        state = runs.item_state(current().store, item_id)
        if state is not None and state.status is Status.AWAITING_REVIEW and state.reason == MERGE_BLOCKED:
            self.report.notes[item_id] = f"approved, not merged: {state.detail}"


def shadow_note(item_id: str, run_id: str) -> str:
    """What a shadow attempt left: nothing merged or charged, and the branch its work is archived on."""
    branch = runs.shadow_branch(current().store, item_id, run_id)
    kept = f"work archived on branch {branch}" if branch else "no work to keep"
    return f"shadow: nothing merged, item file and budgets untouched (spend under shadow:{run_id}:*); {kept}"


def mark_failed(item_id: str, run_id: str, detail: str) -> None:
    """A workflow that died of an error outside the agents' control: dead-letter the item."""
    from agentsprint.domain import can_transition

    store = current().store
    state = runs.item_state(store, item_id)
    if state is None or not can_transition(state.status, Status.FAILED):
        return
    package = EscalationPackage(item_id=item_id, reason="failed", detail=detail)
    runs.escalate_item(store, item_id, run_id, "failed", detail, package, to=Status.FAILED)
    notify.item_settled(current().settings, store, item_id, run_id)
    export_item_run(current().settings, store, item_id, run_id)


def start_item(item: Item, options: RunOptions) -> tuple[durable.Handle | None, str]:
    """Enqueue a new attempt, resume a stopped one, or attach to one still active; (handle, note)."""
    store = current().store
    state = runs.item_state(store, item.id)
    status = state.status if state else item.status
    workflow_id, rounds_override = runs.workflow_of(store, item.id)
    wf_status = durable.status(workflow_id)
    decision = next_step(status, wf_status, merge_blocked=state is not None and state.reason == MERGE_BLOCKED)
    if decision is Next.MERGE:
        return None, _merge_waiting(item.id, options.run_id, options.shadow)
    if decision is Next.SETTLED:
        return None, f"already {status.value}"
    if decision is Next.HUMAN:
        return None, f"{status.value}: see agentsprint escalations show {item.id}"
    if decision is Next.ATTACH and workflow_id:
        # still queued or in flight from an interrupted run: claiming again would start a second attempt
        return durable.Handle(workflow_id), "resumed after interruption"
    if decision is Next.RESUME and workflow_id:
        runs.resume_item(store, item.id, options.run_id)
        return durable.resume(workflow_id), "resumed"
    if decision is Next.LOST:
        mark_failed(item.id, options.run_id, f"workflow {workflow_id} ended as {wf_status} while running")
        return None, "its workflow was lost; dead-lettered"
    return _start(item, options.model_copy(update={"rounds": rounds_override})), "started"


def _start(item: Item, options: RunOptions) -> durable.Handle:
    """Claim the item's next attempt and enqueue its workflow."""
    from agentsprint.runner.flow import item_workflow

    workflow_id, _ = runs.claim_attempt(current().store, item.id, item, options.run_id, options.sprint)
    return durable.enqueue(item_workflow, workflow_id, item.id, options)


def _merge_waiting(item_id: str, run_id: str, shadow: bool) -> str:
    """Merge approved work that waited for a clean tree: no workflow, no model call."""
    from agentsprint.runner import actions

    if shadow:
        return "approved, waiting to merge (a shadow run never merges)"
    rt = current()
    project = Project(rt.settings, rt.store, rt.workspace)
    status = actions.merge_waiting(project, item_id, run_id)
    rt.emit(item_id, status=status.value)
    return "merged the approved work (no model call)" if status is Status.DONE else f"merge: {status.value}"


def overlap_warnings(store: Store, run_id: str, items: list[Item]) -> list[str]:
    """One line naming the groups of this run's items whose scopes overlap (they may conflict on merge)."""
    from agentsprint.runner.conflicts import overlap_groups, overlapping_pairs
    from agentsprint.store.runs import record_warning

    pairs = overlapping_pairs(items)
    if not pairs:
        return []
    groups = overlap_groups(pairs)
    record_warning(store, run_id, "run.scope_overlap", {"groups": groups, "pairs": pairs})
    return ["overlapping scopes (merge order follows policy.precedence): " + "; ".join(", ".join(g) for g in groups)]


def check_base_branch(settings: Settings, workspace: Workspace) -> None:
    """A base branch that does not exist is a configuration error, not a failure of every item."""
    from agentsprint.config import ConfigError
    from agentsprint.gitrepo import WorkspaceError

    try:
        workspace.base_head()
    except WorkspaceError as exc:
        raise ConfigError(f"{settings.source}: run.base_branch: {settings.run.base_branch!r} is not a branch "
                          f"of {settings.root} ({exc})") from exc


def executor_for(settings: Settings) -> str:
    """"local" on SQLite (a restarted run recovers its own workflows); a unique id on a shared database.

    On PostgreSQL several `run` processes and workers share one queue: each needs its own executor id
    and a heartbeat, so a dead one's items are recovered by a live one instead of taken over by any
    process that happens to start.
    """
    return "local" if settings.database_url.startswith("sqlite") else new_executor_id()


def _heartbeat(executor_id: str) -> Heartbeat | None:
    from agentsprint.runner.worker import start_heartbeat

    return None if executor_id == "local" else start_heartbeat(executor_id)


def run_items(settings: Settings, ids: list[str] | None = None, *, sprint: str | None = None,
              parallel: int | None = None, shadow: bool = False, mode: str = "normal",
              progress: ProgressSink | None = None, notice: Callable[[str], None] | None = None,
              interrupt: threading.Event | None = None) -> RunReport:
    """Execute the selected items (default: every item that can run) and return their final statuses.

    `notice` gets the run's start-up warnings (overlapping scopes) before any item starts. One run per
    project: RunLocked (naming the holder) while another `agentsprint run` lives. When `interrupt` is
    set (Ctrl-C, SIGTERM), the run's items are frozen as `stopped` and it returns.
    """
    from agentsprint.runner.exclusive import one_run

    with one_run(settings):
        return _run_items(settings, ids, sprint=sprint, parallel=parallel, shadow=shadow, mode=mode,
                          progress=progress, notice=notice, interrupt=interrupt or threading.Event())


def _launch(settings: Settings, items: list[Item], sprint: str | None, progress: ProgressSink | None,
            parallel: int | None) -> Runtime:
    """This process's runtime, checked (base branch, prices), with DBOS launched and the workflow registered."""
    from agentsprint.runner import flow  # noqa: F401  (registers the workflow and its steps)

    runtime = build_runtime(settings, progress, executor_id=executor_for(settings))
    check_base_branch(settings, runtime.workspace)
    roles = ["supervisor", "coder", "qa"] + (["security"] if any(i.needs_security_review for i in items) else [])
    runtime.gateway.check_prices(roles, usd_budgets=any(i.budget.usd is not None for i in items) or bool(sprint))
    durable.launch(settings, executor_id=runtime.executor_id, parallel=parallel)
    notify.resume(settings, runtime.store)  # what a killed run did not deliver
    return runtime


def _run_items(settings: Settings, ids: list[str] | None, *, sprint: str | None, parallel: int | None,
               shadow: bool, mode: str, progress: ProgressSink | None, notice: Callable[[str], None] | None,
               interrupt: threading.Event) -> RunReport:
    from agentsprint.runner.flow import RunOptions
    from agentsprint.runner.preflight import preflight

    started = time.time()
    chosen = selection(settings, ids, sprint)
    items, all_items = chosen.items, chosen.all_items
    preflight(settings, items, ids, sprint)  # keys, prices, base branch, backlog, sandbox: before any spend
    runtime = _launch(settings, items, sprint, progress, parallel)
    executor_id = runtime.executor_id
    beat = _heartbeat(executor_id)
    report: RunReport | None = None
    try:
        run_id = runs.start_run(runtime.store, sprint=sprint, mode="shadow" if shadow else mode,
                                settings_hash=settings.fingerprint())
        report = RunReport(run_id=run_id, skipped=chosen.skipped,
                           warnings=overlap_warnings(runtime.store, run_id, items))
        for warning in report.warnings:
            if notice is not None:
                notice(warning)
        options = RunOptions(run_id=run_id, sprint=sprint, shadow=shadow)
        Scheduler(items, all_items, options, report, interrupt=interrupt).run()
        report.warnings += usage_anomalies(runtime.store, run_id)
        runs.finish_run(runtime.store, run_id, "interrupted" if interrupt.is_set() else "finished")
    finally:
        durable.shutdown(drain_seconds(report.results if report else None, interrupt))
        if beat is not None:
            beat.stopping.set()
            workers.retire(runtime.store, executor_id, handover=True)
    commit_stopped(stopped(report.results))
    report.seconds = round(time.time() - started, 2)
    return report


