"""The kill switch: freeze every running item at its next step boundary, work committed, resumable."""

from __future__ import annotations

import contextlib

from agentsprint.config import Settings
from agentsprint.domain import Status
from agentsprint.runner.actions import open_services
from agentsprint.runner.runtime import serializer, system_database_url
from agentsprint.store import runs
from agentsprint.store.items import TransitionError

ACTIVE = ("PENDING", "ENQUEUED", "DELAYED")


def stop_all(settings: Settings, who: str = "human") -> list[str]:
    """Cancel the workflows of running and queued items and mark them stopped; returns their ids."""
    from dbos import DBOSClient

    svc = open_services(settings)
    client = DBOSClient(system_database_url=system_database_url(settings), serializer=serializer())
    stopped: list[str] = []
    try:
        for state in runs.all_item_states(svc.store).values():
            if state.status not in (Status.RUNNING, Status.PLANNED):
                continue
            workflow_id, _ = runs.workflow_of(svc.store, state.item_id)
            if not workflow_id or _status(client, workflow_id) not in ACTIVE:
                continue
            client.cancel_workflow(workflow_id or "")
            try:
                runs.finish_item(svc.store, state.item_id, "", Status.STOPPED, reason="stopped", actor=who)
            except TransitionError:  # its last step settled it (awaiting_review, done...) since we read it
                continue
            with contextlib.suppress(Exception):  # no worktree yet (never started): nothing to preserve
                svc.workspace.commit_all(state.item_id, f"agentsprint: {state.item_id} stopped (work preserved)")
            stopped.append(state.item_id)
    finally:
        client.destroy()
        svc.store.close()
    return stopped


def _status(client: object, workflow_id: str) -> str | None:
    from dbos._error import DBOSNonExistentWorkflowError

    try:
        return client.retrieve_workflow(workflow_id).get_status().status  # type: ignore[attr-defined]
    except DBOSNonExistentWorkflowError:
        return None
