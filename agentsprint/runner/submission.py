"""`agentsprint run --submit`: put the selected items on the queue for `agentsprint worker` processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.runner import durable
from agentsprint.runner.decision import Next, dependency_met, next_step
from agentsprint.runner.selection import select_items
from agentsprint.store import Store, runs

if TYPE_CHECKING:
    from agentsprint.runner.flow import RunOptions


@dataclass
class Submission:
    """What `run --submit` enqueued for the workers, and what it left out and why."""

    run_id: str
    submitted: dict[str, str] = field(default_factory=dict)  # item id -> workflow id
    skipped: dict[str, str] = field(default_factory=dict)  # item id -> why


def submit(settings: Settings, ids: list[str] | None = None, *, sprint: str | None = None,
           shadow: bool = False) -> Submission:
    """Enqueue the selected items for `agentsprint worker` processes and return without executing them."""
    from agentsprint.runner.flow import RunOptions

    items, all_items = select_items(settings, ids, sprint)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    durable.open_system_database(durable.system_database_url(settings), settings.run.parallel)  # may precede workers
    store = Store(settings.database_url)
    try:
        with durable.client(settings) as client:
            run_id = runs.start_run(store, sprint=sprint, mode="shadow" if shadow else "normal",
                                    settings_hash=settings.fingerprint())
            found = Submission(run_id=run_id)
            options = RunOptions(run_id=run_id, sprint=sprint, shadow=shadow)
            for item in items:
                _submit_one(client, store, item, all_items, options, found)
            runs.finish_run(store, run_id, "submitted")  # the workers execute it; its items' transitions say when
            return found
    finally:
        store.close()


def submit_items(settings: Settings, ids: list[str] | None = None, *, sprint: str | None = None,
                 shadow: bool = False) -> list[str]:
    """Enqueue the selected items for the workers; returns the workflow ids enqueued or resumed."""
    return list(submit(settings, ids, sprint=sprint, shadow=shadow).submitted.values())


def _submit_one(client: durable.Client, store: Store, item: Item, all_items: dict[str, Item],
                options: RunOptions, found: Submission) -> None:
    """Enqueue a new attempt at `item`, or resume its stopped one; record why not otherwise."""
    state = runs.item_state(store, item.id)
    status = state.status if state else item.status
    workflow_id, rounds_override = runs.workflow_of(store, item.id)
    wf_status = client.status(workflow_id)
    decision = next_step(status, wf_status)
    blocked = [d for d in item.depends_on if not dependency_met(_status_of(store, all_items, d))]
    if decision in (Next.SETTLED, Next.HUMAN):
        found.skipped[item.id] = f"already {status.value}"
    elif decision is Next.ATTACH:
        found.skipped[item.id] = "already queued or running"
    elif decision is Next.RESUME and workflow_id:
        runs.resume_item(store, item.id, options.run_id)
        client.resume(workflow_id)
        found.submitted[item.id] = workflow_id
    elif decision is Next.LOST:
        found.skipped[item.id] = (f"running, but its workflow {workflow_id} is {wf_status}: "
                                  f"`agentsprint run --item {item.id}` dead-letters it")
    elif blocked:
        found.skipped[item.id] = "blocked: " + ", ".join(blocked) + " not done (submit it again once they are)"
    else:
        found.submitted[item.id] = _enqueue(client, store, item, options.model_copy(update={"rounds": rounds_override}))


def _enqueue(client: durable.Client, store: Store, item: Item, options: RunOptions) -> str:
    """Claim the item's next attempt and put its workflow on the item queue, by name."""
    workflow_id, _ = runs.claim_attempt(store, item.id, item, options.run_id, options.sprint)
    client.enqueue(workflow_id, item.id, options)
    return workflow_id


def _status_of(store: Store, all_items: dict[str, Item], item_id: str) -> Status | None:
    state = runs.item_state(store, item_id)
    if state is not None:
        return state.status
    return all_items[item_id].status if item_id in all_items else None
