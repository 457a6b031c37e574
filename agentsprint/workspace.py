"""Item worktrees, branches, diffs, commits and merges.

Git runs through `agentsprint.gitcmd` (hooks, fsmonitor and the repository's drivers off, a scrubbed
environment); GitPython is not used, as it passes agentsprint's whole environment to git. Every git
failure leaves as a WorkspaceError. Nothing here discards work: pending changes are
committed on the item branch before anything moves, and a failed merge or rebase is rolled back.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agentsprint.gitparse import (
    ChangedContent,
    name_status_files,
    numstat_totals,
    raw_changes,
    split_z,
    worktree_branches,
)
from agentsprint.gitrepo import IDENTITY, MergeResult, WorkspaceError, git_bytes
from agentsprint.gitrepo import MergeBlocked as MergeBlocked  # part of this module's interface
from agentsprint.merging import advance_base, integrate
from agentsprint.policy import PolicyViolation, resolve_path

BRANCH_PREFIX = "agentsprint/"
_DIFF_FLAGS = ("--no-color", "-M", "--src-prefix=a/", "--dst-prefix=b/")
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$")
_LOCK = threading.RLock()  # one merge, rebase or worktree change at a time in this process
_HOLD = {"depth": 0}  # nesting of this process's hold on the repository lock (changed only under _LOCK)
REPO_LOCK = "agentsprint.lock"
GATES_DIR = ".gates"  # under worktrees_dir: clean checkouts for command gates
INTERRUPTED_ADD = "initializing"  # git's `locked` text while `worktree add` runs (gitcmd sets LC_ALL=C)


class DiffStats(BaseModel):
    """Size of an item's change: files touched, lines added and removed (binary files count 0)."""

    model_config = ConfigDict(frozen=True)

    files: int
    added: int
    removed: int


