"""What a run does with an item, given the item's live status and its workflow's: one table for the
in-process scheduler (`agentsprint run`) and the queue submission (`agentsprint run --submit`)."""

from __future__ import annotations

from enum import Enum

from agentsprint.domain import Status
from agentsprint.runner import durable


class Next(Enum):
    """The decision for one item."""

    MERGE = "merge"  # approved, its merge waited for a clean tree: merge it, no workflow
    SETTLED = "settled"  # done, dropped or awaiting a human review: nothing to run
    HUMAN = "human"  # escalated or failed: a human decides (escalations retry / drop)
    ATTACH = "attach"  # its workflow is still queued, delayed or running: wait for it, never start a second
    RESUME = "resume"  # stopped (or interrupted) with its workflow cancelled: resume after the last step
    LOST = "lost"  # running, but its workflow ended or vanished: nothing will finish it, dead-letter it
    START = "start"  # claim a new attempt and enqueue its workflow


def next_step(status: Status, workflow: str | None, *, merge_blocked: bool = False) -> Next:
    """The decision for an item with live `status` whose workflow has status `workflow` (None: none).

    `merge_blocked`: the item is awaiting_review because its approved merge waits for a clean tree.
    A DELAYED workflow is active (DBOS will still run it), like PENDING and ENQUEUED.
    """
    if status is Status.AWAITING_REVIEW and merge_blocked:
        return Next.MERGE
    if status in (Status.DONE, Status.DROPPED, Status.AWAITING_REVIEW):
        return Next.SETTLED
    if status in (Status.ESCALATED, Status.FAILED):
        return Next.HUMAN
    if durable.is_active(workflow):
        return Next.ATTACH
    if status in (Status.STOPPED, Status.RUNNING) and workflow == "CANCELLED":
        return Next.RESUME
    if status is Status.RUNNING:
        return Next.LOST
    return Next.START


def dependency_met(status: Status | None) -> bool:
    """Whether an item that another depends on lets it start: only once it is done (merged)."""
    return status is Status.DONE
