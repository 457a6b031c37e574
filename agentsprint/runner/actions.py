"""The human side of review and escalation: the review inbox, approve, reject, retry, drop.

Nothing here needs DBOS or litellm, so `agentsprint review ...` starts fast.
"""

from __future__ import annotations

import json
from typing import Any

from agentsprint import backlog, notify
from agentsprint.backlog.files import existing_path
from agentsprint.domain import Item, Status
from agentsprint.gitrepo import WorkspaceError
from agentsprint.runner.deciders import person, refusal
from agentsprint.runner.settle import MERGE_BLOCKED, Project, merge_item
from agentsprint.runner.settle import open_project as open_project  # how the CLI opens a project's parts
from agentsprint.store import runs
from agentsprint.store.items import ItemState
from agentsprint.store.records import RoundRecord


class ActionError(Exception):
    """The action does not apply to the item in its current state."""


class NotAllowed(ActionError):
    """The person may not make this decision ([review] approvers); the attempt is recorded."""


def _guard(project: Project, item_id: str, action: str, who: str) -> None:
    """Raise NotAllowed (after recording the refused attempt) when `who` may not make decision `action`."""
    why = refusal(project.settings, action, who)
    if why is not None:
        runs.record_refusal(project.store, item_id, action, f"human:{who}", why)
        raise NotAllowed(why)


def load_item(project: Project, item_id: str) -> Item:
    loaded = backlog.load_backlog(project.settings.backlog_dir)
    if item_id not in loaded.items:
        raise ActionError(f"{item_id}: no such item in {project.settings.backlog_dir}")
    return loaded.items[item_id]


def _require(project: Project, item_id: str, *allowed: Status) -> ItemState:
    state = runs.item_state(project.store, item_id)
    if state is None or state.status not in allowed:
        now = state.status.value if state else "todo"
        raise ActionError(f"{item_id} is {now}, not {' or '.join(s.value for s in allowed)}")
    return state


def review_inbox(project: Project) -> list[dict[str, Any]]:
    """Items awaiting a human decision, oldest first."""
    states = runs.all_item_states(project.store)
    waiting = [s for s in states.values() if s.status is Status.AWAITING_REVIEW]
    entries = []
    for state in sorted(waiting, key=lambda s: s.updated_at):
        last = _last_round(project, state.item_id)
        entries.append({"id": state.item_id, "since": state.updated_at, "round": state.round,
                        "changed_lines": last.changed_lines,
                        "files": len(last.changed_files), "shadow": state.reason == "shadow",
                        "merge_blocked": state.detail if state.reason == MERGE_BLOCKED else None})
    return entries


def review_detail(project: Project, item_id: str) -> dict[str, Any]:
    """What a reviewer needs: the diff with stats, the gates' results and QA's reasons."""
    state = _require(project, item_id, Status.AWAITING_REVIEW)
    stats = project.workspace.diff_stats(item_id)
    last = _last_round(project, item_id)
    return {"id": item_id, "round": state.round, "branch": project.workspace.branch_name(item_id),
            "files": stats.files, "added": stats.added, "removed": stats.removed,
            "diff": project.workspace.diff(item_id), "gates": last.gates,
            "qa_reasons": last.reasons, "plan": last.plan, "shadow": state.reason == "shadow"}


def _last_round(project: Project, item_id: str) -> RoundRecord:
    """The item's last recorded round (an empty one before any)."""
    return (runs.rounds_of(project.store, item_id) or [RoundRecord(round=0)])[-1]


def approve(project: Project, item_id: str, reviewer: str | None = None) -> Status:
    """Record the approval and merge; returns done, or escalated on a merge conflict.

    An item already approved whose merge waits for a clean tree is merged without a second approval;
    ActionError when the tree is still not clean (the item keeps waiting, approved).
    """
    state = _require(project, item_id, Status.AWAITING_REVIEW)
    if state.reason == "shadow":
        raise ActionError(f"{item_id} ran in shadow mode: its work is never merged (re-run it without --shadow)")
    item = load_item(project, item_id)
    who = person(project.settings, reviewer)
    _guard(project, item_id, "approve", who)
    if state.reason != MERGE_BLOCKED:
        stats = project.workspace.diff_stats(item_id)
        runs.record_review(project.store, item_id, "approve", None, who, stats.added + stats.removed, None)
    status = merge_item(project, item, None, actor=f"human:{who}")
    after = runs.item_state(project.store, item_id)
    if status is Status.AWAITING_REVIEW and after is not None and after.reason == MERGE_BLOCKED:
        raise ActionError(f"{item_id} is approved but not merged: {after.detail}")
    notify.item_settled(project.settings, project.store, item_id)
    return status


