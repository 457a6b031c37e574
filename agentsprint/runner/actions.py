"""Merging, escalating, the review inbox and escalation retries: actions shared by steps and the CLI.

Nothing here needs DBOS or litellm, so `agentsprint review ...` starts fast.
"""

from __future__ import annotations

import contextlib
import getpass
import json
from dataclasses import dataclass
from typing import Any

from agentsprint import backlog, notify
from agentsprint.backlog.files import existing_path
from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.policy import redact
from agentsprint.store import Store, runs
from agentsprint.workspace import MergeBlocked, MergeResult, Workspace, WorkspaceError

MERGE_BLOCKED = "merge_blocked"  # the reason of an approved item whose merge waits for a clean tree


class ActionError(Exception):
    """The action does not apply to the item in its current state."""


@dataclass
class Services:
    settings: Settings
    store: Store
    workspace: Workspace


def open_services(settings: Settings) -> Services:
    return Services(settings, Store(settings.database_url),
                    Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch))


def load_item(svc: Services, item_id: str) -> Item:
    loaded = backlog.load_backlog(svc.settings.backlog_dir)
    if item_id not in loaded.items:
        raise ActionError(f"{item_id}: no such item in {svc.settings.backlog_dir}")
    return loaded.items[item_id]


def merge_item(svc: Services, item: Item, run_id: str | None, actor: str) -> Status:
    """Merge the item branch, its file marked done in the same merge.

    On a conflict the item is rebased onto the new base and its gates re-run; if the rebase conflicts
    too, or the gates fail on the new base, it escalates with reason `conflict` and both diffs. When the
    user has uncommitted changes to files the merge changes, it stays awaiting_review (reason
    `merge_blocked`, approved): `review approve` or the next `run` merges it once the tree is clean.
    """
    from agentsprint.runner.conflicts import merge_lock

    with merge_lock(svc.settings.state_dir):
        try:
            return _merge_or_escalate(svc, item, run_id, actor)
        except MergeBlocked as exc:  # the user's uncommitted file: wait, approved, until the tree is clean
            runs.hold_merge(svc.store, item.id, run_id or "", MERGE_BLOCKED, str(exc), actor=actor)
            return Status.AWAITING_REVIEW


def _merge_or_escalate(svc: Services, item: Item, run_id: str | None, actor: str) -> Status:
    from agentsprint.runner.conflicts import regate

    result = _merge(svc, item)
    if result.merged:
        return _merged(svc, item, run_id, actor, result.sha)
    conflicts = result.conflicts
    rebased = svc.workspace.rebase_onto_base(item.id)
    if rebased.merged:
        failed = [g for g in regate(item, svc) if not g.passed]
        if not failed:
            result = _merge(svc, item)
            if result.merged:
                return _merged(svc, item, run_id, actor, result.sha, note="rebased onto the new base")
        detail = "rebased onto the new base, but gates failed there: " + ", ".join(g.name for g in failed)
    else:
        conflicts = rebased.conflicts or conflicts
        detail = "merge conflict in " + ", ".join(conflicts)
    extra = {"item_diff": redact(svc.workspace.diff(item.id)),
             "base_diff": redact(svc.workspace.base_changes(item.id, conflicts)), "conflicts": conflicts}
    return escalate_now(svc, item, run_id or "", "conflict", detail, extra=extra)


def _merge(svc: Services, item: Item) -> MergeResult:
    path = existing_path(svc.settings.backlog_dir, item.id)
    updates = {}
    if path is not None:
        updates[path.relative_to(svc.settings.root).as_posix()] = backlog.set_file_status(path, Status.DONE)
    return svc.workspace.merge(item.id, redact(f"agentsprint: merge {item.id} {item.title}"), file_updates=updates)


def _merged(svc: Services, item: Item, run_id: str | None, actor: str, sha: str | None, note: str = "") -> Status:
    detail = f"{sha} ({note})" if note else sha
    runs.finish_item(svc.store, item.id, run_id or "", Status.DONE, reason="merged", detail=detail, actor=actor)
    return Status.DONE


def escalate_now(svc: Services, item: Item, run_id: str, reason: str, detail: str,
                 to: Status = Status.ESCALATED, extra: dict[str, Any] | None = None,
                 partial: dict[str, Any] | None = None) -> Status:
    """Commit whatever the agents did, build the package, and escalate (or dead-letter) the item.

    `partial` is the round in progress ({"round": n, "plan": ...}) when the item stopped mid-round."""
    sha = None
    try:
        sha = svc.workspace.commit_all(item.id, f"agentsprint: {item.id} preserved at escalation ({reason})")
    except Exception as exc:  # the package must still be written
        detail = f"{detail} (work could not be committed: {exc})"
    package = build_package(svc, item, reason, detail, sha, partial) | (extra or {})
    runs.escalate_item(svc.store, item.id, run_id, reason, detail, package, to=to)
    return to


