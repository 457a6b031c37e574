"""kill -9, SIGINT and SIGTERM at 20 random points of a four-item sprint, resuming each time: it ends as
a run left alone does.

The scripted model server runs in this process and answers every reply after 0.1-0.2 s, so kills land
in model calls as well as in tool runs, gates, git commits and DBOS's own bookkeeping. Every fourth
`agentsprint run` is killed (SIGKILL) during its start-up and recovery, at a random share of the
baseline's start-up time. The others are stopped at a random point of their work: after a random
number of model requests of their own (0 to 2 beyond the first), plus a random delay of up to 0.25 s.
Counting requests instead of seconds makes each kill land on a working run whatever the machine's
load: a run makes requests only while it works, and the number allowed per attempt is paced by the
work left (measured against the baseline's requests), so the sprint is never done before the last
attempt. One work attempt in three gets SIGINT or SIGTERM instead of SIGKILL: it must leave within
the interrupt drain with exit status 130 and its one line, its items frozen for the next run. A last
`agentsprint run` finishes the sprint.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
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
EXTRA_REQUESTS = 2  # a work attempt is stopped after its first model request plus up to this many more
DELAY = 0.25  # ... and a random delay of up to this many seconds
STARTUP_EVERY = 4  # every fourth attempt is killed during start-up and recovery instead
STARTUP_CAP = 3.0  # an attempt that has not called a model after 3 start-ups is killed anyway
SIGNALS = {1: signal.SIGINT, 4: signal.SIGTERM}  # work attempt number % 6 -> the signal instead of SIGKILL
INTERRUPT_EXIT_SECONDS = 30.0


@dataclass
class Timing:
    startup: float
    work: float
    requests: int


@dataclass
class Kills:
    landed: int = 0
    exited: int = 0
    signalled: dict[str, int] = field(default_factory=dict)
    bad_exits: list[str] = field(default_factory=list)


def run_baseline(root: Path, clock: RequestClock, log: Path) -> Timing:
    """One uninterrupted `agentsprint run`: how long until its first model request, after it, and how many."""
    started = time.monotonic()
    proc = start(root, "run", "--ci", "--json", log=log)
    try:
        assert proc.wait(timeout=180) == 0, log.read_text()
    finally:
        kill_group(proc)
    ended = time.monotonic()
    first = clock.first_after(started) or started
    return Timing(startup=first - started, work=ended - first, requests=clock.count_after(started))


@dataclass
class Attempt:
    """One `agentsprint run` of the crash loop and where it is stopped."""

    number: int
    in_startup: bool
    share: float  # start-up attempts: share of the baseline start-up
    extra: int  # work attempts: model requests after the first before the kill
    delay: float
    signum: int = signal.SIGKILL


def plan(rng: random.Random, number: int, work_number: int, work_left: int, requests_left: int) -> Attempt:
    """Where attempt `number` is stopped; work attempts are paced so the sprint outlasts the loop."""
    if number % STARTUP_EVERY == 0:
        return Attempt(number, True, rng.uniform(0.3, 1.0), 0, 0.0)
    pace = max(0, min(EXTRA_REQUESTS, requests_left // max(1, work_left) - 1))
    return Attempt(number, False, 0.0, rng.randint(0, pace), rng.uniform(0, DELAY) if pace else 0.0,
                   SIGNALS.get(work_number % 6, signal.SIGKILL))


def crash_loop(root: Path, timing: Timing, clock: RequestClock, log: Path) -> Kills:
    """Start `agentsprint run` KILLS times and stop it at a random point of its start-up or its work."""
    rng = random.Random(SEED)
    kills = Kills()
    errors = Path(f"{log}.err")
    work_left = KILLS - len(range(0, KILLS, STARTUP_EVERY))
    for number in range(KILLS):
        requests_left = timing.requests - (clock.count_after(0) - timing.requests)
        work_number = number - number // STARTUP_EVERY - 1
        attempt = plan(rng, number, work_number, work_left, requests_left)
        work_left -= not attempt.in_startup
        offset = errors.stat().st_size if errors.exists() else 0
        proc = start(root, "run", "--ci", "--json", log=log)
        try:
            if _live_until(proc, clock, attempt, timing):
                kills.landed += 1
                _stop(proc, attempt, kills, errors, offset)
            else:
                kills.exited += 1
        finally:
            kill_group(proc)
    return kills


def _live_until(proc: subprocess.Popen[bytes], clock: RequestClock, attempt: Attempt, timing: Timing) -> bool:
    """Wait for the kill point; False when the run ended by itself first."""
    started = time.monotonic()
    deadline = started + (attempt.share if attempt.in_startup else STARTUP_CAP) * timing.startup
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        arrivals = [] if attempt.in_startup else clock.arrivals_after(started)
        if len(arrivals) > attempt.extra:
            deadline = min(deadline, arrivals[attempt.extra] + attempt.delay)
        time.sleep(0.005)
    return proc.poll() is None


def _stop(proc: subprocess.Popen[bytes], attempt: Attempt, kills: Kills, errors: Path, offset: int) -> None:
    """SIGKILL the run's group, or signal the run and check that it leaves as an interrupted run should."""
    if attempt.signum == signal.SIGKILL:
        return
    name = signal.Signals(attempt.signum).name
    kills.signalled[name] = kills.signalled.get(name, 0) + 1
    proc.send_signal(attempt.signum)
    try:
        code = proc.wait(timeout=INTERRUPT_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        code = None
    with errors.open("rb") as handle:
        handle.seek(offset)
        said = handle.read().decode("utf-8", "replace")
    if code != 130 or "Traceback" in said or "will resume with `agentsprint run`" not in said:
        kills.bad_exits.append(f"attempt {attempt.number} ({name}): exit {code}\n{said[-2000:]}")


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    clock = RequestClock()
    with ScriptedServer() as server:
        serve_book(server, sprint_book(), *LATENCY, clock=clock)
        baseline = new_project(tmp_path / "baseline", server.base_url)
        timing = run_baseline(baseline.root, clock, tmp_path / "baseline.log")
        crashed = new_project(tmp_path / "crashed", server.base_url)
        kills = crash_loop(crashed.root, timing, clock, tmp_path / "crashed.log")
        final = cli(crashed.root, "run", "--ci", "--json", timeout=180)

    in_flight = query(crashed, "SELECT count(*) FROM model_calls WHERE outcome = 'reserved'")[0][0]
    interrupted = query(crashed, "SELECT count(*) FROM model_calls WHERE outcome = 'interrupted'")[0][0]
    print(f"\nbaseline: start-up {timing.startup:.2f} s, work {timing.work:.2f} s, {timing.requests} requests; "
          f"kills on a live run: {kills.landed} (signals instead of SIGKILL: {kills.signalled}), runs that "
          f"finished first: {kills.exited}; calls charged at their reservation: {interrupted}, "
          f"left in flight: {in_flight}")
    assert final.returncode == 0, final.stdout + final.stderr
    assert kills.landed == KILLS, "every kill hits a run that is still working"
    assert kills.signalled == {"SIGINT": 3, "SIGTERM": 2}, kills.signalled
    assert kills.bad_exits == [], "\n".join(kills.bad_exits)
    assert in_flight == 0, "every call a killed run left in flight was settled when its item resumed"
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
