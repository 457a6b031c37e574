"""Bringing an item branch into the base branch: fast-forward, merge commit, conflicts.

Built on the workspace's git runner (every git call goes through `gitcmd`), seen through the
`MergeSite` protocol: `workspace.py` calls this module, never the other way. Nothing here touches a
working tree except the one that has the base branch checked out, and that only after checking it is safe.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Protocol

from agentsprint.gitlocks import clear_stale, merge_locks
from agentsprint.gitparse import porcelain_paths, split_z, version_at_least
from agentsprint.gitrepo import IDENTITY, MergeBlocked, MergeResult, WorkspaceError

log = logging.getLogger(__name__)


class MergeSite(Protocol):
    """The part of `agentsprint.workspace.Workspace` a merge works through."""

    repo_root: Path
    worktrees_dir: Path
    base_branch: str
    use_merge_tree: bool | None

    def run_git(self, cwd: Path, *args: str, env: dict[str, str] | None = None,
                check: bool = True) -> tuple[int, str, str]: ...
    def git_out(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str: ...
    def base_head(self) -> str: ...
    def head(self, item_id: str) -> str: ...
    def is_ancestor(self, older: str, newer: str) -> bool: ...
    def worktrees(self) -> dict[Path, str | None]: ...
    def common_dir(self) -> Path: ...


def integrate(ws: MergeSite, item_id: str, message: str) -> MergeResult:
    """Bring the item branch into the base branch: fast-forward if possible, else a merge commit."""
    clear_stale_merge_locks(ws)
    recover_interrupted_update(ws)
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
    advance_base(ws, base_sha, new_sha)
    return MergeResult(merged=True, sha=new_sha, fast_forward=fast_forward)


def clear_stale_merge_locks(ws: MergeSite) -> list[Path]:
    """Remove the lock files a git killed in an earlier merge left in the user's repository, when safe.

    Runs under the repository lock, so no agentsprint git is merging; `gitlocks.clear_stale` waits
    until each lock is a few seconds old and leaves them all when any git works in the repository.
    """
    ref = f"refs/heads/{ws.base_branch}"
    holders = [path for path, branch in ws.worktrees().items() if branch == ref]
    git_dirs = [Path(ws.git_out(holder, "rev-parse", "--absolute-git-dir")) for holder in holders]
    locks = merge_locks(ws.common_dir(), git_dirs, ws.base_branch)
    return clear_stale(locks, [ws.repo_root, ws.common_dir(), *holders], ignored=ws.worktrees_dir)


def _merge_tree_available(ws: MergeSite) -> bool:
    if ws.use_merge_tree is None:
        ws.use_merge_tree = version_at_least(ws.git_out(ws.repo_root, "version"), (2, 38))
    return ws.use_merge_tree


def _merge_commit(ws: MergeSite, base_sha: str, item_sha: str, message: str) -> tuple[str | None, list[str]]:
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


def _merge_in_scratch_tree(ws: MergeSite, base_sha: str, item_sha: str,
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


def advance_base(ws: MergeSite, old: str, new: str) -> None:
    """Move the base branch from `old` to its descendant `new`, updating a tree where it is checked out.

    The update of a checked-out tree is announced in a marker file first: if the process dies during
    it, the next merge (under the same repository lock, so the writer is gone) repairs the checkout
    first (`recover_interrupted_update`) instead of finding git's lock file and half-updated files.
    """
    ref = f"refs/heads/{ws.base_branch}"
    holder = next((path for path, branch in ws.worktrees().items() if branch == ref), None)
    if holder is None:
        ws.run_git(ws.repo_root, "update-ref", "-m", "agentsprint: merge", ref, new, old)
        return
    touched = split_z(ws.run_git(ws.repo_root, "diff", "--name-only", "-z", "--no-renames", old, new)[1])
    dirty = porcelain_paths(ws.run_git(holder, "status", "--porcelain", "-z", "--untracked-files=all")[1])
    clash = sorted(set(touched) & dirty)
    if clash:
        raise MergeBlocked(f"{holder} has uncommitted changes to files this merge changes: "
                             f"{', '.join(clash)}; commit or stash them, then merge again")
    marker = _marker(ws)
    marker.write_text(json.dumps({"holder": str(holder), "old": old, "new": new, "touched": touched}),
                      encoding="utf-8")
    ws.run_git(holder, "merge", "-q", "--ff-only", new, env=IDENTITY)
    marker.unlink()


UPDATE_MARKER = "agentsprint-base-update.json"
RECOVERED_DIR = "recovered"
"""Under the state folder (`.agentsprint/`): files found changed in an interrupted update, kept."""


def _marker(ws: MergeSite) -> Path:
    return ws.common_dir() / UPDATE_MARKER


def recover_interrupted_update(ws: MergeSite) -> list[str]:
    """Finish an update of the checked-out base that a killed process left; the files it kept aside.

    The update only began when no touched file had uncommitted changes, so whatever the touched files
    hold now came from the killed git: each is put back to the commit the branch points at (the old
    one if the ref had not moved yet, then the merge runs again; else the new one), and git's
    abandoned `index.lock` goes. A touched file whose content matches neither side (half written,
    or edited since) is copied to `.agentsprint/recovered/<time>/` first: nothing is lost.
    """
    marker = _marker(ws)
    if not marker.is_file():
        return []
    data = json.loads(marker.read_text(encoding="utf-8"))
    holder = Path(data["holder"])
    if not holder.is_dir():
        marker.unlink()
        return []
    index_lock = holder / ws.git_out(holder, "rev-parse", "--git-path", "index.lock")
    index_lock.unlink(missing_ok=True)
    target = ws.git_out(holder, "rev-parse", "HEAD")
    kept: list[str] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in data["touched"]:
        file = holder / path
        known = {_blob(ws, data["old"], path), _blob(ws, data["new"], path)}
        current = ws.git_out(holder, "hash-object", "--", path) if file.is_file() else None
        if file.exists() and current not in known:
            copy = ws.worktrees_dir.parent / RECOVERED_DIR / stamp / path
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, copy)
            kept.append(str(copy))
        if _blob(ws, target, path) is None:
            ws.run_git(holder, "rm", "-q", "--cached", "--ignore-unmatch", "--", path)
            file.unlink(missing_ok=True)
        else:
            ws.run_git(holder, "checkout", "-q", target, "--", path)
    marker.unlink()
    if kept:
        log.warning("an interrupted update of %s changed files that are now back as committed; "
                    "their content then is kept in %s", holder, ", ".join(kept))
    return kept


def _blob(ws: MergeSite, commit: str, path: str) -> str | None:
    status, out, _ = ws.run_git(ws.repo_root, "rev-parse", "--verify", "--quiet", f"{commit}:{path}", check=False)
    return out.strip() if status == 0 else None


def merge_preview(ws: MergeSite, item_id: str) -> str:
    """What approving would do to the base branch now: fast-forward, merge commit, or the conflicting files.

    Committed work only; nothing moves (merge-tree writes only objects). Without merge-tree (git < 2.38)
    a merge commit is announced unchecked."""
    base_sha, item_sha = ws.base_head(), ws.head(item_id)
    if ws.is_ancestor(item_sha, base_sha):
        return "already in the base branch"
    if ws.is_ancestor(base_sha, item_sha):
        return "fast-forward"
    if not _merge_tree_available(ws):
        return "merge commit (conflicts not checked: git < 2.38)"
    status, out, _ = ws.run_git(ws.repo_root, "merge-tree", "--write-tree", "-z", "--name-only",
                                "--no-messages", base_sha, item_sha, check=False)
    if status == 1:
        return "conflict in " + ", ".join(sorted(set(split_z(out)[1:])))
    return "merge commit" if status == 0 else "unknown (git merge-tree failed)"