def merge_waiting(project: Project, item_id: str, run_id: str, actor: str = "runner") -> Status:
    """Merge an approved item whose merge waited for a clean tree: no model call, no new round."""
    status = merge_item(project, load_item(project, item_id), run_id, actor=actor)
    if status is not Status.AWAITING_REVIEW:
        notify.item_settled(project.settings, project.store, item_id, run_id)
    return status


def reject(project: Project, item_id: str, comment: str, reviewer: str | None = None) -> None:
    """Record the rejection; the item's next round starts with the comment as its finding."""
    if not comment.strip():
        raise ActionError("a rejection needs a comment (-m TEXT): it is the finding the next round works on")
    _require(project, item_id, Status.AWAITING_REVIEW)
    stats = project.workspace.diff_stats(item_id)
    who = person(project.settings, reviewer)
    runs.record_review(project.store, item_id, "reject", comment, who, stats.added + stats.removed, Status.PLANNED,
                       findings=[f"human reviewer: {comment}"])


def escalation_detail(project: Project, item_id: str) -> runs.Escalation:
    """The item's latest escalation with its package."""
    found = runs.latest_escalation(project.store, item_id)
    if found is None:
        raise ActionError(f"{item_id} has no escalation")
    return found


def retry(project: Project, item_id: str, add_tokens: int = 0, add_usd: float = 0.0,
          add_rounds: int | None = None, who: str | None = None) -> None:
    """Raise the item's budget and queue it to continue from its preserved work."""
    from agentsprint.store.ledger import add_budget

    _require(project, item_id, Status.ESCALATED, Status.FAILED)
    if add_tokens < 0 or add_usd < 0 or (add_rounds is not None and add_rounds < 1):
        raise ActionError("--add-tokens and --add-usd must be >= 0 and --add-rounds >= 1")
    decider = person(project.settings, who)
    actor = f"human:{decider}"
    if add_tokens or add_usd or add_rounds:
        _guard(project, item_id, "top-up", decider)
    if add_tokens or add_usd:
        item = load_item(project, item_id)
        add_budget(project.store, f"item:{item_id}", tokens=add_tokens, usd=add_usd, actor=actor,
                   base=(item.budget.tokens, item.budget.usd))
    found = runs.latest_escalation(project.store, item_id)
    findings = _retry_findings(found)
    runs.resolve_escalation(project.store, item_id, "retried", findings, actor=actor, rounds=add_rounds)


def _retry_findings(found: runs.Escalation | None) -> list[str]:
    if found is None:
        return []
    last = found.package.last_finished_round() if found.package else None
    reasons = list(last.reasons) if last else []
    return [f"the previous attempt was escalated ({found.reason}: {found.detail})", *reasons]


def drop(project: Project, item_id: str, who: str | None = None) -> None:
    """Give up on the item: `status: dropped` committed into its file on the base branch, then the store."""
    _require(project, item_id, Status.ESCALATED, Status.FAILED)
    commit_file_status(project, item_id, Status.DROPPED)
    runs.resolve_escalation(project.store, item_id, "dropped", [], actor=f"human:{person(project.settings, who)}")


def commit_file_status(project: Project, item_id: str, status: Status) -> None:
    """Write `status` into the item's file and commit it on the base branch; ActionError changes nothing."""
    from agentsprint.backlog.errors import BacklogError

    path = existing_path(project.settings.backlog_dir, item_id)
    if path is None:
        return
    try:
        text = backlog.set_file_status(path, status)
        rel = path.relative_to(project.settings.root).as_posix()
        project.workspace.commit_to_base({rel: text}, f"agentsprint: {item_id} {status.value}")
    except (BacklogError, WorkspaceError) as exc:
        raise ActionError(f"{item_id} not {status.value}: {exc}") from exc


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
