"""Time of `agentsprint retro` as whole processes on a large recorded history.

    python benchmarks/retro.py            # 100,000 model calls over 2,000 items; 5 runs per format
    python benchmarks/retro.py --small    # 10,000 calls over 200 items; 3 runs (CI)

The history is written straight into a fresh project's SQLite database (a store migrated by
agentsprint, rows inserted in bulk): items in every end state, two QA rounds and about one review
for most, escalations, handoffs and 50 model calls per item across the three roles, each call
row carrying about 7.5 KB of stored request, response and attributes as real ones do. Wall time is
the median over the runs; CPU time (user + system) and peak RSS come from wait4(): on a shared
machine the CPU time says what the wall time would be without the other load. Results go to
benchmarks/results/retro.json; the exit code is 1 when a target (wall time) is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"json": 1.0, "html": 3.0}
REQUEST = json.dumps({"messages": [{"role": "user", "content": "x" * 6000}]})
RESPONSE = json.dumps({"content": "y" * 1200})
ATTRIBUTES = json.dumps({"gen_ai.request.model": "m", "agentsprint.usage": "reported", "padding": "z" * 200})
"""Stored payloads of about the size real calls have (the redacted prompt dominates)."""
RESULTS = Path(__file__).resolve().parent / "results" / "retro.json"
SCRIPT = Path(sys.executable).parent / "agentsprint"
STATUSES = ["done"] * 6 + ["awaiting_review", "escalated", "failed", "stopped"]
ROLES = [("supervisor", "openai/strong", 3e-6, 15e-6), ("coder", "openai/cheap", 4e-7, 1.6e-6),
         ("qa", "openai/cheap", 4e-7, 1.6e-6)]


def make_project(root: Path) -> Path:
    """A git repository with `agentsprint init` run and its store migrated; the database path."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run([str(SCRIPT), "init"], cwd=root, check=True, capture_output=True)
    from agentsprint.config import load_settings
    from agentsprint.store import Store

    settings = load_settings(root, environ={})
    Store(settings.database_url).close()
    return Path(settings.database_url.removeprefix("sqlite:///"))


def item_rows(rng: random.Random, index: int, start: float) -> dict[str, list[tuple[object, ...]]]:
    """The rows one item leaves: state, transitions, rounds, a review or an escalation, handoffs."""
    item_id, status = f"AS-{index + 1}", rng.choice(STATUSES)
    at = start + index * 60.0
    budget = json.dumps({"tokens": 500000, "usd": 2.5, "time": "30m", "rounds": 3})
    rows: dict[str, list[tuple[object, ...]]] = {"state": [(item_id, status, 2, "t", "bug", "high", rng.randint(1, 8),
                                                             budget, at + 600)]}
    steps = [("todo", "planned"), ("planned", "running"), ("running", "awaiting_review")]
    if status == "done":
        steps.append(("awaiting_review", "done"))
    elif status != "awaiting_review":
        steps[-1] = ("running", status)
    rows["transitions"] = [(item_id, a, b, at + 100 * n) for n, (a, b) in enumerate(steps)]
    rows["rounds"] = [(item_id, json.dumps({"round": r, "verdict": "approve" if r == 2 else "reject", "added": 40,
                                            "removed": 8, "diff": "x" * 2000}), at + 50 * r) for r in (1, 2)]
    rows["reviews"] = [(item_id, "approve", at + 200, at + 300 + rng.random() * 3600, 48)] if status == "done" else []
    rows["escalations"] = [(item_id, "budget", at + 200)] if status == "escalated" else []
    rows["handoffs"] = [(item_id, role, model, rng.random() > 0.02, at + n) for n, (role, model, _, _) in
                        enumerate(ROLES * 4)]
    return rows


