"""Runs, rounds, escalations and reviews: what the runner and the review inbox record."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from agentsprint.domain import Item, Status
from agentsprint.store import Store
from agentsprint.store.events import append_event
from agentsprint.store.items import ItemState, _state, get_state, transition
from agentsprint.store.records import EscalationPackage, RoleSpend, RoundRecord, RoundSpend
from agentsprint.store.tables import (
    EscalationRow,
    EventRow,
    ItemStateRow,
    ItemTransitionRow,
    ModelCallRow,
    ReviewRow,
    RunRow,
)


def start_run(store: Store, *, sprint: str | None, mode: str, settings_hash: str | None = None) -> str:
    """Record a new run and return its id; its `run.start` event carries the effective settings' hash."""
    run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    with store.session() as session:
        session.add(RunRow(id=run_id, started_at=time.time(), sprint=sprint, mode=mode,
                           host=socket.gethostname(), pid=os.getpid()))
        append_event(session, "run.start", run_id=run_id,
                     data={"sprint": sprint, "mode": mode, "settings_sha256": settings_hash})
    return run_id


def finish_run(store: Store, run_id: str, status: str) -> None:
    with store.session() as session:
        row = session.get(RunRow, run_id)
        if row is not None:
            row.finished_at, row.status = time.time(), status
            session.add(row)
        append_event(session, "run.finish", run_id=run_id, data={"status": status})


def record_warning(store: Store, run_id: str | None, kind: str, data: dict[str, Any],
                   item_id: str | None = None) -> None:
    with store.session() as session:
        append_event(session, kind, item_id=item_id, run_id=run_id, data=data)


def item_state(store: Store, item_id: str) -> ItemState | None:
    with store.session() as session:
        return get_state(session, item_id)


def all_item_states(store: Store) -> dict[str, ItemState]:
    with store.session() as session:
        return {row.item_id: _state(row) for row in session.exec(select(ItemStateRow)).all()}


def workflow_of(store: Store, item_id: str) -> tuple[str | None, int | None]:
    """(workflow id, round-cap override of the next attempt) of an item."""
    with store.session() as session:
        row = session.get(ItemStateRow, item_id)
        if row is None:
            return None, None
        return row.workflow_id, row.rounds_override


def claim_attempt(store: Store, item_id: str, item: Item, run_id: str, sprint: str | None) -> tuple[str, int]:
    """Give the item a new workflow id (next attempt), moving it to planned; returns (workflow id, attempt)."""
    with store.session() as session:
        transition(session, item_id, Status.PLANNED, actor="runner", run_id=run_id, item=item, sprint=sprint,
                   initial=item.status)
        row = session.get(ItemStateRow, item_id)
        assert row is not None
        row.attempt += 1
        row.workflow_id = f"{item_id}:{row.attempt}"
        session.add(row)
        return row.workflow_id, row.attempt


@dataclass
class ItemStart:
    """What an item's workflow starts from: its status and round, or that another execution has it (skip)."""

    status: Status
    round: int
    findings: list[str] = field(default_factory=list)
    started_at: float = 0.0
    skip: bool = False
    scopes: list[str] = field(default_factory=list)  # budget scopes every call of this attempt is charged to


Begin = ItemStart
"""The name `begin` step outputs recorded before the rename were pickled under (a workflow resumed after an upgrade)."""


def begin_item(store: Store, item: Item, run_id: str, workflow_id: str, actor: str = "runner",
               shadow: bool = False) -> ItemStart:
    """Mark the item running for this workflow (idempotent for a replay of the same workflow).

    A shadow attempt leaves the findings and round cap of a retry for the next real attempt.
    """
    with store.session() as session:
        row = session.get(ItemStateRow, item.id)
        if row is not None and row.workflow_id not in (None, workflow_id):
            return ItemStart(status=Status(row.status), round=row.round, skip=True)
        current = Status(row.status) if row else item.status
        if current in (Status.DONE, Status.DROPPED, Status.AWAITING_REVIEW):
            return ItemStart(status=current, round=row.round if row else 0, skip=True)
        findings = json.loads(row.pending_findings or "[]") if row else []
        transition(session, item.id, Status.RUNNING, actor=actor, run_id=run_id, item=item,
                   branch=f"agentsprint/{item.id}")
        row = session.get(ItemStateRow, item.id)
        assert row is not None
        row.workflow_id = workflow_id
        if not shadow:
            row.pending_findings, row.rounds_override = None, None
        session.add(row)
        return ItemStart(status=Status.RUNNING, round=row.round, findings=findings,
                     started_at=time.time() - row.paused_seconds)  # on the item's clock (see clock())


