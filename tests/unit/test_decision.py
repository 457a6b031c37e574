"""The run's decision table: what `agentsprint run` and `run --submit` do with an item, given its live
status and its workflow's, as one table (both use `decision.next_step`)."""

from __future__ import annotations

import pytest

from agentsprint.domain import Status
from agentsprint.runner.decision import Next, dependency_met, next_step

S = Status
ACTIVE = ("PENDING", "ENQUEUED", "DELAYED")
ENDED = (None, "SUCCESS", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")

TABLE = [
    # (item status, workflow status, merge blocked, decision)
    *[(S.AWAITING_REVIEW, wf, True, Next.MERGE) for wf in (None, "SUCCESS")],
    *[(s, wf, False, Next.SETTLED) for s in (S.DONE, S.DROPPED, S.AWAITING_REVIEW)
      for wf in (None, "SUCCESS", *ACTIVE)],
    *[(s, wf, False, Next.HUMAN) for s in (S.ESCALATED, S.FAILED) for wf in (None, "ERROR", "CANCELLED", *ACTIVE)],
    # a workflow that will still run is never started twice, whatever the item's status says
    *[(s, wf, False, Next.ATTACH) for s in (S.TODO, S.PLANNED, S.RUNNING, S.STOPPED) for wf in ACTIVE],
    *[(s, "CANCELLED", False, Next.RESUME) for s in (S.STOPPED, S.RUNNING)],
    *[(S.RUNNING, wf, False, Next.LOST) for wf in ENDED],
    *[(s, wf, False, Next.START) for s in (S.TODO, S.PLANNED) for wf in (*ENDED, "CANCELLED")],
    *[(S.STOPPED, wf, False, Next.START) for wf in ENDED],
]


@pytest.mark.parametrize(("status", "workflow", "merge_blocked", "expected"), TABLE,
                         ids=[f"{s.value}-{w}-{'blocked' if b else 'free'}" for s, w, b, _ in TABLE])
def test_next_step(status: Status, workflow: str | None, merge_blocked: bool, expected: Next) -> None:
    assert next_step(status, workflow, merge_blocked=merge_blocked) is expected


def test_a_delayed_workflow_of_a_running_item_is_attached_to_not_dead_lettered() -> None:
    """DBOS still runs a DELAYED workflow: the scheduler once dead-lettered it while the submission waited."""
    assert next_step(Status.RUNNING, "DELAYED") is Next.ATTACH


def test_the_table_covers_every_status() -> None:
    assert {row[0] for row in TABLE} == set(Status)


def test_only_a_done_dependency_is_met() -> None:
    assert [s for s in Status if dependency_met(s)] == [Status.DONE]
    assert not dependency_met(None)
