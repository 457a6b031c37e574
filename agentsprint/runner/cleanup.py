"""`agentsprint clean`: remove the worktrees and branches of finished items, keep everything else."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentsprint.backlog import load_backlog
from agentsprint.config import Settings
from agentsprint.domain import Status
from agentsprint.store import Store
from agentsprint.store.runs import all_item_states
from agentsprint.workspace import Workspace

REMOVABLE = frozenset({Status.DONE, Status.DROPPED})
"""Statuses whose work is merged or given up: their worktrees and branches can go."""


@dataclass
class Cleanup:
    """What `clean` removes (item id -> what and why) and what it keeps (item id -> why)."""

    removed: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)


def plan_and_clean(settings: Settings, dry_run: bool) -> Cleanup:
    """Remove (or with `dry_run`, only list) the worktrees and branches of done and dropped items."""
    workspace = Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch)
    statuses = _statuses(settings)
    branches = workspace.item_branches()
    folders = {p.name for p in settings.worktrees_dir.iterdir() if p.is_dir() and not p.name.startswith(".")} \
        if settings.worktrees_dir.is_dir() else set()
    found = Cleanup()
    for item_id in sorted(set(branches) | folders):
        why_not = _keep_reason(workspace, item_id, statuses.get(item_id))
        if why_not:
            found.kept[item_id] = why_not
            continue
        found.removed[item_id] = _what(workspace, item_id, branches.get(item_id), statuses[item_id])
        if not dry_run:
            workspace.discard_item(item_id)
    return found


def _statuses(settings: Settings) -> dict[str, Status]:
    """Live status of each item, else the status its file records."""
    found = {item_id: item.status for item_id, item in load_backlog(settings.backlog_dir).items.items()}
    store = Store(settings.database_url)
    try:
        found |= {item_id: state.status for item_id, state in all_item_states(store).items()}
    finally:
        store.close()
    return found


def _keep_reason(workspace: Workspace, item_id: str, status: Status | None) -> str:
    if status is None:
        return "no such item in the backlog or the database"
    if status not in REMOVABLE:
        return status.value
    if workspace.has_uncommitted(item_id):
        return f"{status.value}, but its worktree has uncommitted changes"
    return ""


def _what(workspace: Workspace, item_id: str, sha: str | None, status: Status) -> str:
    parts = []
    if workspace.worktree_path(item_id).is_dir():
        parts.append(f"worktree {workspace.worktree_path(item_id)}")
    if sha:
        parts.append(f"branch {workspace.branch_name(item_id)} (was {sha[:12]})")
    return f"{' and '.join(parts) or 'leftovers'} ({status.value})"
