"""Parallel items: wall time with --parallel 8 vs 1, and the runner's own time between recorded steps.

    python benchmarks/parallel.py            # 16 items, 300 ms per reply, parallel 8 vs 1 (~1 min)
    python benchmarks/parallel.py --small    # 4 items, 100 ms per reply, parallel 4 vs 1 (CI)

All runs happen in this one process after an untimed one-item warm-up, each on a fresh copy of the
sample repository, through `run_items` (what `agentsprint run` calls) against the scripted model
server over real HTTP. Every item is one round of four model calls (plan, write_file, finish,
approve) and merges into main; its DoD is the secret scan only, so no test command hides the
orchestration. Figures come from DBOS's own step records (`operation_outputs` in
`.agentsprint/dbos.sqlite`).

Targets (full run only): ratio = median wall time of three runs at --parallel 8 / wall time of one
run at --parallel 1 <= 0.2, and a median gap between consecutive steps of a workflow < 5 ms in the
sequential run (uncontended: at parallel 8 on 2 cores a gap also holds other workflows' CPU time).
Exit 1 when a target is missed. --small (CI) has bounds of its own, both measured within the run: at
4 items the fixed costs of a run (start-up, the last merge) weigh more, so its ratio bound is
SMALL_RATIO_MAX (parallel 4 at least 15 % faster than one at a time: a queue that ran items one by one
would measure about 1.0); and the runner's median gap between steps is at most SMALL_GAP_SHARE_MAX of
the median model-call step of the same sequential run (a loaded machine stretches both). Every item
must end done at both sizes. Only the full run writes benchmarks/results/parallel.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentsprint.runner.demo import CONFIG as DEMO_CONFIG

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 0.2
GAP_TARGET_MS = 5.0
SMALL_RATIO_MAX = 0.85
SMALL_GAP_SHARE_MAX = 0.5
FULL = {"items": 16, "parallel": 8, "latency": 0.3, "repeats": 3}
SMALL = {"items": 4, "parallel": 4, "latency": 0.1, "repeats": 1}
# The demo's config with the benchmark's model names and no [run] parallel (each run passes its own).
CONFIG = DEMO_CONFIG.replace("demo-", "bench-").replace("parallel = 2\n", "")


def bench_items(count: int) -> list[Any]:
    """`count` independent items, each writing its own file (disjoint scopes: no merge waits)."""
    from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate

    return [Item(id=f"AS-{n}", title=f"Add module {n}", type=ItemType.FEATURE, priority=Priority.MEDIUM, value=3,
                 scope=[f"shop/bench_{n}.py"], budget=Budget(tokens=60000, usd=0.5, time="10m", rounds=2),
                 dod=[parse_gate("secrets")], body=f"Add shop/bench_{n}.py.\n\n## Acceptance criteria\n- it exists\n")
            for n in range(1, count + 1)]


def serve(server: Any, count: int, latency: float) -> None:
    """Scripted agents for the items: a plan, write_file then finish, an approval; every reply after `latency`."""
    from agentsprint.llm.scripted import tool_call
    from agentsprint.runner.demo_script import ScriptBook

    coder: dict[tuple[str, int], list[Any]] = {
        (f"AS-{n}", 1): [tool_call("write_file", path=f"shop/bench_{n}.py", content=f"VALUE = {n}\n"),
                         tool_call("finish", summary=f"Added shop/bench_{n}.py.")]
        for n in range(1, count + 1)}
    for model, responder in ScriptBook({}, coder).responders("bench").items():
        server.add(model, responder=lambda body, r=responder: r(body).model_copy(update={"latency": latency}))


def run_once(folder: Path, base_url: str, count: int, parallel: int) -> dict[str, Any]:
    """One sprint of `count` items at `parallel`: wall time, end states and DBOS's step records."""
    from agentsprint.config import load_settings
    from agentsprint.runner.demo import create_sample
    from agentsprint.runner.service import run_items

    root = folder / f"parallel-{parallel}"
    create_sample(root, base_url, bench_items(count), config=CONFIG)
    settings = load_settings(root, environ={})
    started = time.time()
    report = run_items(settings, parallel=parallel)
    ended = time.time()
    steps = [step for workflow in step_rows(root).values() for step in workflow]
    first, last = min(s[1] for s in steps) / 1000, max(s[2] for s in steps) / 1000
    return {"seconds": round(ended - started, 2), "statuses": sorted(set(report.results.values())),
            "before_first_step_s": round(first - started, 2), "after_last_step_s": round(ended - last, 2),
            "steps": step_figures(root)}


