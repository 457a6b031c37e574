"""What hardening agentsprint's git calls costs: one call, and one item's commit and merge.

    python benchmarks/git_calls.py     # prints JSON; nothing is written

A git call that may convert or merge file content first asks git which filter and merge drivers
the repository's config defines (one `git config` process), then runs with hooks, fsmonitor and
those drivers off; content-free plumbing (`rev-parse`, `merge-base`, ...) skips the lookup. This
measures both kinds against a bare `git` process, in a repository of 500 files. Target: a hardened
call adds under 10 ms (an item makes a few dozen git calls per round; a round's model calls take
tens of seconds). Exit 1 when the target is missed.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentsprint.workspace import Workspace

TARGET_ADDED_MS = 10.0
SAMPLES = 30


def _repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    for n in range(files):
        (repo / "src" / f"f{n}.py").write_text(f"VALUE = {n}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def _median_ms(action: object) -> float:
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = _repo(Path(tmp), 500)
        ws = Workspace(repo, Path(tmp) / "worktrees", "main")
        bare = _median_ms(lambda: subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True))
        hardened = _median_ms(lambda: ws.run_git(repo, "rev-parse", "HEAD"))
        bare_status = _median_ms(lambda: subprocess.run(["git", "status", "--porcelain"], cwd=repo,
                                                        capture_output=True))
        hardened_status = _median_ms(lambda: ws.run_git(repo, "status", "--porcelain"))
        started = time.perf_counter()
        for n in range(5):
            worktree = ws.create_worktree(f"AS-{n}")
            (worktree / "src" / f"new{n}.py").write_text("NEW = 1\n")
            ws.merge(f"AS-{n}", f"merge AS-{n}")
        merge_ms = round((time.perf_counter() - started) * 1000 / 5, 1)
    result: dict[str, object] = {"command": "python benchmarks/git_calls.py", "files": 500, "samples": SAMPLES,
              "rev_parse_bare_median_ms": bare, "rev_parse_hardened_median_ms": hardened,
              "status_bare_median_ms": bare_status, "status_hardened_median_ms": hardened_status,
              "added_ms_max": round(max(hardened - bare, hardened_status - bare_status), 2),
              "worktree_commit_merge_mean_ms": merge_ms, "target_added_ms_max": TARGET_ADDED_MS}
    result["target_met"] = result["added_ms_max"] < TARGET_ADDED_MS
    print(json.dumps(result, indent=2))
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
