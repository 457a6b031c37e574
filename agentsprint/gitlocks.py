"""Lock files a killed git left in the user's repository: found before a merge, removed only when safe.

Git takes a lock by creating `<file>.lock` and releases it by renaming or deleting that file; a git
killed in between leaves it, and every later git that needs the lock fails until someone deletes it.
A lock is removed here only when it is older than STALE_AFTER_S and no live git process works in
the repository (its working folder or GIT_DIR inside it): then nothing can still hold it. Linux only
(it reads /proc); elsewhere locks are left alone and git's own error says what to delete.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER_S = 5.0
"""A lock younger than this may belong to a git that has just started: wait until it is this old."""
GIT_DIR_LOCKS = ("index.lock", "HEAD.lock", "ORIG_HEAD.lock", "MERGE_HEAD.lock", "AUTO_MERGE.lock")
"""Per checkout: what a merge (`merge --ff-only` into a checked-out base) can leave."""
_GIT_ENV = (b"GIT_DIR=", b"GIT_COMMON_DIR=", b"GIT_WORK_TREE=")
PROC = Path("/proc")


def merge_locks(common_dir: Path, git_dirs: Iterable[Path], base_branch: str) -> list[Path]:
    """The lock files that exist among those a killed merge into `base_branch` can leave."""
    paths = {common_dir / "packed-refs.lock", common_dir / "refs" / "heads" / f"{base_branch}.lock"}
    for folder in {common_dir, *git_dirs}:
        paths.update(folder / name for name in GIT_DIR_LOCKS)
    return sorted(path for path in paths if path.is_file())


def git_processes(folders: Iterable[Path], ignored: Path | None = None) -> list[int] | None:
    """Pids of live git processes working inside `folders` (not under `ignored`); None if it cannot tell."""
    if not PROC.is_dir():
        return None
    roots = [folder.resolve() for folder in folders]
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()) and _works_in(entry, roots, ignored):
            found.append(int(entry.name))
    return found


def _works_in(entry: Path, roots: list[Path], ignored: Path | None) -> bool:
    """Whether the process at /proc/<pid> is a git whose working folder or GIT_DIR is inside `roots`."""
    try:
        if not (entry / "comm").read_text(encoding="utf-8", errors="replace").startswith("git"):
            return False
        places = [Path(os.readlink(entry / "cwd"))]
    except OSError:
        return False  # gone, or a zombie: it holds nothing
    try:
        for variable in (entry / "environ").read_bytes().split(b"\0"):
            if variable.startswith(_GIT_ENV):
                places.append(Path(os.fsdecode(variable.split(b"=", 1)[1])))
    except OSError:
        pass
    return any(_inside(place, roots, ignored) for place in places)


def _inside(place: Path, roots: list[Path], ignored: Path | None) -> bool:
    if ignored is not None and place.is_relative_to(ignored):
        return False
    return any(place.is_relative_to(root) for root in roots)


def clear_stale(locks: list[Path], folders: Iterable[Path], ignored: Path | None = None) -> list[Path]:
    """Remove `locks` when no git can hold them any more; the ones removed (none when a git is running).

    A lock younger than STALE_AFTER_S is waited for (a git that is running would release it).
    """
    if not locks:
        return []
    youngest = min(_age(lock) for lock in locks)
    if youngest < STALE_AFTER_S:
        time.sleep(STALE_AFTER_S - youngest)
        locks = [lock for lock in locks if lock.exists()]
    busy = git_processes(folders, ignored)
    if not locks or busy is None or busy:
        return []
    for lock in locks:
        lock.unlink(missing_ok=True)
    log.warning("removed lock files a killed git left (no git process is running in the repository): %s",
                ", ".join(str(lock) for lock in locks))
    return locks


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return STALE_AFTER_S
