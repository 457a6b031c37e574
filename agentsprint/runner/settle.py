"""How an attempt at an item closes, from inside its workflow or a review: merge (rebasing once on a
conflict), hold an approved merge for a clean tree, or escalate with the package a human needs.

Nothing here needs DBOS or litellm, so `agentsprint review ...` starts fast.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from agentsprint import backlog
from agentsprint.backlog.files import existing_path
from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.policy import redact
from agentsprint.runner.conflicts import merge_lock, regate
from agentsprint.store import Store, runs
from agentsprint.workspace import MergeBlocked, MergeResult, Workspace

MERGE_BLOCKED = "merge_blocked"  # the reason of an approved item whose merge waits for a clean tree


@dataclass
class Project:
    """A project's settings, store and workspace: what merging, escalating and reviewing work on."""

    settings: Settings
    store: Store
    workspace: Workspace


def open_project(settings: Settings) -> Project:
    """Open the project's store and workspace (the caller closes `store`)."""
    return Project(settings, Store(settings.database_url),
                   Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch))


def merge_item(project: Project, item: Item, run_id: str | None, actor: str) -> Status:
    """Merge the item branch, its file marked done in the same merge.

    On a conflict the item is rebased onto the new base and its gates re-run; if the rebase conflicts
    too, or the gates fail on the new base, it escalates with reason `conflict` and both diffs. When the
    user has uncommitted changes to files the merge changes, it stays awaiting_review (reason
    `merge_blocked`, approved): `review approve` or the next `run` merges it once the tree is clean.
    """
    with merge_lock(project.settings.state_dir):
        try:
            return _merge_or_escalate(project, item, run_id, actor)
        except MergeBlocked as exc:  # the user's uncommitted file: wait, approved, until the tree is clean
            runs.hold_merge(project.store, item.id, run_id or "", MERGE_BLOCKED, str(exc), actor=actor)
            return Status.AWAITING_REVIEW


def _merge_or_escalate(project: Project, item: Item, run_id: str | None, actor: str) -> Status:
    result = _merge(project, item)
    if result.merged:
        return _merged(project, item, run_id, actor, result.sha)
    conflicts = result.conflicts
    rebased = project.workspace.rebase_onto_base(item.id)
    if rebased.merged:
        failed = [g for g in regate(item, project.workspace, project.settings) if not g.passed]
        if not failed:
            result = _merge(project, item)
            if result.merged:
                return _merged(project, item, run_id, actor, result.sha, note="rebased onto the new base")
        detail = "rebased onto the new base, but gates failed there: " + ", ".join(g.name for g in failed)
    else:
        conflicts = rebased.conflicts or conflicts
        detail = "merge conflict in " + ", ".join(conflicts)
    extra = {"item_diff": redact(project.workspace.diff(item.id)),
             "base_diff": redact(project.workspace.base_changes(item.id, conflicts)), "conflicts": conflicts}
    return escalate_now(project, item, run_id or "", "conflict", detail, extra=extra)


def _merge(project: Project, item: Item) -> MergeResult:
    path = existing_path(project.settings.backlog_dir, item.id)
    updates = {}
    if path is not None:
        updates[path.relative_to(project.settings.root).as_posix()] = backlog.set_file_status(path, Status.DONE)
    return project.workspace.merge(item.id, redact(f"agentsprint: merge {item.id} {item.title}"), file_updates=updates)


def _merged(project: Project, item: Item, run_id: str | None, actor: str, sha: str | None, note: str = "") -> Status:
    detail = f"{sha} ({note})" if note else sha
    runs.finish_item(project.store, item.id, run_id or "", Status.DONE, reason="merged", detail=detail, actor=actor)
    return Status.DONE


def escalate_now(project: Project, item: Item, run_id: str, reason: str, detail: str,
                 to: Status = Status.ESCALATED, extra: dict[str, Any] | None = None,
                 partial: dict[str, Any] | None = None) -> Status:
    """Commit whatever the agents did, build the package, and escalate (or dead-letter) the item.

    `partial` is the round in progress ({"round": n, "plan": ...}) when the item stopped mid-round."""
    sha = None
    try:
        sha = project.workspace.commit_all(item.id, f"agentsprint: {item.id} preserved at escalation ({reason})")
    except Exception as exc:  # the package must still be written
        detail = f"{detail} (work could not be committed: {exc})"
    package = build_package(project, item, reason, detail, sha, partial) | (extra or {})
    runs.escalate_item(project.store, item.id, run_id, reason, detail, package, to=to)
    return to


def build_package(project: Project, item: Item, reason: str, detail: str, sha: str | None,
                  partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a human needs to pick the item up: plan, each round's diff, gates, QA reasons, spend."""
    rounds = runs.rounds_of(project.store, item.id)
    if partial and all(r.get("round") != partial.get("round") for r in rounds):
        kept = {"agent_transcript": partial["agent_transcript"]} if partial.get("agent_transcript") else {}
        rounds.append(partial_round(project, item.id, int(partial["round"]), partial.get("plan")) | kept)
    return {
        "item_id": item.id,
        "title": item.title,
        "reason": reason,
        "detail": detail,
        "branch": project.workspace.branch_name(item.id),
        "worktree": str(project.workspace.worktree_path(item.id)),
        "head": sha or _head(project, item.id),
        "plan": rounds[-1].get("plan") if rounds else None,
        "rounds": rounds,
        "spend": runs.spend_by_role(project.store, item.id),
        "budget": item.budget.model_dump(),
    }


def partial_round(project: Project, item_id: str, round_no: int, plan: dict[str, Any] | None) -> dict[str, Any]:
    """The round the item stopped in: its plan, the diff so far, the tool calls made and what it cost."""
    diff, files = "", []
    with contextlib.suppress(Exception):  # no worktree yet (stopped while planning): nothing changed
        diff, files = project.workspace.diff(item_id), project.workspace.changed_files(item_id)
    return {"round": round_no, "partial": True, "plan": plan, "diff": diff, "changed_files": files,
            "tool_calls": runs.tool_calls_of(project.store, item_id, round_no),
            "spend": runs.spend_of_round(project.store, item_id, round_no),
            "verdict": "unfinished", "reasons": [], "gates": []}


def _head(project: Project, item_id: str) -> str | None:
    try:
        return project.workspace.head(item_id)
    except Exception:
        return None
