"""`agentsprint run`: pick items, start or resume their workflows on the queue, respect depends_on, wait."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel

from agentsprint import backlog, notify
from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.runner import runtime as rt_mod
from agentsprint.runner.actions import MERGE_BLOCKED
from agentsprint.runner.runtime import ProgressSink
from agentsprint.store import runs, workers
from agentsprint.store.ledger import usage_anomalies

if TYPE_CHECKING:
    from dbos import DBOSClient

    from agentsprint.runner.worker import Heartbeat
    from agentsprint.store import Store

DONE_LIKE = {Status.DONE}
WORKFLOW_NAME = "item_workflow"  # flow.item_workflow's registered name: the client enqueues it by name
STOP_DRAIN_SECONDS = 30.0  # after `agentsprint stop`, a step in flight gets this long to end and be recorded
INTERRUPT_DRAIN_SECONDS = 5.0  # after Ctrl-C / SIGTERM: a step in flight longer than this is left to the resume
SETTLED = {Status.DONE, Status.AWAITING_REVIEW, Status.ESCALATED, Status.FAILED, Status.STOPPED, Status.DROPPED}


class RunError(Exception):
    """The run cannot start (unknown item, invalid backlog entry); a usage error."""


RUNNABLE = {Status.TODO, Status.PLANNED, Status.RUNNING, Status.STOPPED}  # RUNNING: interrupted, resumed


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
class Selection:
    """The items a run executes, every valid item, and those it left out with why."""

    items: list[Item]
    all_items: dict[str, Item]
    skipped: dict[str, str] = field(default_factory=dict)


def select_items(settings: Settings, ids: list[str] | None, sprint: str | None) -> tuple[list[Item], dict[str, Item]]:
    """The items to run, in backlog order; raises RunError naming what is wrong."""
    chosen = selection(settings, ids, sprint)
    return chosen.items, chosen.all_items


def selection(settings: Settings, ids: list[str] | None, sprint: str | None) -> Selection:
    """Named items as given; otherwise (a sprint's, or every item) only those whose LIVE status can run."""
    loaded = backlog.load_backlog(settings.backlog_dir)
    wanted = list(ids or [])
    if sprint and not wanted:
        wanted = _sprint_items(settings, sprint, loaded.items)
    if not ids and not sprint:
        wanted = list(loaded.items)
    missing = [i for i in wanted if i not in loaded.items]
    if missing:
        problems = [str(p) for p in loaded.problems if any(m in str(p) for m in missing)]
        raise RunError(f"unknown or invalid item(s): {', '.join(missing)}" + "".join(f"\n  {p}" for p in problems))
    items = [loaded.items[i] for i in dict.fromkeys(wanted)]
    if ids:
        return Selection(items, loaded.items)
    why = _not_runnable(settings, items)
    return Selection([i for i in items if i.id not in why], loaded.items, why)


def _not_runnable(settings: Settings, items: list[Item]) -> dict[str, str]:
    """{item id: its live status} of the items a run cannot take (done, dropped, escalated, in review...)."""
    from agentsprint.store import Store

    store = Store(settings.database_url)
    try:
        states = runs.all_item_states(store)
    finally:
        store.close()
    why = {}
    for item in items:
        state = states.get(item.id)
        status = state.status if state else item.status
        waiting_merge = status is Status.AWAITING_REVIEW and state is not None and state.reason == MERGE_BLOCKED
        if status not in RUNNABLE and not waiting_merge:
            why[item.id] = status.value
    return why


def skipped_line(skipped: dict[str, str]) -> str:
    """`skipped 3 items: 2 escalated, 1 dropped` (most common reason first)."""
    from collections import Counter

    counts = Counter(skipped.values()).most_common()
    noun = "item" if len(skipped) == 1 else "items"
    return f"skipped {len(skipped)} {noun}: " + ", ".join(f"{n} {why}" for why, n in counts)


def _sprint_items(settings: Settings, sprint: str, known_ids: Collection[str]) -> list[str]:
    """The items of the sprint's file (unknown ids are errors at their line); else of its database row."""
    from agentsprint.backlog.sprints import find_sprint
    from agentsprint.store.sprints import sprint_items_at

    try:
        defined = find_sprint(settings.backlog_dir, sprint, known_ids)
    except backlog.BacklogError as exc:
        raise RunError(f"sprint {sprint!r} is not valid:\n{exc}") from None
    if defined is not None:
        return defined.items
    ids = sprint_items_at(settings.database_url, sprint)
    if ids is None:
        raise RunError(f"no sprint named {sprint!r} (create it with: agentsprint sprint new {sprint} ...)")
    return ids


@dataclass
class Scheduler:
    """Starts items whose dependencies are done and watches their workflows until all settle."""

    items: list[Item]
    backlog_items: dict[str, Item]
    options: dict[str, object]
    report: RunReport
    handles: dict[str, object] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    interrupt: threading.Event = field(default_factory=threading.Event)

    def run(self) -> RunReport:
        self.waiting = [i.id for i in self.items]
        while self.waiting or self.handles:
            if self.interrupt.is_set():
                self.stop_here()
                break
            self.start_ready()
            self.collect()
            if not self.handles and self.waiting and not self.ready():
                for item_id in self.waiting:
                    self.report.results[item_id] = self.status(item_id).value
                    self.report.notes[item_id] = "blocked: " + ", ".join(self.unmet(item_id))
                self.waiting = []
            time.sleep(0.05)
        return self.report

    def stop_here(self) -> None:
        """Interrupted: freeze this run's items at their next step (resumable) and note what is left."""
        logging.getLogger("dbos").disabled = True  # its notes on the cancelled workflows are not news here
        for item_id, handle in list(self.handles.items()):
            if stop_item(item_id, handle.get_workflow_id(), self.report.run_id):  # type: ignore[attr-defined]
                self.report.results[item_id] = Status.STOPPED.value
                self.report.notes[item_id] = "interrupted (resume with agentsprint run)"
                self.report.interrupted.append(item_id)
        self.report.interrupted += self.waiting
        self.handles, self.waiting = {}, []

    def status(self, item_id: str) -> Status:
        state = runs.item_state(rt_mod.current().store, item_id)
        return state.status if state else self.backlog_items[item_id].status

    def unmet(self, item_id: str) -> list[str]:
        deps = self.backlog_items[item_id].depends_on
        return [d for d in deps if d not in self.backlog_items or self.status(d) not in DONE_LIKE]

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
        state = runs.item_state(rt_mod.current().store, item_id)
        status = "queued" if note == "started" or state is None else state.status.value
        rt_mod.current().emit(item_id, status=status, round=state.round if state else 0)

    def collect(self) -> None:
        for item_id, handle in list(self.handles.items()):
            wf_status = handle.get_status().status  # type: ignore[attr-defined]
            if wf_status in ("PENDING", "ENQUEUED", "DELAYED"):
                continue
            del self.handles[item_id]
            if wf_status == "ERROR":
                mark_failed(item_id, self.report.run_id, _workflow_error(handle))
            self.report.results[item_id] = self.status(item_id).value
            if wf_status == "CANCELLED":
                self.report.notes[item_id] = "stopped (resume with agentsprint run)"
            elif wf_status == "SUCCESS" and self.options.get("shadow"):
                # the item is back to todo; report what the run would have done
                self.report.results[item_id] = str(handle.get_result())  # type: ignore[attr-defined]
                self.report.notes[item_id] = shadow_note(item_id, self.report.run_id)
            else:
                self.note_blocked_merge(item_id)

    def note_blocked_merge(self, item_id: str) -> None:
        state = runs.item_state(rt_mod.current().store, item_id)
        if state is not None and state.status is Status.AWAITING_REVIEW and state.reason == MERGE_BLOCKED:
            self.report.notes[item_id] = f"approved, not merged: {state.detail}"


def shadow_note(item_id: str, run_id: str) -> str:
    """What a shadow attempt left: nothing merged or charged, and the branch its work is archived on."""
    branch = runs.shadow_branch(rt_mod.current().store, item_id, run_id)
    kept = f"work archived on branch {branch}" if branch else "no work to keep"
    return f"shadow: nothing merged, item file and budgets untouched (spend under shadow:{run_id}:*); {kept}"


def _workflow_error(handle: object) -> str:
    try:
        handle.get_result()  # type: ignore[attr-defined]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "workflow ended in error"


def mark_failed(item_id: str, run_id: str, detail: str) -> None:
    """A workflow that died of an error outside the agents' control: dead-letter the item."""
    from agentsprint.domain import can_transition

    store = rt_mod.current().store
    state = runs.item_state(store, item_id)
    if state is None or not can_transition(state.status, Status.FAILED):
        return
    runs.escalate_item(store, item_id, run_id, "failed", detail, {"item_id": item_id, "error": detail},
                       to=Status.FAILED)
    notify.item_settled(rt_mod.current().settings, store, item_id, run_id)


def stop_item(item_id: str, workflow_id: str, run_id: str) -> bool:
    """Cancel an item's workflow (it ends at its next step) and mark the item stopped; False if it settled."""
    from dbos import DBOS

    from agentsprint.store.items import TransitionError

    if _wf_status(workflow_id) not in ("PENDING", "ENQUEUED", "DELAYED"):
        return False
    DBOS.cancel_workflow(workflow_id)
    try:
        runs.finish_item(rt_mod.current().store, item_id, run_id, Status.STOPPED, reason="interrupted")
    except TransitionError:  # its last step settled it (awaiting_review, done...) meanwhile
        return False
    return True


def start_item(item: Item, options: dict[str, object]) -> tuple[object | None, str]:
    """Enqueue a new attempt, resume a stopped one, or attach to one still pending; (handle, note)."""
    from dbos import DBOS, SetWorkflowID

    from agentsprint.runner.flow import RunOptions, item_workflow

    store = rt_mod.current().store
    state = runs.item_state(store, item.id)
    status = state.status if state else item.status
    workflow_id, rounds_override = runs.workflow_of(store, item.id)
    if status is Status.AWAITING_REVIEW and state is not None and state.reason == MERGE_BLOCKED:
        return None, _merge_waiting(item.id, str(options["run_id"]), bool(options.get("shadow")))
    if status in (Status.DONE, Status.DROPPED, Status.AWAITING_REVIEW):
        return None, f"already {status.value}"
    if status in (Status.ESCALATED, Status.FAILED):
        return None, f"{status.value}: see agentsprint escalations show {item.id}"
    wf_status = _wf_status(workflow_id)
    if status in (Status.PLANNED, Status.RUNNING) and wf_status in ("PENDING", "ENQUEUED"):
        # still queued or in flight from an interrupted run: claiming again would start a second attempt
        return DBOS.retrieve_workflow(workflow_id or ""), "resumed after interruption"
    if status in (Status.STOPPED, Status.RUNNING) and wf_status == "CANCELLED":
        runs.resume_item(store, item.id, str(options["run_id"]))
        return DBOS.resume_workflow(workflow_id or "", queue_name=rt_mod.QUEUE_NAME), "resumed"
    if status is Status.RUNNING:
        mark_failed(item.id, str(options["run_id"]), f"workflow {workflow_id} ended as {wf_status} while running")
        return None, "its workflow was lost; dead-lettered"
    workflow_id, _ = runs.claim_attempt(store, item.id, item, str(options["run_id"]), options.get("sprint"))  # type: ignore[arg-type]
    run_options = RunOptions(rounds=rounds_override, **options)  # type: ignore[arg-type]
    queue = DBOS.retrieve_queue(rt_mod.QUEUE_NAME)
    assert queue is not None, "the item queue is registered at launch"
    with SetWorkflowID(workflow_id):
        return queue.enqueue(item_workflow, item.id, run_options), "started"


def _merge_waiting(item_id: str, run_id: str, shadow: bool) -> str:
    """Merge approved work that waited for a clean tree: no workflow, no model call."""
    from agentsprint.runner import actions

    if shadow:
        return "approved, waiting to merge (a shadow run never merges)"
    rt = rt_mod.current()
    svc = actions.Services(rt.settings, rt.store, rt.workspace)
    status = actions.merge_waiting(svc, item_id, run_id)
    rt.emit(item_id, status=status.value)
    return "merged the approved work (no model call)" if status is Status.DONE else f"merge: {status.value}"


def _wf_status(workflow_id: str | None) -> str | None:
    from dbos import DBOS

    if not workflow_id:
        return None
    status = DBOS.get_workflow_status(workflow_id)
    return status.status if status else None


def overlap_warnings(store: object, run_id: str, items: list[Item]) -> list[str]:
    """One line naming the groups of this run's items whose scopes overlap (they may conflict on merge)."""
    from agentsprint.runner.conflicts import overlap_groups, overlapping_pairs
    from agentsprint.store.runs import record_warning

    pairs = overlapping_pairs(items)
    if not pairs:
        return []
    groups = overlap_groups(pairs)
    record_warning(store, run_id, "run.scope_overlap", {"groups": groups, "pairs": pairs})  # type: ignore[arg-type]
    return ["overlapping scopes (merge order follows policy.precedence): " + "; ".join(", ".join(g) for g in groups)]


def check_base_branch(settings: Settings, workspace: object) -> None:
    """A base branch that does not exist is a configuration error, not a failure of every item."""
    from agentsprint.config import ConfigError
    from agentsprint.workspace import WorkspaceError

    try:
        workspace.base_head()  # type: ignore[attr-defined]
    except WorkspaceError as exc:
        raise ConfigError(f"{settings.source}: run.base_branch: {settings.run.base_branch!r} is not a branch "
                          f"of {settings.root} ({exc})") from exc


def executor_for(settings: Settings) -> str:
    """"local" on SQLite (a restarted run recovers its own workflows); a unique id on a shared database.

    On PostgreSQL several `run` processes and workers share one queue: each needs its own executor id
    and a heartbeat, so a dead one's items are recovered by a live one instead of taken over by any
    process that happens to start.
    """
    return "local" if settings.database_url.startswith("sqlite") else rt_mod.new_executor_id()


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


def _run_items(settings: Settings, ids: list[str] | None, *, sprint: str | None, parallel: int | None,
               shadow: bool, mode: str, progress: ProgressSink | None, notice: Callable[[str], None] | None,
               interrupt: threading.Event) -> RunReport:
    from agentsprint.runner.preflight import preflight

    started = time.time()
    chosen = selection(settings, ids, sprint)
    items, all_items = chosen.items, chosen.all_items
    preflight(settings, items, ids, sprint)  # keys, prices, base branch, backlog, sandbox: before any spend
    executor_id = executor_for(settings)
    runtime = rt_mod.build_runtime(settings, progress, executor_id=executor_id)
    check_base_branch(settings, runtime.workspace)
    roles = ["supervisor", "coder", "qa"] + (["security"] if any(i.needs_security_review for i in items) else [])
    runtime.gateway.check_prices(roles, usd_budgets=any(i.budget.usd is not None for i in items) or bool(sprint))
    rt_mod.launch(settings, executor_id=executor_id, parallel=parallel)
    notify.resume(settings, runtime.store)  # what a killed run did not deliver
    beat = _heartbeat(executor_id)
    report: RunReport | None = None
    try:
        run_id = runs.start_run(runtime.store, sprint=sprint, mode="shadow" if shadow else mode)
        report = RunReport(run_id=run_id, skipped=chosen.skipped,
                           warnings=overlap_warnings(runtime.store, run_id, items))
        for warning in report.warnings:
            if notice is not None:
                notice(warning)
        options: dict[str, object] = {"run_id": run_id, "sprint": sprint, "shadow": shadow}
        Scheduler(items, all_items, options, report, interrupt=interrupt).run()
        report.warnings += usage_anomalies(runtime.store, run_id)
        runs.finish_run(runtime.store, run_id, "interrupted" if interrupt.is_set() else "finished")
    finally:
        rt_mod.shutdown(_drain_seconds(report, interrupt))
        if beat is not None:
            beat.stopping.set()
            workers.retire(runtime.store, executor_id, handover=True)
    commit_stopped(_stopped(report))
    report.seconds = round(time.time() - started, 2)
    return report


def _drain_seconds(report: RunReport | None, interrupt: threading.Event) -> float:
    """How long the steps in flight get to end and be recorded before DBOS shuts down."""
    if interrupt.is_set():
        return INTERRUPT_DRAIN_SECONDS
    return STOP_DRAIN_SECONDS if report is not None and _stopped(report) else 0.0


def _stopped(report: RunReport) -> list[str]:
    return [item_id for item_id, status in report.results.items() if status == Status.STOPPED.value]


def commit_stopped(item_ids: list[str]) -> None:
    """Commit what the steps in flight at `agentsprint stop` wrote after it committed (they end first)."""
    from agentsprint.workspace import WorkspaceError

    for item_id in item_ids:
        with contextlib.suppress(WorkspaceError):  # never started: no worktree, nothing to preserve
            rt_mod.current().workspace.commit_all(item_id, f"agentsprint: {item_id} stopped (work preserved)")


@dataclass
class Submission:
    """What `run --submit` enqueued for the workers, and what it left out and why."""

    run_id: str
    submitted: dict[str, str] = field(default_factory=dict)  # item id -> workflow id
    skipped: dict[str, str] = field(default_factory=dict)  # item id -> why


def submit(settings: Settings, ids: list[str] | None = None, *, sprint: str | None = None,
           shadow: bool = False) -> Submission:
    """Enqueue the selected items for `agentsprint worker` processes and return without executing them."""
    from dbos import DBOSClient

    from agentsprint.store import Store

    items, all_items = select_items(settings, ids, sprint)
    url = rt_mod.system_database_url(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    rt_mod.open_system_database(url, settings.run.parallel)  # a first submit may precede every worker
    store = Store(settings.database_url)
    client = DBOSClient(system_database_url=url, application_name=rt_mod.APP_NAME, serializer=rt_mod.serializer())
    try:
        run_id = runs.start_run(store, sprint=sprint, mode="shadow" if shadow else "normal")
        found = Submission(run_id=run_id)
        options: dict[str, object] = {"run_id": run_id, "sprint": sprint, "shadow": shadow}
        for item in items:
            _submit_one(client, store, item, all_items, options, found)
        runs.finish_run(store, run_id, "submitted")  # the workers execute it; its items' transitions say when
        return found
    finally:
        client.destroy()
        store.close()


def submit_items(settings: Settings, ids: list[str] | None = None, *, sprint: str | None = None,
                 shadow: bool = False) -> list[str]:
    """Enqueue the selected items for the workers; returns the workflow ids enqueued or resumed."""
    return list(submit(settings, ids, sprint=sprint, shadow=shadow).submitted.values())


def _submit_one(client: DBOSClient, store: Store, item: Item, all_items: dict[str, Item],
                options: dict[str, object], found: Submission) -> None:
    """Enqueue a new attempt at `item`, or resume its stopped one; record why not otherwise."""
    state = runs.item_state(store, item.id)
    status = state.status if state else item.status
    workflow_id, rounds_override = runs.workflow_of(store, item.id)
    wf_status = _client_wf_status(client, workflow_id)
    blocked = [d for d in item.depends_on if _status_of(store, all_items, d) not in DONE_LIKE]
    if status in SETTLED - {Status.STOPPED}:
        found.skipped[item.id] = f"already {status.value}"
    elif wf_status in ("PENDING", "ENQUEUED", "DELAYED"):
        found.skipped[item.id] = "already queued or running"
    elif workflow_id and status in (Status.STOPPED, Status.RUNNING) and wf_status == "CANCELLED":
        runs.resume_item(store, item.id, str(options["run_id"]))
        client.resume_workflow(workflow_id, queue_name=rt_mod.QUEUE_NAME)
        found.submitted[item.id] = workflow_id
    elif status is Status.RUNNING:
        found.skipped[item.id] = (f"running, but its workflow {workflow_id} is {wf_status}: "
                                  f"`agentsprint run --item {item.id}` dead-letters it")
    elif blocked:
        found.skipped[item.id] = "blocked: " + ", ".join(blocked) + " not done (submit it again once they are)"
    else:
        found.submitted[item.id] = _enqueue(client, store, item, options, rounds_override)


def _enqueue(client: DBOSClient, store: Store, item: Item, options: dict[str, object], rounds: int | None) -> str:
    """Claim the item's next attempt and put its workflow on the item queue, by name."""
    from dbos import EnqueueOptions

    from agentsprint.runner.flow import RunOptions

    sprint = options.get("sprint")
    workflow_id, _ = runs.claim_attempt(store, item.id, item, str(options["run_id"]),
                                        sprint if isinstance(sprint, str) else None)
    enqueue: EnqueueOptions = {"workflow_name": WORKFLOW_NAME, "queue_name": rt_mod.QUEUE_NAME,
                               "workflow_id": workflow_id, "app_version": rt_mod.WORKFLOW_VERSION}
    client.enqueue(enqueue, item.id, RunOptions(rounds=rounds, **options))  # type: ignore[arg-type]
    return workflow_id


def _client_wf_status(client: DBOSClient, workflow_id: str | None) -> str | None:
    from dbos._error import DBOSNonExistentWorkflowError

    if not workflow_id:
        return None
    try:
        return str(client.retrieve_workflow(workflow_id).get_status().status)
    except DBOSNonExistentWorkflowError:
        return None


def _status_of(store: Store, all_items: dict[str, Item], item_id: str) -> Status | None:
    state = runs.item_state(store, item_id)
    if state is not None:
        return state.status
    return all_items[item_id].status if item_id in all_items else None