def build_package(svc: Services, item: Item, reason: str, detail: str, sha: str | None,
                  partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a human needs to pick the item up: plan, each round's diff, gates, QA reasons, spend."""
    rounds = runs.rounds_of(svc.store, item.id)
    if partial and all(r.get("round") != partial.get("round") for r in rounds):
        rounds.append(partial_round(svc, item.id, int(partial["round"]), partial.get("plan")))
    return {
        "item_id": item.id,
        "title": item.title,
        "reason": reason,
        "detail": detail,
        "branch": svc.workspace.branch_name(item.id),
        "worktree": str(svc.workspace.worktree_path(item.id)),
        "head": sha or _head(svc, item.id),
        "plan": rounds[-1].get("plan") if rounds else None,
        "rounds": rounds,
        "spend": runs.spend_by_role(svc.store, item.id),
        "budget": item.budget.model_dump(),
    }


def partial_round(svc: Services, item_id: str, round_no: int, plan: dict[str, Any] | None) -> dict[str, Any]:
    """The round the item stopped in: its plan, the diff so far, the tool calls made and what it cost."""
    diff, files = "", []
    with contextlib.suppress(Exception):  # no worktree yet (stopped while planning): nothing changed
        diff, files = svc.workspace.diff(item_id), svc.workspace.changed_files(item_id)
    return {"round": round_no, "partial": True, "plan": plan, "diff": diff, "changed_files": files,
            "tool_calls": runs.tool_calls_of(svc.store, item_id, round_no),
            "spend": runs.spend_of_round(svc.store, item_id, round_no),
            "verdict": "unfinished", "reasons": [], "gates": []}


def _head(svc: Services, item_id: str) -> str | None:
    try:
        return svc.workspace.head(item_id)
    except Exception:
        return None


def _require(svc: Services, item_id: str, *allowed: Status) -> runs.ItemState:
    state = runs.item_state(svc.store, item_id)
    if state is None or state.status not in allowed:
        now = state.status.value if state else "todo"
        raise ActionError(f"{item_id} is {now}, not {' or '.join(s.value for s in allowed)}")
    return state


def review_inbox(svc: Services) -> list[dict[str, Any]]:
    """Items awaiting a human decision, oldest first."""
    states = runs.all_item_states(svc.store)
    waiting = [s for s in states.values() if s.status is Status.AWAITING_REVIEW]
    entries = []
    for state in sorted(waiting, key=lambda s: s.updated_at):
        last = (runs.rounds_of(svc.store, state.item_id) or [{}])[-1]
        entries.append({"id": state.item_id, "since": state.updated_at, "round": state.round,
                        "changed_lines": last.get("added", 0) + last.get("removed", 0),
                        "files": len(last.get("changed_files", [])), "shadow": state.reason == "shadow",
                        "merge_blocked": state.detail if state.reason == MERGE_BLOCKED else None})
    return entries


def review_detail(svc: Services, item_id: str) -> dict[str, Any]:
    """What a reviewer needs: the diff with stats, the gates' results and QA's reasons."""
    state = _require(svc, item_id, Status.AWAITING_REVIEW)
    stats = svc.workspace.diff_stats(item_id)
    last = (runs.rounds_of(svc.store, item_id) or [{}])[-1]
    return {"id": item_id, "round": state.round, "branch": svc.workspace.branch_name(item_id),
            "files": stats.files, "added": stats.added, "removed": stats.removed,
            "diff": svc.workspace.diff(item_id), "gates": last.get("gates", []),
            "qa_reasons": last.get("reasons", []), "plan": last.get("plan"), "shadow": state.reason == "shadow"}


def approve(svc: Services, item_id: str, reviewer: str | None = None) -> Status:
    """Record the approval and merge; returns done, or escalated on a merge conflict.

    An item already approved whose merge waits for a clean tree is merged without a second approval;
    ActionError when the tree is still not clean (the item keeps waiting, approved).
    """
    state = _require(svc, item_id, Status.AWAITING_REVIEW)
    if state.reason == "shadow":
        raise ActionError(f"{item_id} ran in shadow mode: its work is never merged (re-run it without --shadow)")
    item = load_item(svc, item_id)
    who = reviewer or getpass.getuser()
    if state.reason != MERGE_BLOCKED:
        stats = svc.workspace.diff_stats(item_id)
        runs.record_review(svc.store, item_id, "approve", None, who, stats.added + stats.removed, None)
    status = merge_item(svc, item, None, actor=f"human:{who}")
    after = runs.item_state(svc.store, item_id)
    if status is Status.AWAITING_REVIEW and after is not None and after.reason == MERGE_BLOCKED:
        raise ActionError(f"{item_id} is approved but not merged: {after.detail}")
    notify.item_settled(svc.settings, svc.store, item_id)
    return status


def merge_waiting(svc: Services, item_id: str, run_id: str, actor: str = "runner") -> Status:
    """Merge an approved item whose merge waited for a clean tree: no model call, no new round."""
    status = merge_item(svc, load_item(svc, item_id), run_id, actor=actor)
    if status is not Status.AWAITING_REVIEW:
        notify.item_settled(svc.settings, svc.store, item_id, run_id)
    return status


def reject(svc: Services, item_id: str, comment: str, reviewer: str | None = None) -> None:
    """Record the rejection; the item's next round starts with the comment as its finding."""
    if not comment.strip():
        raise ActionError("a rejection needs a comment (-m TEXT): it is the finding the next round works on")
    _require(svc, item_id, Status.AWAITING_REVIEW)
    stats = svc.workspace.diff_stats(item_id)
    who = reviewer or getpass.getuser()
    runs.record_review(svc.store, item_id, "reject", comment, who, stats.added + stats.removed, Status.PLANNED,
                       findings=[f"human reviewer: {comment}"])


def escalation_detail(svc: Services, item_id: str) -> dict[str, Any]:
    found = runs.latest_escalation(svc.store, item_id)
    if found is None:
        raise ActionError(f"{item_id} has no escalation")
    return {"id": found.id, "item_id": found.item_id, "reason": found.reason, "detail": found.detail,
            "created_at": found.created_at, "resolved_at": found.resolved_at, "resolution": found.resolution,
            "package": found.package}


def retry(svc: Services, item_id: str, add_tokens: int = 0, add_usd: float = 0.0,
          add_rounds: int | None = None, who: str | None = None) -> None:
    """Raise the item's budget and queue it to continue from its preserved work."""
    from agentsprint.store.ledger import add_budget

    _require(svc, item_id, Status.ESCALATED, Status.FAILED)
    if add_tokens < 0 or add_usd < 0 or (add_rounds is not None and add_rounds < 1):
        raise ActionError("--add-tokens and --add-usd must be >= 0 and --add-rounds >= 1")
    actor = f"human:{who or getpass.getuser()}"
    if add_tokens or add_usd:
        item = load_item(svc, item_id)
        add_budget(svc.store, f"item:{item_id}", tokens=add_tokens, usd=add_usd, actor=actor,
                   base=(item.budget.tokens, item.budget.usd))
    found = runs.latest_escalation(svc.store, item_id)
    findings = _retry_findings(found)
    runs.resolve_escalation(svc.store, item_id, "retried", findings, actor=actor, rounds=add_rounds)


def _retry_findings(found: runs.Escalation | None) -> list[str]:
    if found is None:
        return []
    last = ([r for r in found.package.get("rounds") or [] if not r.get("partial")] or [{}])[-1]
    reasons = list(last.get("reasons", []))
    return [f"the previous attempt was escalated ({found.reason}: {found.detail})", *reasons]


def drop(svc: Services, item_id: str, who: str | None = None) -> None:
    """Give up on the item: `status: dropped` committed into its file on the base branch, then the store."""
    _require(svc, item_id, Status.ESCALATED, Status.FAILED)
    commit_file_status(svc, item_id, Status.DROPPED)
    runs.resolve_escalation(svc.store, item_id, "dropped", [], actor=f"human:{who or getpass.getuser()}")


def commit_file_status(svc: Services, item_id: str, status: Status) -> None:
    """Write `status` into the item's file and commit it on the base branch; ActionError changes nothing."""
    from agentsprint.backlog.errors import BacklogError

    path = existing_path(svc.settings.backlog_dir, item_id)
    if path is None:
        return
    try:
        text = backlog.set_file_status(path, status)
        rel = path.relative_to(svc.settings.root).as_posix()
        svc.workspace.commit_to_base({rel: text}, f"agentsprint: {item_id} {status.value}")
    except (BacklogError, WorkspaceError) as exc:
        raise ActionError(f"{item_id} not {status.value}: {exc}") from exc


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
