"""The kill switch: freeze every running item at its next step boundary, work committed, resumable."""

from __future__ import annotations

import contextlib

from agentsprint.config import Settings
from agentsprint.domain import Status
from agentsprint.runner import durable
from agentsprint.runner.settle import Project, open_project
from agentsprint.store import runs
from agentsprint.store.items import TransitionError


def stop_all(settings: Settings, who: str | None = None) -> list[str]:
    """Cancel the workflows of running and queued items and mark them stopped; returns their ids.

    `who` is the person (default: the git identity); the transitions record `human:<who>`.
    """
    from agentsprint.runner.deciders import person

    actor = f"human:{person(settings, who)}"
    project = open_project(settings)
    try:
        with durable.client(settings) as client:
            states = runs.all_item_states(project.store).values()
            return [s.item_id for s in states
                    if s.status in (Status.RUNNING, Status.PLANNED) and _stop(project, client, s.item_id, actor)]
    finally:
        project.store.close()


def _stop(project: Project, client: durable.Client, item_id: str, who: str) -> bool:
    """Cancel the item's workflow if it is still active and mark the item stopped; False if it was not."""
    workflow_id, _ = runs.workflow_of(project.store, item_id)
    if not workflow_id or not durable.is_active(client.status(workflow_id)):
        return False
    client.cancel(workflow_id)
    try:
        runs.finish_item(project.store, item_id, "", Status.STOPPED, reason="stopped", actor=who)
    except TransitionError:  # its last step settled it (awaiting_review, done...) since we read it
        return False
    with contextlib.suppress(Exception):  # no worktree yet (never started): nothing to preserve
        project.workspace.commit_all(item_id, f"agentsprint: {item_id} stopped (work preserved)")
    return True
