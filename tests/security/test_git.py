"""A git killed inside agentsprint's merge leaves lock files; the next merge clears them when that is safe.

Finding 9: `kill -9` of `review approve`'s process group while git updated `main` left `HEAD.lock`,
`refs/heads/main.lock` and staged changes, and every later approve failed until the user deleted the
locks by hand. The kill here is deterministic: the reflog of `main` is a FIFO, so git blocks opening
it with both ref locks held, exactly inside the ref update.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import git, item, make_project

from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.merging import clear_stale_merge_locks
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.workspace import Workspace

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def git_locks(root: Path) -> list[str]:
    """Git's lock files in the repository's git folder (agentsprint's own flock file aside)."""
    folder = root / ".git"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.lock") if p.name != "agentsprint.lock")


@pytest.fixture
def awaiting(tmp_path: Path) -> Iterator[Path]:
    """A project whose AS-1 waits for review, and a user with uncommitted work in the main checkout."""
    steps = [tool_call("write_file", path="shop/notes.py", content="NOTE = 'reviewed'\n"),
             tool_call("finish", summary="a note")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        root = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"review": "human"}])], book).root
        done = cli(root, "run", "--item", "AS-1")
        assert json.loads(cli(root, "show", "AS-1", "--json").stdout)["status"] == "awaiting_review", done.stderr
        with (root / "README.md").open("a", encoding="utf-8") as readme:
            readme.write("\nThe user's own edit, not committed yet.\n")
        (root / "scratch.txt").write_text("the user's untracked notes\n", encoding="utf-8")
        yield root


def _kill_inside_the_ref_update(root: Path) -> None:
    """Start `review approve`, wait until git holds the ref locks and blocks on main's reflog, kill -9 its group."""
    reflog = root / ".git" / "logs" / "refs" / "heads" / "main"
    saved = reflog.read_bytes()
    reflog.unlink()
    os.mkfifo(reflog)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    proc = subprocess.Popen([AGENTSPRINT, "review", "approve", "AS-1"], cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (root / ".git" / "refs" / "heads" / "main.lock").exists():
            assert proc.poll() is None, "approve ended before git reached the ref update"
            assert time.monotonic() < deadline, "git never reached the ref update"
            time.sleep(0.02)
        time.sleep(0.5)  # git is now blocked opening the FIFO, both locks held
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reflog.unlink()
        reflog.write_bytes(saved)


def test_approve_killed_inside_the_ref_update_is_repaired_by_the_next_approve(awaiting: Path) -> None:
    root = awaiting
    base_before = git(root, "rev-parse", "main").strip()

    _kill_inside_the_ref_update(root)

    assert {"HEAD.lock", "refs/heads/main.lock"} <= set(git_locks(root)), "the kill left git's ref locks"
    assert git(root, "rev-parse", "main").strip() == base_before, "main never moved"
    assert git(root, "diff", "--cached", "--name-only").strip(), "and the update left staged changes"

    again = cli(root, "review", "approve", "AS-1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert git_locks(root) == []
    assert git(root, "rev-parse", "main").strip() == git(root, "rev-parse", "agentsprint/AS-1").strip()
    assert (root / "shop" / "notes.py").read_text(encoding="utf-8") == "NOTE = 'reviewed'\n"
    assert "The user's own edit, not committed yet." in (root / "README.md").read_text(encoding="utf-8")
    assert (root / "scratch.txt").read_text(encoding="utf-8") == "the user's untracked notes\n"
    assert sorted(git(root, "status", "--porcelain").splitlines()) == [" M README.md", "?? scratch.txt"]
    assert json.loads(cli(root, "show", "AS-1", "--json").stdout)["status"] == "done"


@pytest.fixture
def stale(git_repo: Path, tmp_path: Path) -> tuple[Workspace, list[Path]]:
    """A repository with the locks a killed merge leaves, a minute old."""
    ws = Workspace(git_repo, tmp_path / "worktrees", "main")
    locks = [git_repo / ".git" / "HEAD.lock", git_repo / ".git" / "refs" / "heads" / "main.lock",
             git_repo / ".git" / "index.lock"]
    for lock in locks:
        lock.write_text("0" * 40 + "\n")
        old = time.time() - 60
        os.utime(lock, (old, old))
    return ws, locks


@pytest.mark.parametrize("where", ["cwd", "GIT_DIR"])
def test_locks_are_left_alone_while_any_git_works_in_the_repository(
        stale: tuple[Workspace, list[Path]], tmp_path: Path, where: str) -> None:
    ws, locks = stale
    cwd, env = (ws.repo_root, None) if where == "cwd" else (tmp_path, {**os.environ, "GIT_DIR": str(ws.common_dir())})
    live = subprocess.Popen(["git", "hash-object", "--stdin"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    try:
        assert clear_stale_merge_locks(ws) == [], "a live git may hold them"
        assert all(lock.exists() for lock in locks)
    finally:
        live.communicate(b"x")
    assert sorted(clear_stale_merge_locks(ws)) == sorted(locks), "once it is gone they are stale"
    assert not any(lock.exists() for lock in locks)


def test_a_stale_ref_lock_of_a_base_that_is_not_checked_out_is_cleared(git_repo: Path, tmp_path: Path) -> None:
    """A kill inside `git update-ref` (the base is not checked out anywhere) leaves only the ref's lock."""
    git(git_repo, "checkout", "-q", "-b", "elsewhere")
    ws = Workspace(git_repo, tmp_path / "worktrees", "main")
    (ws.create_worktree("AS-1") / "new.txt").write_text("new\n", encoding="utf-8")
    lock = git_repo / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("0" * 40 + "\n")
    os.utime(lock, (time.time() - 60, time.time() - 60))

    result = ws.merge("AS-1", "merge AS-1")

    assert result.merged and git(git_repo, "rev-parse", "main").strip() == result.sha
    assert not lock.exists()
