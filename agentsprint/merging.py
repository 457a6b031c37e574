"""Bringing an item branch into the base branch: fast-forward, merge commit, conflicts.

Built on Workspace's git runner (GitPython stays in workspace.py). Nothing here touches a working
tree except the one that has the base branch checked out, and that only after checking it is safe.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentsprint.gitparse import porcelain_paths, split_z, version_at_least
from agentsprint.workspace import IDENTITY, MergeResult, Workspace, WorkspaceError


def integrate(ws: Workspace, item_id: str, message: str) -> MergeResult:
    """Bring the item branch into the base branch: fast-forward if possible, else a merge commit."""
    base_sha, item_sha = ws.base_head(), ws.head(item_id)
    if ws.is_ancestor(item_sha, base_sha):
        return MergeResult(merged=True, sha=base_sha, fast_forward=True)  # already in the base
    fast_forward = ws.is_ancestor(base_sha, item_sha)
    if fast_forward:
        new_sha = item_sha
    else:
        merged_sha, conflicts = _merge_commit(ws, base_sha, item_sha, message)
        if merged_sha is None:
            return MergeResult(merged=False, conflicts=conflicts)
        new_sha = merged_sha
    _advance_base(ws, base_sha, new_sha)
    return MergeResult(merged=True, sha=new_sha, fast_forward=fast_forward)


def _merge_tree_available(ws: Workspace) -> bool:
    if ws.use_merge_tree is None:
        ws.use_merge_tree = version_at_least(ws.git_out(ws.repo_root, "version"), (2, 38))
    return ws.use_merge_tree


def _merge_commit(ws: Workspace, base_sha: str, item_sha: str, message: str) -> tuple[str | None, list[str]]:
    """A merge commit of item into base made without touching any working tree, or the conflicts."""
    if not _merge_tree_available(ws):
        return _merge_in_scratch_tree(ws, base_sha, item_sha, message)
    status, out, err = ws.run_git(ws.repo_root, "merge-tree", "--write-tree", "-z", "--name-only",
                                  "--no-messages", base_sha, item_sha, check=False)
    if status > 1:
        raise WorkspaceError(f"git merge-tree failed: {err.strip()}")
    tree, *conflicts = split_z(out)
    if status == 1:
        return None, sorted(set(conflicts))
    sha = ws.git_out(ws.repo_root, "commit-tree", tree, "-p", base_sha, "-p", item_sha, "-m", message,
                     env=IDENTITY)
    return sha, []


def _merge_in_scratch_tree(ws: Workspace, base_sha: str, item_sha: str,
                           message: str) -> tuple[str | None, list[str]]:
    """The same as merge-tree for git < 2.38: merge in a temporary detached worktree."""
    with tempfile.TemporaryDirectory(prefix="agentsprint-merge-") as tmp:
        scratch = Path(tmp) / "merge"
        ws.run_git(ws.repo_root, "worktree", "add", "-q", "--detach", str(scratch), base_sha)
        try:
            status, _, err = ws.run_git(scratch, "merge", "-q", "--no-ff", "--no-verify", "-m", message,
                                        item_sha, env=IDENTITY, check=False)
            if status == 0:
                return ws.git_out(scratch, "rev-parse", "HEAD"), []
            conflicts = split_z(ws.run_git(scratch, "diff", "--name-only", "--diff-filter=U", "-z")[1])
            if not conflicts:
                raise WorkspaceError(f"git merge failed: {err.strip()}")
            return None, sorted(conflicts)
        finally:
            ws.run_git(ws.repo_root, "worktree", "remove", "--force", str(scratch), check=False)
            ws.run_git(ws.repo_root, "worktree", "prune", check=False)


def _advance_base(ws: Workspace, old: str, new: str) -> None:
    """Move the base branch from `old` to its descendant `new`, updating a tree where it is checked out."""
    ref = f"refs/heads/{ws.base_branch}"
    holder = next((path for path, branch in ws.worktrees().items() if branch == ref), None)
    if holder is None:
        ws.run_git(ws.repo_root, "update-ref", "-m", "agentsprint: merge", ref, new, old)
        return
    touched = ws.run_git(ws.repo_root, "diff", "--name-only", "-z", "--no-renames", old, new)[1]
    dirty = porcelain_paths(ws.run_git(holder, "status", "--porcelain", "-z", "--untracked-files=all")[1])
    clash = sorted(set(split_z(touched)) & dirty)
    if clash:
        raise WorkspaceError(f"{holder} has uncommitted changes to files this merge changes: "
                             f"{', '.join(clash)}; commit or stash them, then merge again")
    ws.run_git(holder, "merge", "-q", "--ff-only", new, env=IDENTITY)
