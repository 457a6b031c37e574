"""The kill switch: freeze every running item at its next step boundary, work committed, resumable."""

from __future__ import annotations

import contextlib

from agentsprint.config import Settings
from agentsprint.domain import Status
from agentsprint.runner import durable
from agentsprint.runner.settle import Services, open_services
from agentsprint.store import runs
from agentsprint.store.items import TransitionError


def stop_all(settings: Settings, who: str = "human") -> list[str]:
    """Cancel the workflows of running and queued items and mark them stopped; returns their ids."""
    svc = open_services(settings)
    try:
        with durable.client(settings) as client:
            states = runs.all_item_states(svc.store).values()
            return [s.item_id for s in states
                    if s.status in (Status.RUNNING, Status.PLANNED) and _stop(svc, client, s.item_id, who)]
    finally:
        svc.store.close()


def _stop(svc: Services, client: durable.Client, item_id: str, who: str) -> bool:
    """Cancel the item's workflow if it is still active and mark the item stopped; False if it was not."""
    workflow_id, _ = runs.workflow_of(svc.store, item_id)
    if not workflow_id or not durable.is_active(client.status(workflow_id)):
        return False
    client.cancel(workflow_id)
    try:
        runs.finish_item(svc.store, item_id, "", Status.STOPPED, reason="stopped", actor=who)
    except TransitionError:  # its last step settled it (awaiting_review, done...) since we read it
        return False
    with contextlib.suppress(Exception):  # no worktree yet (never started): nothing to preserve
        svc.workspace.commit_all(item_id, f"agentsprint: {item_id} stopped (work preserved)")
    return True
