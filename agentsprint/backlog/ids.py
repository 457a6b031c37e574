"""New item ids (`AS-<n>`) that do not collide with items added on other branches or worktrees.

n is one more than the highest number found in the working tree's backlog/ and in backlog/ of every
local branch, remote-tracking branch and worktree of the repository. Clones that never fetched each
other can still pick the same number; `agentsprint validate` then reports the duplicate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from agentsprint.gitcmd import run_git
from agentsprint.gitparse import worktree_branches


def id_number(name: str, prefix: str) -> int | None:
    """The n of a file name or id such as `AS-12-fix.md` or `AS-12`."""
    match = re.match(rf"{re.escape(prefix)}-(\d+)(?:$|[-.])", name)
    return int(match.group(1)) if match else None


def id_sort_key(item_id: str) -> tuple[str, int]:
    """Sort ids by prefix, then number (AS-2 before AS-10)."""
    prefix, _, number = item_id.rpartition("-")
    return prefix, int(number) if number.isdigit() else 0


def highest(names: Iterable[str], prefix: str) -> int:
    """The highest id number among `names` (0 when there is none)."""
    return max((n for n in (id_number(name, prefix) for name in names) if n is not None), default=0)


def next_id(backlog_dir: Path, prefix: str = "AS") -> str:
    """The next free id for this backlog, looking across branches and worktrees."""
    local = os.listdir(backlog_dir) if backlog_dir.is_dir() else []
    return f"{prefix}-{max(highest(local, prefix), highest(git_names(backlog_dir), prefix)) + 1}"


def _git(cwd: Path, *args: str) -> str | None:
    """Stdout of a (hardened) git call, None when it fails or git is missing."""
    try:
        done = run_git(cwd, args)
    except OSError:
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def git_names(backlog_dir: Path) -> Iterator[str]:
    """File names under the backlog folder in every branch, remote-tracking branch and worktree."""
    if not backlog_dir.is_dir():
        return
    top = _git(backlog_dir, "rev-parse", "--show-toplevel")
    if top is None:
        return  # not in a git repository: the working tree is all there is
    root = Path(top.strip())
    relative = backlog_dir.resolve().relative_to(root.resolve()).as_posix()
    refs = _git(root, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/remotes") or ""
    for commit in sorted(set(refs.split())):
        listing = _git(root, "ls-tree", "--name-only", commit, "--", f"{relative}/") or ""
        yield from (line.rsplit("/", 1)[-1] for line in listing.splitlines())
    yield from _worktree_names(backlog_dir, relative)


def _worktree_names(backlog_dir: Path, prefix: str) -> Iterator[str]:
    listing = worktree_branches(_git(backlog_dir, "worktree", "list", "--porcelain") or "")
    for worktree in listing:
        folder = worktree / prefix
        if folder.is_dir() and folder.resolve() != backlog_dir.resolve():
            yield from os.listdir(folder)