def call_rows(rng: random.Random, items: int, calls: int, start: float) -> list[tuple[object, ...]]:
    """`calls` settled model calls, each item's in a row (as a run makes them: an item's rounds, then the next)."""
    found, per_item = [], calls // items
    for n in range(calls):
        role, model, price_in, price_out = ROLES[n % 3]
        inp, out = rng.randint(500, 20000), rng.randint(20, 2000)
        item_id = f"AS-{min(n // per_item, items - 1) + 1}"
        found.append((item_id, role, model, inp, out, inp * price_in + out * price_out, f'["item:{item_id}"]',
                      start + n * 0.5, REQUEST, RESPONSE, ATTRIBUTES))
    return found


def fill(db: Path, items: int, calls: int) -> None:
    """Write the history into the project's database in bulk."""
    rng, start = random.Random(7), time.time() - 14 * 86400
    tables: dict[str, list[tuple[object, ...]]] = {}
    for index in range(items):
        for table, rows in item_rows(rng, index, start).items():
            tables.setdefault(table, []).extend(rows)
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO item_state (item_id, status, round, title, type, priority, value, budget_json, "
                         "updated_at, attempt, paused_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0)",
                         tables["state"])
        conn.executemany("INSERT INTO item_transitions (item_id, from_status, to_status, at, actor) "
                         "VALUES (?, ?, ?, ?, 'runner')", tables["transitions"])
        conn.executemany("INSERT INTO events (item_id, data_json, at, kind, actor, prev_hash, hash) "
                         "VALUES (?, ?, ?, 'round', 'runner', '', '')", tables["rounds"])
        conn.executemany("INSERT INTO reviews (item_id, decision, requested_at, decided_at, changed_lines, reviewer) "
                         "VALUES (?, ?, ?, ?, ?, 'lead')", tables["reviews"])
        conn.executemany("INSERT INTO escalations (item_id, reason, created_at, detail, package_json) "
                         "VALUES (?, ?, ?, '', '{}')", tables["escalations"])
        conn.executemany("INSERT INTO handoffs (item_id, role, model, valid, at, round) VALUES (?, ?, ?, ?, ?, 1)",
                         tables["handoffs"])
        conn.executemany(
            "INSERT INTO model_calls (item_id, role, model, input_tokens, output_tokens, usd, scopes_json, started_at, "
            "request_json, response_json, attributes_json, outcome, round, requested_max_tokens, granted_max_tokens, "
            "estimated_input_tokens, reserved_tokens, reserved_usd, cached_input_tokens, retries) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', 1, 4096, 4096, 0, 0, 0, 0, 0)",
            call_rows(rng, items, calls, start))


def run_once(root: Path, fmt: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `agentsprint retro --format fmt -o FILE` process."""
    started = time.perf_counter()
    process = subprocess.Popen([str(SCRIPT), "retro", "--format", fmt, "-o", str(root / f"retro.{fmt}")], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"agentsprint retro --format {fmt} failed: {error}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(root: Path, fmt: str, runs: int) -> dict[str, float]:
    """Median, min and max wall time, median CPU time and the largest peak RSS over `runs` processes."""
    samples = [run_once(root, fmt) for _ in range(runs)]
    times = [wall for wall, _, _ in samples]
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "median_cpu_s": round(statistics.median(c for _, c, _ in samples), 3),
            "peak_rss_mib": round(max(rss for _, _, rss in samples), 1),
            "output_kib": round((root / f"retro.{fmt}").stat().st_size / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10,000 calls over 200 items, 3 runs (CI)")
    parser.add_argument("--fill", nargs=3, metavar=("DB", "ITEMS", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:  # in a child process, so that the measured processes do not inherit its memory
        fill(Path(args.fill[0]), int(args.fill[1]), int(args.fill[2]))
        return 0
    items, calls, runs = (200, 10_000, 3) if args.small else (2_000, 100_000, 5)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "p"
        db = make_project(root)
        subprocess.run([sys.executable, __file__, "--fill", str(db), str(items), str(calls)], check=True)
        found = {fmt: measure(root, fmt, runs) for fmt in TARGETS}
    missed = [fmt for fmt, limit in TARGETS.items() if found[fmt]["median_s"] >= limit]
    result = {"items": items, "model_calls": calls, "runs": runs, "targets_s": TARGETS, "results": found,
              "missed": missed, "python": platform.python_version(), "load_average": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    if not args.small:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
