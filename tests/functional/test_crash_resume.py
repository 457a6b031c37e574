"""kill -9 at 20 random points of a four-item sprint, resuming each time: it ends as a run left alone does.

The scripted model server runs in this process and answers every reply after 0.1-0.2 s, so kills land
in model calls as well as in tool runs, gates, git commits and DBOS's own bookkeeping. The kill points
are spread over the sprint's progress: every fourth `agentsprint run` is killed during its start-up and
recovery (a random share of the baseline's start-up time), the others a random share of the baseline's
work time after their first model request, so that the twenty attempts together walk through the
whole sprint; a last `agentsprint run` finishes it.
"""

from __future__ import annotations

import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from durability_support import (
    ITEM_IDS,
    RequestClock,
    cli,
    kill_group,
    new_project,
    serve_book,
    snapshot,
    sprint_book,
    start,
)
from runner_support import query

from agentsprint.llm.scripted import ScriptedServer
from agentsprint.workspace import Workspace

KILLS = 20
SEED = 20261121
LATENCY = (0.1, 0.2)
WORK_SHARE = 1.5  # an attempt works up to WORK_SHARE * work / KILLS seconds after its first model request
STARTUP_EVERY = 4  # every fourth attempt is killed during start-up and recovery instead
STARTUP_CAP = 3.0  # an attempt that has not called a model after 3 start-ups is killed anyway


@dataclass
class Timing:
    startup: float
    work: float


@dataclass
class Kills:
    landed: int = 0
    exited: int = 0


def run_baseline(root: Path, clock: RequestClock, log: Path) -> Timing:
    """One uninterrupted `agentsprint run`: how long until its first model request, and after it."""
    started = time.monotonic()
    proc = start(root, "run", "--ci", "--json", log=log)
    try:
        assert proc.wait(timeout=180) == 0, log.read_text()
    finally:
        kill_group(proc)
    ended = time.monotonic()
    first = clock.first_after(started) or started
    return Timing(startup=first - started, work=ended - first)


def crash_loop(root: Path, timing: Timing, clock: RequestClock, log: Path) -> Kills:
    """Start `agentsprint run` KILLS times and SIGKILL it at a random point of its start-up or its work."""
    rng = random.Random(SEED)
    kills = Kills()
    for attempt in range(KILLS):
        in_startup = attempt % STARTUP_EVERY == 0
        share = rng.uniform(0.3, 1.0) if in_startup else rng.uniform(0, WORK_SHARE * timing.work / KILLS)
        proc = start(root, "run", "--ci", "--json", log=log)
        try:
            if _live_until(proc, clock, share, in_startup, timing):
                kills.landed += 1
            else:
                kills.exited += 1
        finally:
            kill_group(proc)
    return kills


