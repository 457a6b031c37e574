"""What running command gates in a clean checkout costs, against running them in the coder's worktree.

    python benchmarks/gates.py          # repositories of 500 and 5,000 files; writes results/gates.json
    python benchmarks/gates.py --small  # CI: 200 files, 3 samples, results not written

Each sample runs one item's gates (`python -c pass` as the only command gate) on a new commit of the
item, once with `[run] gate_checkout = "clean"` and once with `"worktree"`, alternating, so machine
noise hits both. The clean checkout is a detached `git worktree add` in the first round (reported
apart: it writes every file) and, in later rounds, the same checkout forced to the new tip and
cleaned. Target: a later round's clean checkout adds under 1 s on a 5,000-file repository (a round's
model calls take tens of seconds). Exit 1 when the target is missed.
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

from agentsprint import dod
from agentsprint.config import RunSettings, Settings
from agentsprint.domain import Item, parse_gate
from agentsprint.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

TARGET_SECONDS = 1.0
FILE_TEXT = "".join(f"line {n}: some source text of a typical length for a file\n" for n in range(40))  # ~2.4 KB


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Workspace:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for n in range(files):
        path = root / "src" / f"pkg{n % 50}" / f"module_{n}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FILE_TEXT)
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-q", "-m", "sample")
    ws = Workspace(root, root / ".agentsprint" / "worktrees", "main")
    worktree = ws.create_worktree("AS-1")
    (worktree / "src" / "pkg0" / "module_0.py").write_text(FILE_TEXT + "# changed\n")
    ws.commit_all("AS-1", "round 1")
    return ws


def measure(files: int, samples: int) -> dict[str, Any]:
    item = Item(id="AS-1", title="bench", dod=[parse_gate({"noop": f"{sys.executable} -c pass"})])
    clean = Settings(run=RunSettings(gate_checkout="clean"))
    in_worktree = Settings(run=RunSettings(gate_checkout="worktree"))

    def timed(ws: Workspace, settings: Settings) -> float:
        started = time.perf_counter()
        results = dod.run_item_gates(item, ws, ws.changed_files("AS-1"), ws.diff("AS-1"), settings)
        seconds = time.perf_counter() - started
        assert all(r.passed for r in results), results
        return seconds

    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-gates-") as tmp:
        ws = make_repo(Path(tmp) / "repo", files)
        first = timed(ws, clean)
        times: dict[str, list[float]] = {"clean": [], "worktree": []}
        worktree = ws.worktree_path("AS-1")
        for n in range(samples):
            (worktree / "src" / "pkg1" / "module_1.py").write_text(FILE_TEXT + f"# round {n + 2}\n")
            ws.commit_all("AS-1", f"round {n + 2}")
            times["clean"].append(timed(ws, clean))
            times["worktree"].append(timed(ws, in_worktree))
        ws.drop_gate_checkout("AS-1")
    later, plain = statistics.median(times["clean"]), statistics.median(times["worktree"])
    return {"files": files, "samples": samples, "first_round_clean_s": round(first, 3),
            "later_round_clean_median_s": round(later, 3), "worktree_median_s": round(plain, 3),
            "added_s": round(later - plain, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="200 files, 3 samples, results not written (CI)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    sizes = [(200, 3)] if args.small else [(500, 9), (5000, 9)]
    rows = [measure(files, samples) for files, samples in sizes]
    for row in rows:
        print(f"{row['files']:>6} files: first round clean {row['first_round_clean_s']:.3f} s; later rounds "
              f"clean {row['later_round_clean_median_s']:.3f} s vs worktree {row['worktree_median_s']:.3f} s: "
              f"added {row['added_s']:.3f} s (target < {TARGET_SECONDS} s)")
    missed = [row for row in rows if row["added_s"] >= TARGET_SECONDS]
    if not args.small:
        machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                   "load_average_1m_at_start": round(load, 2)}
        result = {"command": "python benchmarks/gates.py", "machine": machine,
                  "target_added_s_max": TARGET_SECONDS, "results": rows,
                  "target_met": not missed, "recorded_at": time.strftime("%Y-%m-%d")}
        (ROOT / "benchmarks" / "results" / "gates.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