def record_execution(store: Store, item_id: str, run_id: str, workflow_id: str, actor: str) -> None:
    """An execution of the item's workflow started in this process (first run, or recovery elsewhere)."""
    with store.session() as session:
        append_event(session, "item.execution", item_id=item_id, run_id=run_id, actor=actor,
                     data={"workflow_id": workflow_id, "host": socket.gethostname(), "pid": os.getpid()})


def active_in_run(store: Store, run_id: str) -> dict[str, Status]:
    """Items that entered a status during `run_id` and are still planned or running."""
    with store.session() as session:
        ids = set(session.exec(select(ItemTransitionRow.item_id).where(ItemTransitionRow.run_id == run_id)).all())
        rows = session.exec(select(ItemStateRow).where(col(ItemStateRow.item_id).in_(ids))).all() if ids else []
        return {r.item_id: Status(r.status) for r in rows
                if r.status in (Status.PLANNED.value, Status.RUNNING.value)}


def resume_item(store: Store, item_id: str, run_id: str) -> None:
    """Move a stopped item back to running, adding the time it spent stopped to its paused time."""
    with store.session() as session:
        row = session.get(ItemStateRow, item_id)
        stopped_at = session.exec(
            select(ItemTransitionRow.at).where(ItemTransitionRow.item_id == item_id,
                                               ItemTransitionRow.to_status == Status.STOPPED.value)
            .order_by(col(ItemTransitionRow.at).desc())).first()
        if row is not None and row.status == Status.STOPPED.value and stopped_at is not None:
            row.paused_seconds += max(0.0, time.time() - stopped_at)
            session.add(row)
        transition(session, item_id, Status.RUNNING, actor="runner", run_id=run_id, reason="resumed")


def clock(store: Store, item_id: str | None) -> float:
    """The item's clock: now, minus the time it spent stopped (what its wall-clock budget is checked with)."""
    if not item_id:
        return time.time()
    with store.session() as session:
        row = session.get(ItemStateRow, item_id)
        return time.time() - (row.paused_seconds if row else 0.0)


def set_round(store: Store, item_id: str, round_no: int) -> None:
    with store.session() as session:
        row = session.get(ItemStateRow, item_id)
        if row is not None:
            row.round = round_no
            session.add(row)


def record_round(store: Store, item_id: str, run_id: str, record: RoundRecord) -> None:
    """One QA round: plan, diff, gate results, verdict and findings (the escalation package's source)."""
    with store.session() as session:
        append_event(session, "round", item_id=item_id, run_id=run_id, actor="runner", data=record.to_json())


def rounds_of(store: Store, item_id: str) -> list[RoundRecord]:
    """The item's recorded rounds, oldest first."""
    with store.session() as session:
        rows = session.exec(
            select(EventRow).where(EventRow.item_id == item_id, EventRow.kind == "round").order_by(col(EventRow.id))
        ).all()
        return [RoundRecord.model_validate_json(r.data_json) for r in rows]


def tool_calls_of(store: Store, item_id: str, round_no: int) -> list[dict[str, Any]]:
    """The tool calls the agents made in one round of an item, in order (as recorded, outputs shortened)."""
    with store.session() as session:
        rows = session.exec(select(EventRow).where(EventRow.item_id == item_id, EventRow.kind == "tool.call")
                            .order_by(col(EventRow.id))).all()
        calls = [json.loads(r.data_json) for r in rows]
    return [call for call in calls if call.get("round") == round_no]


def spend_of_round(store: Store, item_id: str, round_no: int) -> RoundSpend:
    """Tokens and dollars of one round of an item (settled, and reserved for calls in flight)."""
    with store.session() as session:
        row = session.exec(
            select(func.count(), func.sum(ModelCallRow.input_tokens),
                   func.sum(ModelCallRow.output_tokens), func.sum(ModelCallRow.usd))
            .where(ModelCallRow.item_id == item_id, ModelCallRow.round == round_no)
        ).one()
    return RoundSpend(calls=row[0], input_tokens=row[1] or 0, output_tokens=row[2] or 0,
                      usd=round(float(row[3] or 0.0), 6))


