"""Freezing a run's items when it is interrupted (Ctrl-C, SIGTERM) or `agentsprint stop` reaches them:
cancel the workflow, mark the item stopped, let the step in flight drain, commit what it wrote."""

from __future__ import annotations

import contextlib
import threading

from agentsprint.domain import Status
from agentsprint.runner import durable
from agentsprint.runner.runtime import current
from agentsprint.store import runs

STOP_DRAIN_SECONDS = 30.0  # after `agentsprint stop`, a step in flight gets this long to end and be recorded
INTERRUPT_DRAIN_SECONDS = 5.0  # after Ctrl-C / SIGTERM: a step in flight longer than this is left to the resume


def stop_item(item_id: str, workflow_id: str, run_id: str) -> bool:
    """Cancel an item's workflow (it ends at its next step) and mark the item stopped; False if it settled."""
    from agentsprint.store.items import TransitionError

    if not durable.is_active(durable.status(workflow_id)):
        return False
    durable.cancel(workflow_id)
    try:
        runs.finish_item(current().store, item_id, run_id, Status.STOPPED, reason="interrupted")
    except TransitionError:  # its last step settled it (awaiting_review, done...) meanwhile
        return False
    return True


def drain_seconds(results: dict[str, str] | None, interrupt: threading.Event) -> float:
    """How long the steps in flight get to end and be recorded before DBOS shuts down."""
    if interrupt.is_set():
        return INTERRUPT_DRAIN_SECONDS
    return STOP_DRAIN_SECONDS if results is not None and stopped(results) else 0.0


def stopped(results: dict[str, str]) -> list[str]:
    """The items a run's results {item id: status} report as stopped."""
    return [item_id for item_id, status in results.items() if status == Status.STOPPED.value]


def commit_stopped(item_ids: list[str]) -> None:
    """Commit what the steps in flight at `agentsprint stop` wrote after it committed (they end first)."""
    from agentsprint.gitrepo import WorkspaceError

    for item_id in item_ids:
        with contextlib.suppress(WorkspaceError):  # never started: no worktree, nothing to preserve
            current().workspace.commit_all(item_id, f"agentsprint: {item_id} stopped (work preserved)")
