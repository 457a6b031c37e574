"""What the bubblewrap sandbox adds to each agent command, against the same command unconfined.

    python benchmarks/sandbox.py          # 40 samples per command; writes results/sandbox.json
    python benchmarks/sandbox.py --small  # CI: 8 samples, results not written

Each sample runs one command through `policy.run_command` (the path of the coder's `run` tool and
of command gates) in an item's worktree, once with `[policy] sandbox = "none"` and once with the
project's bubblewrap sandbox (state folder, database, .env and credentials hidden), alternating, so
machine noise hits both. Commands: `true` (bubblewrap's own cost) and `python -c pass` (a typical
interpreter start). Target: the sandbox adds under 100 ms per command at the median (an agent's
command gates and tests take seconds; a model call takes several). Exit 1 when the target is
missed or bubblewrap does not work here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentsprint import policy
from agentsprint.config import load_settings
from agentsprint.sandbox import Sandbox, bwrap_problem

ROOT = Path(__file__).resolve().parent.parent
TARGET_ADDED_MS = 100.0
COMMANDS = {"true": ["true"], "python -c pass": [sys.executable, "-c", "pass"]}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_worktree(root: Path) -> tuple[Path, Sandbox]:
    """A repository with an item worktree and a database file; the worktree and its project's sandbox."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.py").write_text("A = 1\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-q", "-m", "sample")
    worktree = root / ".agentsprint" / "worktrees" / "AS-1"
    git(root, "worktree", "add", "-q", "-b", "agentsprint/AS-1", str(worktree))
    (root / ".agentsprint" / "agentsprint.db").write_bytes(b"")
    return worktree, Sandbox.from_settings(load_settings(root, environ={}))


def timed(argv: list[str], worktree: Path, sandbox: Sandbox) -> float:
    started = time.perf_counter()
    result = policy.run_command(argv, worktree, 30, 1000, sandbox=sandbox)
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return seconds * 1000


def measure(name: str, argv: list[str], worktree: Path, sandbox: Sandbox, samples: int) -> dict[str, Any]:
    unconfined = Sandbox(mode="none")
    times: dict[str, list[float]] = {"none": [], "bwrap": []}
    timed(argv, worktree, sandbox)  # warm the page cache and the one-off bubblewrap check
    for _ in range(samples):
        times["none"].append(timed(argv, worktree, unconfined))
        times["bwrap"].append(timed(argv, worktree, sandbox))
    none_ms, bwrap_ms = statistics.median(times["none"]), statistics.median(times["bwrap"])
    return {"command": name, "samples": samples, "none_median_ms": round(none_ms, 2),
            "bwrap_median_ms": round(bwrap_ms, 2), "added_ms": round(bwrap_ms - none_ms, 2),
            "ratio": round(bwrap_ms / none_ms, 2),
            "bwrap_p90_ms": round(statistics.quantiles(times["bwrap"], n=10)[-1], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="8 samples, results not written (CI)")
    args = parser.parse_args()
    problem = bwrap_problem()
    if problem is not None:
        print(f"cannot measure the sandbox: {problem}", file=sys.stderr)
        return 1
    load = os.getloadavg()[0]
    samples = 8 if args.small else 40
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-sandbox-") as tmp:
        worktree, sandbox = make_worktree(Path(tmp) / "repo")
        rows = [measure(name, argv, worktree, sandbox, samples) for name, argv in COMMANDS.items()]
    for row in rows:
        print(f"{row['command']:>15}: none {row['none_median_ms']:.1f} ms, bwrap {row['bwrap_median_ms']:.1f} ms "
              f"(p90 {row['bwrap_p90_ms']:.1f}): added {row['added_ms']:.1f} ms, x{row['ratio']:.2f} "
              f"(target < {TARGET_ADDED_MS:g} ms)")
    missed = [row for row in rows if row["added_ms"] >= TARGET_ADDED_MS]
    if not args.small:
        machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                   "bwrap": subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip(),
                   "load_average_1m_at_start": round(load, 2)}
        result = {"command": "python benchmarks/sandbox.py", "machine": machine,
                  "target_added_ms_max": TARGET_ADDED_MS, "results": rows,
                  "target_met": not missed, "recorded_at": time.strftime("%Y-%m-%d")}
        (ROOT / "benchmarks" / "results" / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