def spend_by_role(store: Store, item_id: str) -> list[RoleSpend]:
    """Settled (and in-flight reserved) spend of an item per role and model."""
    with store.session() as session:
        rows = session.exec(
            select(ModelCallRow.role, ModelCallRow.model, func.count(),  # type: ignore[call-overload]
                   func.sum(ModelCallRow.input_tokens), func.sum(ModelCallRow.cached_input_tokens),
                   func.sum(ModelCallRow.output_tokens), func.sum(ModelCallRow.usd))
            .where(ModelCallRow.item_id == item_id)
            .group_by(ModelCallRow.role, ModelCallRow.model)
        ).all()
    return [RoleSpend(role=r[0], model=r[1], calls=r[2], input_tokens=r[3] or 0, cached_input_tokens=r[4] or 0,
                      output_tokens=r[5] or 0, usd=round(float(r[6] or 0.0), 6)) for r in rows]


def finish_item(store: Store, item_id: str, run_id: str, to: Status, *, reason: str | None = None,
                detail: str | None = None, actor: str = "runner") -> None:
    """Move a running item to its end state of this attempt (no-op when it is already there)."""
    with store.session() as session:
        transition(session, item_id, to, actor=actor, run_id=run_id, reason=reason, detail=detail)


def escalate_item(store: Store, item_id: str, run_id: str, reason: str, detail: str,
                  package: EscalationPackage | None, to: Status = Status.ESCALATED) -> int:
    """Record the escalation with its package and move the item to escalated (or failed)."""
    with store.session() as session:
        state = get_state(session, item_id)
        if state is not None and state.status == to:
            existing = session.exec(select(EscalationRow).where(EscalationRow.item_id == item_id,
                                                                col(EscalationRow.resolved_at).is_(None))).first()
            if existing is not None:
                return existing.id or 0
        stored = json.dumps(package.to_json() if package else {})
        row = EscalationRow(item_id=item_id, reason=reason, detail=detail, package_json=stored, created_at=time.time())
        session.add(row)
        session.flush()
        transition(session, item_id, to, actor="runner", run_id=run_id, reason=reason, detail=detail)
        append_event(session, "escalation", item_id=item_id, run_id=run_id,
                     data={"reason": reason, "detail": detail, "escalation_id": row.id})
        return row.id or 0


@dataclass(frozen=True)
class Escalation:
    id: int
    item_id: str
    reason: str
    detail: str
    created_at: float
    resolved_at: float | None
    resolution: str | None
    package: EscalationPackage | None
    """None for an escalation recorded without one."""

    def to_json(self) -> dict[str, Any]:
        """What `escalation show --json` prints."""
        return {"id": self.id, "item_id": self.item_id, "reason": self.reason, "detail": self.detail,
                "created_at": self.created_at, "resolved_at": self.resolved_at, "resolution": self.resolution,
                "package": self.package.to_json() if self.package else {}}


def _escalation(row: EscalationRow) -> Escalation:
    stored = json.loads(row.package_json)
    package = EscalationPackage.model_validate(stored) if stored else None
    return Escalation(row.id or 0, row.item_id, row.reason, row.detail, row.created_at, row.resolved_at,
                      row.resolution, package)


def open_escalations(store: Store, *, failed: bool | None = None) -> list[Escalation]:
    """Unresolved escalations; failed=True only the dead-letter list, False only real escalations."""
    with store.session() as session:
        query = select(EscalationRow).where(col(EscalationRow.resolved_at).is_(None))
        if failed is True:
            query = query.where(EscalationRow.reason == "failed")
        elif failed is False:
            query = query.where(EscalationRow.reason != "failed")
        return [_escalation(r) for r in session.exec(query.order_by(col(EscalationRow.id))).all()]


def latest_escalation(store: Store, item_id: str) -> Escalation | None:
    with store.session() as session:
        row = session.exec(select(EscalationRow).where(EscalationRow.item_id == item_id)
                           .order_by(col(EscalationRow.id).desc())).first()
        return _escalation(row) if row else None