def step_rows(root: Path) -> dict[str, list[tuple[str, int, int]]]:
    """Per workflow, its recorded steps in order: (name, started ms, completed ms)."""
    with sqlite3.connect(root / ".agentsprint" / "dbos.sqlite") as conn:
        rows = conn.execute("SELECT workflow_uuid, function_name, started_at_epoch_ms, completed_at_epoch_ms "
                            "FROM operation_outputs ORDER BY workflow_uuid, function_id").fetchall()
    workflows: dict[str, list[tuple[str, int, int]]] = {}
    for workflow, name, started, completed in rows:
        workflows.setdefault(workflow, []).append((name, started, completed))
    return workflows


def step_figures(root: Path) -> dict[str, Any]:
    """Gaps between consecutive steps (the runner's own time), and durations of the steps by kind."""
    gaps: list[int] = []
    other: list[int] = []
    model: list[int] = []
    by_name: dict[str, list[int]] = {}
    for steps in step_rows(root).values():
        gaps += [nxt[1] - cur[2] for cur, nxt in zip(steps, steps[1:], strict=False)]
        for name, started, completed in steps:
            (model if name == "call_model" else other).append(completed - started)
            by_name.setdefault(name, []).append(completed - started)
    return {"steps": len(other) + len(model), "gap_ms": _summary(gaps), "non_model_step_ms": _summary(other),
            "model_step_ms": _summary(model),
            "median_ms_by_step": {name: float(statistics.median(v)) for name, v in sorted(by_name.items())}}


def _summary(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": float(statistics.median(ordered)), "p90": float(ordered[int(0.9 * (len(ordered) - 1))]),
            "max": float(ordered[-1])} if ordered else {}


def measure(size: dict[str, Any]) -> dict[str, Any]:
    """The sprint at `parallel` (`repeats` times) and at 1, on fresh repositories, against one scripted server."""
    from agentsprint.llm.scripted import ScriptedServer

    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-") as tmp, ScriptedServer() as server:
        serve(server, size["items"], size["latency"])
        run_once(Path(tmp) / "warm-up", server.base_url, 1, 1)  # imports litellm, tiktoken, templates: not timed
        wide = [run_once(Path(tmp) / f"wide-{n}", server.base_url, size["items"], size["parallel"])
                for n in range(size["repeats"])]
        narrow = run_once(Path(tmp), server.base_url, size["items"], 1)
    wide_seconds = statistics.median(run["seconds"] for run in wide)
    ratio = wide_seconds / narrow["seconds"]
    gap = narrow["steps"]["gap_ms"]["median"]
    gap_share = gap / narrow["steps"]["model_step_ms"]["median"]
    small = size is SMALL
    return {
        "setup": {**size, "model_calls_per_item": 4, "dod": ["secrets"], "merges": True},
        f"parallel_{size['parallel']}": {"seconds_median": wide_seconds, "runs": wide},
        "parallel_1": narrow,
        "ratio": round(ratio, 3),
        "model_call_overhead_ms": round(narrow["steps"]["model_step_ms"]["median"] - size["latency"] * 1000, 1),
        "gap_share_of_model_step": round(gap_share, 3),
        "targets": ({"ratio_max": SMALL_RATIO_MAX, "gap_share_max": SMALL_GAP_SHARE_MAX} if small
                    else {"ratio_max": RATIO_TARGET, "gap_median_ms_max": GAP_TARGET_MS}),
        "met": {"ratio": ratio <= (SMALL_RATIO_MAX if small else RATIO_TARGET),
                "gap": gap_share <= SMALL_GAP_SHARE_MAX if small else gap < GAP_TARGET_MS,
                "all_done": all(run["statuses"] == ["done"] for run in [*wide, narrow])},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="4 items, parallel 4 vs 1, 100 ms replies (CI)")
    args = parser.parse_args()
    from agentsprint.config import offline_env

    offline_env()
    load = round(os.getloadavg()[0], 2)
    results = {
        "command": "python benchmarks/parallel.py" + (" --small" if args.small else ""),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1m_at_start": load},
        **measure(SMALL if args.small else FULL),
    }
    json.dump(results, sys.stdout, indent=2)
    print()
    if not args.small:
        out = ROOT / "benchmarks" / "results" / "parallel.json"
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    missed = [name for name, met in results["met"].items() if not met]
    if missed:
        print(f"bounds missed: {', '.join(missed)} (targets {results['targets']})")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