class Workspace:
    """Worktrees on `agentsprint/<ID>` branches of the repository at `repo_root`."""

    use_merge_tree: bool | None = None
    """Merge with `git merge-tree --write-tree` (git >= 2.38); None = detect from the git version."""

    def __init__(self, repo_root: Path, worktrees_dir: Path, base_branch: str) -> None:
        self.repo_root = Path(repo_root).resolve()
        folder = Path(worktrees_dir)
        self.worktrees_dir = (folder if folder.is_absolute() else self.repo_root / folder).resolve()
        self.base_branch = base_branch
        self._common: Path | None = None

    # --- running git -------------------------------------------------------------------------------

    def run_git(self, cwd: Path, *args: str, env: dict[str, str] | None = None,
                check: bool = True) -> tuple[int, str, str]:
        """Run git in `cwd`: (status, stdout, stderr); WorkspaceError on failure when `check`.

        Low level, for this module and `agentsprint.merging`; everyone else uses the methods below.
        """
        status, out, err = self.run_git_bytes(cwd, *args, env=env, check=check)
        return status, out.decode("utf-8", "replace"), err

    def run_git_bytes(self, cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
                      stdin: bytes | None = None) -> tuple[int, bytes, str]:
        """`run_git` with stdout as bytes (file contents), optionally fed `stdin`."""
        return git_bytes(cwd, *args, env=env, check=check, stdin=stdin)

    def git_out(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
        """Stripped stdout of a git command that must succeed."""
        return self.run_git(cwd, *args, env=env)[1].strip()

    def _rev(self, ref: str) -> str:
        status, out, _ = self.run_git(self.repo_root, "rev-parse", "--verify", "--quiet",
                                      f"{ref}^{{commit}}", check=False)
        if status != 0:
            raise WorkspaceError(f"{ref}: no such commit in {self.repo_root}")
        return out.strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True when commit `older` is reachable from `newer`."""
        status, _, err = self.run_git(self.repo_root, "merge-base", "--is-ancestor", older, newer,
                                      check=False)
        if status > 1:
            raise WorkspaceError(f"git merge-base failed: {err.strip()}")
        return status == 0

    # --- names and heads ---------------------------------------------------------------------------

    def branch_name(self, item_id: str) -> str:
        """The item's branch, `agentsprint/<ID>`."""
        if not _ITEM_ID.match(item_id):
            raise WorkspaceError(f"{item_id!r} is not a valid item id")
        return BRANCH_PREFIX + item_id

    def worktree_path(self, item_id: str) -> Path:
        """Where the item's worktree lives: `<worktrees_dir>/<ID>`."""
        self.branch_name(item_id)
        return self.worktrees_dir / item_id

    def head(self, item_id: str) -> str:
        """Sha of the item branch's tip (committed work only)."""
        return self._rev(f"refs/heads/{self.branch_name(item_id)}")

    def base_head(self) -> str:
        """Sha of the base branch's tip."""
        return self._rev(f"refs/heads/{self.base_branch}")

    # --- worktrees ---------------------------------------------------------------------------------

    def worktrees(self) -> dict[Path, str | None]:
        """Registered worktrees: path -> checked-out branch ref (None when detached)."""
        try:
            return worktree_branches(self.git_out(self.repo_root, "worktree", "list", "--porcelain"))
        except WorkspaceError:
            with self._repo_lock():  # a `worktree add` killed halfway breaks the listing until it is cleared
                return worktree_branches(self.git_out(self.repo_root, "worktree", "list", "--porcelain"))

    def common_dir(self) -> Path:
        """The repository's shared git folder (`.git` of the main checkout), found once."""
        if self._common is None:
            common = Path(self.git_out(self.repo_root, "rev-parse", "--git-common-dir"))
            self._common = common if common.is_absolute() else self.repo_root / common
        return self._common

    @contextmanager
    def _repo_lock(self) -> Iterator[None]:
        """Hold the repository's agentsprint lock: one writer to worktrees across threads and processes.

        It is an OS file lock, released when its process dies; so whatever a git left half done in
        agentsprint's worktrees while no process held it was interrupted, and is cleared on entry.
        """
        with _LOCK:
            if _HOLD["depth"]:
                _HOLD["depth"] += 1
                try:
                    yield
                finally:
                    _HOLD["depth"] -= 1
                return
            with (self.common_dir() / REPO_LOCK).open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                _HOLD["depth"] = 1
                try:
                    self._clear_interrupted()
                    yield
                finally:
                    _HOLD["depth"] = 0

    def _clear_interrupted(self) -> None:
        """Undo what a killed git left: half-added worktrees and lock files in agentsprint's worktrees."""
        admins = self.common_dir() / "worktrees"
        for admin in sorted(admins.iterdir()) if admins.is_dir() else []:
            checkout = _checkout_of(admin)
            ours = checkout is not None and checkout.is_relative_to(self.worktrees_dir)
            if _text(admin / "locked") == INTERRUPTED_ADD:
                shutil.rmtree(admin, ignore_errors=True)
                if ours and checkout is not None and checkout.is_dir():
                    shutil.rmtree(checkout)  # git refuses to add into a non-empty folder: nothing else is there
            elif ours:
                for stale in admin.glob("*.lock"):
                    stale.unlink(missing_ok=True)
        branches = self.common_dir() / "refs" / "heads" / BRANCH_PREFIX.rstrip("/")
        for stale in branches.rglob("*.lock") if branches.is_dir() else []:
            stale.unlink(missing_ok=True)

    def _exclude_worktrees_dir(self) -> None:
        """Keep nested worktrees out of the main tree's `git status` / `git add -A` (local exclude only)."""
        try:
            rel = self.worktrees_dir.relative_to(self.repo_root).as_posix()
        except ValueError:
            return
        exclude = self.common_dir() / "info" / "exclude"
        line = f"/{rel}/"
        existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
        if line not in existing:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text("\n".join([*existing, line]) + "\n", encoding="utf-8")

    def create_worktree(self, item_id: str) -> Path:
        """The item's worktree, created from the base branch or reattached; existing work is kept."""
        path, branch = self.worktree_path(item_id), self.branch_name(item_id)
        with self._repo_lock():
            self.base_head()
            self.run_git(self.repo_root, "worktree", "prune")
            registered = self.worktrees()
            if path in registered:
                if registered[path] != f"refs/heads/{branch}":
                    raise WorkspaceError(f"{path} is a worktree on {registered[path] or 'a detached HEAD'}, "
                                         f"not on {branch}")
                return path
            if path.exists():
                if not path.is_dir() or any(path.iterdir()):
                    raise WorkspaceError(f"{path} exists but is not a worktree of this repository")
                path.rmdir()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._exclude_worktrees_dir()
            if self.branch_exists(item_id):
                self.run_git(self.repo_root, "worktree", "add", "-q", str(path), branch)
            else:
                self.run_git(self.repo_root, "worktree", "add", "-q", "--no-track", "-b", branch, str(path),
                             f"refs/heads/{self.base_branch}")
            return path

    def _has_worktree(self, item_id: str) -> bool:
        path = self.worktree_path(item_id)
        return path.is_dir() and path in self.worktrees()

    def remove_worktree(self, item_id: str) -> None:
        """Remove the item's worktree, keeping its branch (pending changes are committed first)."""
        with self._repo_lock():
            self.drop_gate_checkout(item_id)
            self.run_git(self.repo_root, "worktree", "prune")
            if not self._has_worktree(item_id):
                return
            self.commit_all(item_id, f"{item_id}: work in progress (saved before removing the worktree)")
            self.run_git(self.repo_root, "worktree", "remove", str(self.worktree_path(item_id)))

    def gate_checkout_path(self, item_id: str) -> Path:
        """Where the item's gate checkout lives: `<worktrees_dir>/.gates/<ID>` (never an item's own folder)."""
        self.branch_name(item_id)
        return self.worktrees_dir / GATES_DIR / item_id

    def gate_checkout(self, item_id: str) -> Path:
        """A clean, detached checkout of the item branch's tip, for command gates.

        Command gates run here, not in the coder's worktree: files the coder left that git does not
        track (an ignored `conftest.py`, a patched module in an ignored folder) cannot change what the
        gates see. The first round pays for a whole checkout; later rounds reuse it, forced to the new
        tip and stripped of every untracked and ignored file (what earlier gate runs made). One that
        is broken (a killed process) is replaced. `drop_gate_checkout` removes it when the item ends.
        """
        path, sha = self.gate_checkout_path(item_id), self.head(item_id)
        with self._repo_lock():
            if path.is_dir() and path in self.worktrees():
                try:
                    self.run_git(path, "checkout", "-q", "--detach", "--force", sha)
                    self.run_git(path, "clean", "-ffdxq")
                    return path
                except WorkspaceError:
                    pass  # not usable any more: start again
            self._drop_gate_checkout(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._exclude_worktrees_dir()
            self.run_git(self.repo_root, "worktree", "add", "-q", "--detach", str(path), sha)
            return path

    def drop_gate_checkout(self, item_id: str) -> None:
        """Remove the item's gate checkout, if it has one."""
        path = self.gate_checkout_path(item_id)
        if path.exists():
            with self._repo_lock():
                self._drop_gate_checkout(path)

    def _drop_gate_checkout(self, path: Path) -> None:
        if path in self.worktrees():
            self.run_git(self.repo_root, "worktree", "remove", "--force", "--force", str(path), check=False)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        self.run_git(self.repo_root, "worktree", "prune")

    def branch_exists(self, item_id: str) -> bool:
        ref = f"refs/heads/{self.branch_name(item_id)}"
        return self.run_git(self.repo_root, "show-ref", "--verify", "--quiet", ref, check=False)[0] == 0

    def item_branches(self) -> dict[str, str]:
        """Item id -> branch tip sha of every `agentsprint/<ID>` branch (archived shadow branches excluded)."""
        out = self.git_out(self.repo_root, "for-each-ref", "--format=%(refname:strip=2) %(objectname)",
                           f"refs/heads/{BRANCH_PREFIX}")
        found = {}
        for line in out.splitlines():
            name, _, sha = line.partition(" ")
            item_id = name.removeprefix(BRANCH_PREFIX)
            if "/" not in item_id and _ITEM_ID.match(item_id):
                found[item_id] = sha
        return found

    def has_uncommitted(self, item_id: str) -> bool:
        """True when the item's worktree holds changes git has not committed (untracked files included)."""
        path = self.worktree_path(item_id)
        if not path.is_dir():
            return False
        return bool(self.git_out(path, "status", "--porcelain", "--untracked-files=all"))

    def discard_item(self, item_id: str) -> None:
        """Remove the item's worktree, gate checkout and branch (for finished items: `agentsprint clean`)."""
        with self._repo_lock():
            self.drop_gate_checkout(item_id)
            self.run_git(self.repo_root, "worktree", "prune")
            if self._has_worktree(item_id):
                self.run_git(self.repo_root, "worktree", "remove", str(self.worktree_path(item_id)))
            if self.branch_exists(item_id):
                self.run_git(self.repo_root, "branch", "-D", self.branch_name(item_id))

    def archive_branch(self, item_id: str, new_name: str) -> str:
        """Remove the item's worktree and rename its branch (a shadow run's work, kept for inspection)."""
        with self._repo_lock():
            self.remove_worktree(item_id)
            self.run_git(self.repo_root, "branch", "-M", self.branch_name(item_id), new_name)
            return new_name

    # --- diffs -------------------------------------------------------------------------------------

    def _snapshot_tree(self, item_id: str) -> str:
        """Tree of everything in the worktree (tracked, changed, untracked), via a temporary index."""
        if not self._has_worktree(item_id):
            return self.git_out(self.repo_root, "rev-parse", f"{self.head(item_id)}^{{tree}}")
        path = self.worktree_path(item_id)
        real_index = path / self.git_out(path, "rev-parse", "--git-path", "index")
        with tempfile.TemporaryDirectory(prefix="agentsprint-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if real_index.is_file():
                shutil.copyfile(real_index, env["GIT_INDEX_FILE"])  # keeps git's stat cache: fast
            else:
                self.run_git(path, "read-tree", "HEAD", env=env)
            self.run_git(path, "add", "-A", env=env)
            return self.git_out(path, "write-tree", env=env)

    def _endpoints(self, item_id: str) -> tuple[str, str]:
        """(merge-base with the base branch, snapshot tree) of an item."""
        base_ref = f"refs/heads/{self.base_branch}"
        base = self.git_out(self.repo_root, "merge-base", base_ref, self.head(item_id))
        return base, self._snapshot_tree(item_id)

    def diff(self, item_id: str) -> str:
        """Unified diff of all the item changed (committed, uncommitted, untracked) since the merge-base."""
        base, tree = self._endpoints(item_id)
        return self.run_git(self.repo_root, "diff", *_DIFF_FLAGS, base, tree)[1]

    def changed_files(self, item_id: str) -> list[str]:
        """Repo-relative paths the item added, changed or deleted; renames give both names."""
        base, tree = self._endpoints(item_id)
        output = self.run_git(self.repo_root, "diff", "--name-status", "-z", "-M", base, tree)[1]
        return name_status_files(output)

    def diff_stats(self, item_id: str) -> DiffStats:
        """Files, added and removed lines of the item's diff."""
        base, tree = self._endpoints(item_id)
        output = self.run_git(self.repo_root, "diff", "--numstat", "-z", "-M", base, tree)[1]
        files, added, removed = numstat_totals(output)
        return DiffStats(files=files, added=added, removed=removed)

    def base_changes(self, item_id: str, paths: list[str]) -> str:
        """What the base branch changed in `paths` since the item forked: the other side of a conflict."""
        base, _ = self._endpoints(item_id)
        return self.run_git(self.repo_root, "diff", *_DIFF_FLAGS, base, f"refs/heads/{self.base_branch}",
                            "--", *paths)[1]

    def changed_contents(self, item_id: str, cap_bytes: int) -> list[ChangedContent]:
        """Full content, as bytes, of every file the item added or changed, and what each was before.

        Read straight from git's objects with one `git cat-file --batch` (no diff, no textconv, no
        filters), so a file git calls binary is read like any other. Blobs over `cap_bytes` are
        listed with their size and no content.
        """
        base, tree = self._endpoints(item_id)
        raw = self.run_git_bytes(self.repo_root, "diff-tree", "-r", "-z", "--no-renames", "--no-abbrev",
                                 base, tree)[1]
        changes = raw_changes(raw)
        sizes = self._blob_sizes([sha for _, old, new in changes for sha in (old, new) if sha])
        wanted = sorted({sha for sha, size in sizes.items() if size <= cap_bytes})
        blobs = self._blobs(wanted)
        return [ChangedContent(path=path, size=sizes.get(new, 0), content=blobs.get(new),
                               before=blobs.get(old) if old else b"")
                for path, old, new in changes if new in sizes]

    def _blob_sizes(self, shas: list[str]) -> dict[str, int]:
        if not shas:
            return {}
        out = self.run_git_bytes(self.repo_root, "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                                 stdin="".join(f"{sha}\n" for sha in shas).encode("ascii"))[1]
        found = {}
        for line in out.decode("ascii", "replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "blob":
                found[parts[0]] = int(parts[2])
        return found

    def _blobs(self, shas: list[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        out = self.run_git_bytes(self.repo_root, "cat-file", "--batch",
                                 stdin="".join(f"{sha}\n" for sha in shas).encode("ascii"))[1]
        found, at = {}, 0
        while at < len(out):
            end = out.index(b"\n", at)
            sha, _kind, size = out[at:end].decode("ascii").split()
            found[sha] = out[end + 1:end + 1 + int(size)]
            at = end + 1 + int(size) + 1
        return found

    def diff_hash(self, item_id: str) -> str:
        """sha256 of the item's diff: equal hashes mean the same change (loop detection)."""
        return hashlib.sha256(self.diff(item_id).encode("utf-8")).hexdigest()

    # --- commits -----------------------------------------------------------------------------------

    def commit_all(self, item_id: str, message: str) -> str | None:
        """Commit everything pending in the worktree as agentsprint; the new sha, None if nothing changed."""
        if not self._has_worktree(item_id):
            raise WorkspaceError(f"{item_id} has no worktree")
        path = self.worktree_path(item_id)
        with self._repo_lock():
            self.run_git(path, "add", "-A")
            return self._commit_staged(path, message)

    def _commit_staged(self, path: Path, message: str) -> str | None:
        if self.run_git(path, "diff", "--cached", "--quiet", check=False)[0] == 0:
            return None
        self.run_git(path, "commit", "-q", "--no-verify", "-m", message, env=IDENTITY)
        return self.git_out(path, "rev-parse", "HEAD")

    def _write_updates(self, item_id: str, file_updates: dict[str, str]) -> str | None:
        """Write `file_updates` into the worktree and commit just those files."""
        path = self.worktree_path(item_id)
        for rel, text in file_updates.items():
            try:
                target = resolve_path(path, rel)
            except PolicyViolation as exc:
                raise WorkspaceError(f"file update refused: {exc}") from exc
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        self.run_git(path, "add", "--", *file_updates)
        return self._commit_staged(path, f"{item_id}: update {', '.join(sorted(file_updates))}")

    # --- merging (the mechanics are in agentsprint.merging) ---------------------------------------

    def merge(self, item_id: str, message: str, file_updates: dict[str, str] | None = None) -> MergeResult:
        """Commit pending work and `file_updates` on the item branch, then bring it into the base branch.

        Fast-forward when possible, else a merge commit. On conflict nothing moves: the base and its
        checked-out tree are untouched, and the file-updates commit is taken back off the item branch.
        """
        with self._repo_lock():
            self.create_worktree(item_id)
            self.commit_all(item_id, message)
            before_updates = self.head(item_id)
            try:
                if file_updates:
                    self._write_updates(item_id, file_updates)
                result = integrate(self, item_id, message)
            except WorkspaceError:
                self._take_back(item_id, before_updates)
                raise
            if not result.merged:
                self._take_back(item_id, before_updates)
            return result

    def commit_to_base(self, file_updates: dict[str, str], message: str) -> str:
        """Commit `file_updates` (repository paths -> text) straight onto the base branch; the new sha.

        Built in a temporary index, so no worktree is involved; the checked-out base tree is then updated
        like a merge's, and refused (MergeBlocked) when the user has uncommitted changes to those files.
        """
        with self._repo_lock(), tempfile.TemporaryDirectory(prefix="agentsprint-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **IDENTITY}
            base_sha = self.base_head()
            self.run_git(self.repo_root, "read-tree", base_sha, env=env)
            for rel, text in file_updates.items():
                blob = self.run_git_bytes(self.repo_root, "hash-object", "-w", "--stdin",
                                          stdin=text.encode("utf-8"))[1].decode().strip()
                self.run_git(self.repo_root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{rel}",
                             env=env)
            tree = self.git_out(self.repo_root, "write-tree", env=env)
            sha = self.git_out(self.repo_root, "commit-tree", tree, "-p", base_sha, "-m", message, env=env)
            advance_base(self, base_sha, sha)
            return sha

    def _take_back(self, item_id: str, sha: str) -> None:
        if self.head(item_id) != sha:
            self.run_git(self.worktree_path(item_id), "reset", "-q", "--keep", sha)

    def rebase_onto_base(self, item_id: str) -> MergeResult:
        """Replay the item branch onto the current base; on conflict abort, report, and change nothing."""
        with self._repo_lock():
            path = self.create_worktree(item_id)
            self.commit_all(item_id, f"{item_id}: work in progress (saved before rebasing)")
            base_sha, before = self.base_head(), self.head(item_id)
            if self.is_ancestor(base_sha, before):
                return MergeResult(merged=True, sha=before, fast_forward=True)
            status, _, err = self.run_git(path, "rebase", "-q", "--no-verify", base_sha, env=IDENTITY,
                                          check=False)
            if status == 0:
                return MergeResult(merged=True, sha=self.head(item_id))
            conflicts = split_z(self.run_git(path, "diff", "--name-only", "--diff-filter=U", "-z")[1])
            self.run_git(path, "rebase", "--abort")
            if not conflicts:
                raise WorkspaceError(f"git rebase failed: {err.strip()}")
            return MergeResult(merged=False, conflicts=sorted(conflicts))


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _checkout_of(admin: Path) -> Path | None:
    """The folder a worktree's admin dir belongs to (its `gitdir` file names `<folder>/.git`)."""
    gitdir = _text(admin / "gitdir")
    return Path(gitdir).parent.resolve() if gitdir else None