def hold_merge(store: Store, item_id: str, run_id: str, reason: str, detail: str, actor: str = "runner") -> None:
    """An approved item whose merge was refused (the user's uncommitted files) waits in awaiting_review."""
    with store.session() as session:
        row = session.get(ItemStateRow, item_id)
        if row is None or row.status != Status.AWAITING_REVIEW.value:
            transition(session, item_id, Status.AWAITING_REVIEW, actor=actor, run_id=run_id or None, reason=reason,
                       detail=detail)
            return
        row.reason, row.detail, row.updated_at = reason, detail, time.time()
        session.add(row)
        append_event(session, "item.merge_blocked", item_id=item_id, run_id=run_id or None, actor=actor,
                     data={"reason": reason, "detail": detail})


def shadow_branch(store: Store, item_id: str, run_id: str) -> str | None:
    """The branch a shadow attempt of `run_id` archived its work on (None when it had none)."""
    with store.session() as session:
        rows = session.exec(select(EventRow.data_json).where(EventRow.item_id == item_id, EventRow.run_id == run_id,
                                                             EventRow.kind == "shadow.result")).all()
    found = [json.loads(row).get("branch") for row in rows]
    return next((branch for branch in reversed(found) if branch), None)


def end_shadow(store: Store, item_id: str, run_id: str, outcome: str, branch: str | None,
               round_before: int = 0) -> None:
    """A shadow attempt is over: record what it would have done; the item goes back to todo at its old round."""
    with store.session() as session:
        for row in session.exec(select(EscalationRow).where(EscalationRow.item_id == item_id,
                                                            col(EscalationRow.resolved_at).is_(None))).all():
            row.resolved_at, row.resolution = time.time(), "shadow"
            session.add(row)
        append_event(session, "shadow.result", item_id=item_id, run_id=run_id,
                     data={"outcome": outcome, "branch": branch})
        transition(session, item_id, Status.TODO, actor="runner", run_id=run_id, reason=f"shadow: {outcome}",
                   detail=f"work kept on {branch}" if branch else "no work to keep", round=round_before)


def resolve_escalation(store: Store, item_id: str, resolution: str, findings: list[str], actor: str,
                       rounds: int | None = None) -> None:
    """Close an item's open escalation and queue it for another attempt with `findings`."""
    with store.session() as session:
        for row in session.exec(select(EscalationRow).where(EscalationRow.item_id == item_id,
                                                            col(EscalationRow.resolved_at).is_(None))).all():
            row.resolved_at, row.resolution = time.time(), resolution
            session.add(row)
        target = Status.DROPPED if resolution == "dropped" else Status.PLANNED
        transition(session, item_id, target, actor=actor, reason=resolution)
        state_row = session.get(ItemStateRow, item_id)
        if state_row is not None and target is Status.PLANNED:
            state_row.pending_findings = json.dumps(findings)
            state_row.rounds_override = rounds
            session.add(state_row)
        append_event(session, "escalation.resolved", item_id=item_id, actor=actor,
                     data={"resolution": resolution, "findings": findings})


def awaiting_since(session: Session, item_id: str) -> float | None:
    row = session.exec(select(EventRow.at).where(EventRow.item_id == item_id, EventRow.kind == "item.status",
                                                 col(EventRow.data_json).contains('"to":"awaiting_review"'))
                       .order_by(col(EventRow.id).desc())).first()
    return row


def record_review(store: Store, item_id: str, decision: str, comment: str | None, reviewer: str,
                  changed_lines: int, to: Status | None, findings: list[str] | None = None) -> None:
    """A timestamped human decision plus the item's move (approve -> done, reject -> planned)."""
    with store.session() as session:
        session.add(ReviewRow(item_id=item_id, decision=decision, comment=comment, reviewer=reviewer,
                              requested_at=awaiting_since(session, item_id), decided_at=time.time(),
                              changed_lines=changed_lines))
        actor = f"human:{reviewer}"
        reason = "rejected" if decision == "reject" else "approved"
        if to is not None:
            transition(session, item_id, to, actor=actor, reason=reason, detail=comment)
        row = session.get(ItemStateRow, item_id)
        if row is not None and findings:
            row.pending_findings = json.dumps(findings)
            session.add(row)
        append_event(session, "review", item_id=item_id, actor=actor,
                     data={"decision": decision, "comment": comment, "changed_lines": changed_lines})


def record_refusal(store: Store, item_id: str, action: str, actor: str, reason: str) -> None:
    """A human decision that was refused (not an approver): a `decision.refused` event, nothing else changes."""
    with store.session() as session:
        append_event(session, "decision.refused", item_id=item_id, actor=actor,
                     data={"action": action, "reason": reason})
