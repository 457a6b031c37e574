"""The TUI's sprint board and retro reads on a large project: 5,000 backlog items, 50,000 model calls.

    python benchmarks/tui_board.py            # 5,000 items, 50,000 calls, a sprint of 100 items
    python benchmarks/tui_board.py --small    # 500 items, 5,000 calls, a sprint of 10 (CI; the same bounds)

The project is the one benchmarks/tui.py makes. Each figure is the median of three warm reads of what
the screen's worker runs (`sprint_data.board`: backlog, live statuses, forecasts and the plan's
gauges; `sprint_data.retro`: the sprint's retro report), after one cold read. The screen stays
responsive meanwhile (reads run in a worker thread); these bound how long until it shows. Results go
to benchmarks/results/tui_board.json; exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"board_read_s": 1.0, "retro_read_s": 2.0}
RESULTS = Path(__file__).resolve().parent / "results" / "tui_board.json"


def _tui_bench() -> Any:
    """benchmarks/tui.py as a module (its make_project builds the project)."""
    spec = importlib.util.spec_from_file_location("tui_bench", Path(__file__).with_name("tui.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_time(read: Any, runs: int = 3) -> float:
    """Median seconds of `runs` calls of `read` after one call that warms caches."""
    read()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(items: int, calls: int, sprint_items: int) -> dict[str, Any]:
    """Build the project, plan a sprint of every (items / sprint_items)-th item, time both reads."""
    from agentsprint.backlog.sprints import write_sprint
    from agentsprint.config import load_settings, offline_env
    from agentsprint.domain import Capacity, Sprint
    from agentsprint.tui import sprint_data

    offline_env()
    with tempfile.TemporaryDirectory(prefix="agentsprint-board-bench-") as folder:
        root = Path(folder) / "p"
        _tui_bench().make_project(root, items, calls)
        settings = load_settings(root, environ={})
        step = max(1, items // sprint_items)
        write_sprint(settings.backlog_dir, Sprint(name="S1", capacity=Capacity(tokens=10**9, usd=10_000.0),
                                                  items=[f"AS-{n}" for n in range(1, items + 1, step)]))
        return {"items": items, "model_calls": calls, "sprint_items": len(range(1, items + 1, step)),
                "board_read_s": round(median_time(lambda: sprint_data.board(settings)), 3),
                "retro_read_s": round(median_time(lambda: sprint_data.retro(settings)), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="500 items, 5,000 calls (CI)")
    args = parser.parse_args()
    sizes = (500, 5_000, 10) if args.small else (5_000, 50_000, 100)
    result = measure(*sizes)
    missed = [name for name, bound in TARGETS.items() if result[name] > bound]
    record = {**result, "targets": TARGETS, "missed": missed, "python": platform.python_version(),
              "machine": platform.machine()}
    if not args.small:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