def _live_until(proc: subprocess.Popen[bytes], clock: RequestClock, share: float, in_startup: bool,
                timing: Timing) -> bool:
    """Wait for the kill point: a share of the start-up, or `share` seconds after the first model request.

    False when the run ended by itself first.
    """
    started = time.monotonic()
    deadline = started + (share * timing.startup if in_startup else STARTUP_CAP * timing.startup)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        first = None if in_startup else clock.first_after(started)
        if first is not None:
            deadline = min(deadline, first + share)
        time.sleep(0.01)
    return proc.poll() is None


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    clock = RequestClock()
    with ScriptedServer() as server:
        serve_book(server, sprint_book(), *LATENCY, clock=clock)
        baseline = new_project(tmp_path / "baseline", server.base_url)
        timing = run_baseline(baseline.root, clock, tmp_path / "baseline.log")
        crashed = new_project(tmp_path / "crashed", server.base_url)
        kills = crash_loop(crashed.root, timing, clock, tmp_path / "crashed.log")
        final = cli(crashed.root, "run", "--ci", "--json", timeout=180)

    in_flight = query(crashed, "SELECT count(*) FROM model_calls WHERE outcome = 'reserved'")[0][0]
    print(f"\nbaseline: start-up {timing.startup:.2f} s, work {timing.work:.2f} s; kills on a live run: "
          f"{kills.landed}, runs that finished first: {kills.exited}; calls left charged in flight: {in_flight}")
    assert final.returncode == 0, final.stdout + final.stderr
    assert kills.landed >= KILLS - 2, "the kills must hit runs that were still working"
    want, got = snapshot(baseline), snapshot(crashed)
    assert want.statuses == dict.fromkeys(ITEM_IDS, "awaiting_review")
    assert got.statuses == want.statuses
    assert got.attempts == want.attempts, "an interrupted run's queued items are resumed, not claimed again"
    assert all(len(ends) == 1 for ends in got.end_states.values()), got.end_states
    assert got.end_states == want.end_states
    assert got.ok_calls == want.ok_calls, "a completed model call was made again"
    assert got.calls_by_item == want.calls_by_item
    assert got.over_budget == [] and want.over_budget == []
    assert got.rounds == want.rounds, "each round is recorded once, with the baseline's verdicts"
    assert got.diffs == want.diffs and got.committed == want.committed
    assert got.files == want.files
    assert got.chain[1] is None and got.chain[0] > 0, got.chain


class TestGitLeftoversOfAKill:
    """What a git killed with its `agentsprint run` leaves behind is cleared, never a reason to fail."""

    def test_a_worktree_add_killed_halfway_is_cleared_and_made_again(self, git_repo: Path) -> None:
        ws = Workspace(git_repo, git_repo / ".agentsprint" / "worktrees", "main")
        ws.create_worktree("AS-1")
        admin, checkout = git_repo / ".git" / "worktrees" / "AS-2", ws.worktree_path("AS-2")
        admin.mkdir()
        checkout.mkdir()
        (admin / "locked").write_text("initializing")  # what git 2.39 left when killed in `worktree add`
        (admin / "gitdir").write_text(f"{checkout}/.git\n")
        (admin / "HEAD").write_text("0" * 40 + "\n")
        (admin / "commondir").write_text("")
        (checkout / ".git").write_text(f"gitdir: {admin}\n")
        broken = subprocess.run(["git", "worktree", "list"], cwd=git_repo, capture_output=True, text=True)
        assert broken.returncode != 0, "the leftover breaks every worktree command"

        assert ws.create_worktree("AS-2") == checkout
        assert set(ws.worktrees()) == {git_repo, ws.worktree_path("AS-1"), checkout}
        assert ws.diff("AS-1") == "", "the other items' worktrees are untouched"

    def test_lock_files_of_a_killed_commit_are_cleared(self, git_repo: Path) -> None:
        ws = Workspace(git_repo, git_repo / ".agentsprint" / "worktrees", "main")
        path = ws.create_worktree("AS-1")
        (path / "work.py").write_text("x = 1\n")
        (git_repo / ".git" / "worktrees" / "AS-1" / "index.lock").write_text("")
        (git_repo / ".git" / "refs" / "heads" / "agentsprint" / "AS-1.lock").write_text("")

        assert ws.commit_all("AS-1", "round 1") is not None
        assert "x = 1" in ws.diff("AS-1")

    def test_the_main_checkout_and_other_worktrees_keep_their_locks(self, git_repo: Path, tmp_path: Path) -> None:
        ws = Workspace(git_repo, git_repo / ".agentsprint" / "worktrees", "main")
        subprocess.run(["git", "worktree", "add", "-q", "-b", "mine", str(tmp_path / "mine")], cwd=git_repo,
                       check=True)
        user_lock = git_repo / ".git" / "worktrees" / "mine" / "index.lock"
        main_lock = git_repo / ".git" / "index.lock"
        user_lock.write_text("")
        main_lock.write_text("")

        ws.create_worktree("AS-1")

        assert user_lock.exists() and main_lock.exists(), "only agentsprint's own worktrees are cleared"
