"""The TUI on a large project: 5,000 backlog items and 50,000 recorded model calls.

    python benchmarks/tui.py            # 5,000 items, 50,000 model calls
    python benchmarks/tui.py --small    # 500 items, 5,000 calls (CI; the same bounds)

Each measurement runs the app (headless, 120x40, through make_app) in a fresh process, once cold
(parse cache empty) and three times warm (as for any backlog used before); times are from the
process's start, imports included.
A filter keystroke is one key typed into the `/` filter until the table shows the matching rows and
the screen is idle again (typing `team-3 report 4` and erasing it: 30 keystrokes, from every row
down to a few). Pilot's round trip includes its own waits for the machine to go idle, so the same
round trip into a lone Input is measured in the same process and subtracted: `keystroke_median_s`
is what the backlog screen adds to a keystroke (both raw figures are recorded). `filter_*` time the
filter handler alone. First frame: process start to the first drawn screen (the backlog loads in a
worker after it); rows shown: until every row is in the table.
Peak RSS comes from wait4(). Results go to benchmarks/results/tui.json; exit code 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"first_frame_s": 1.0, "keystroke_median_s": 0.05, "peak_rss_mib": 200.0}
RESULTS = Path(__file__).resolve().parent / "results" / "tui.json"
QUERY = "team-3 report 4"
STATUSES = ["todo", "running", "awaiting_review", "done", "escalated", "failed", "stopped"]


def make_project(root: Path, items: int, calls: int) -> None:
    """A git repository with `items` item files and a store holding `calls` settled model calls."""
    from agentsprint.backlog.files import atomic_write, file_name
    from agentsprint.backlog.render import render_item
    from agentsprint.config import load_settings
    from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate
    from agentsprint.project import init_project

    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    init_project(root)
    dod = [parse_gate(e) for e in ("tests: pytest -q", "lint: ruff check src", "secrets", "review: human")]
    types, priorities = list(ItemType), list(Priority)
    an_hour_ago = time.time() - 3600
    for n in range(1, items + 1):
        item = Item(id=f"AS-{n}", title=f"Fix off-by-one in pagination of report {n}", type=types[n % len(types)],
                    priority=priorities[n % len(priorities)], value=n % 13, labels=["api", f"team-{n % 5}"],
                    scope=["src/**"], budget=Budget(tokens=500_000, usd=2.5, time="30m", rounds=3), dod=dod,
                    body=f"Report {n} shows one row too few.\n\n## Acceptance criteria\n- the last page is whole\n")
        path = root / "backlog" / file_name(item)
        atomic_write(path, render_item(item), durable=False)
        os.utime(path, (an_hour_ago, an_hour_ago))
    fill_store(load_settings(root, environ={}).database_url, items, calls)


def fill_store(url: str, items: int, calls: int) -> None:
    """Item states, budgets with spend, and `calls` settled model calls spread over the items."""
    from sqlalchemy import insert

    from agentsprint.store import Store
    from agentsprint.store.tables import BudgetRow, ItemStateRow, ModelCallRow

    rng = random.Random(7)
    now = time.time()
    states = [{"item_id": f"AS-{n}", "status": STATUSES[n % len(STATUSES)], "round": 1, "updated_at": now - n}
              for n in range(1, items + 1)]
    rows = [{"item_id": f"AS-{rng.randint(1, items)}", "role": rng.choice(["supervisor", "coder", "qa"]),
             "model": "openai/gpt-4.1-mini", "input_tokens": rng.randint(500, 9000),
             "output_tokens": rng.randint(50, 900), "usd": 0.001, "outcome": "ok", "started_at": now - 60,
             "finished_at": now - 59} for _ in range(calls)]
    spent: dict[str, list[float]] = {}
    for row in rows:
        total = spent.setdefault(row["item_id"], [0, 0.0])
        total[0] += row["input_tokens"] + row["output_tokens"]
        total[1] += row["usd"]
    budgets = [{"scope": f"item:{i}", "limit_tokens": 500_000, "limit_usd": 2.5, "spent_tokens": int(t),
                "spent_usd": u, "updated_at": now} for i, (t, u) in spent.items()]
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            for table, values in ((ItemStateRow, states), (ModelCallRow, rows), (BudgetRow, budgets)):
                conn.execute(insert(table.__table__), values)  # type: ignore[attr-defined]
    finally:
        store.close()


CHILD = """
import time, json, sys, asyncio, gc
started = time.perf_counter()
gc.set_threshold(100_000, 20, 20)  # as `agentsprint` (cli/main.py) sets it before opening the app
from agentsprint.config import load_settings, offline_env
offline_env()
from agentsprint.tui.app import make_app
from agentsprint.tui.screens.backlog import BacklogScreen

marks = {{}}
first_read = BacklogScreen.load


def load(screen):
    # The backlog screen starts its first read right after its first frame is drawn
    marks.setdefault("first_frame", time.perf_counter() - started)
    first_read(screen)


BacklogScreen.load = load


async def main():
    app = make_app(load_settings())
    async with app.run_test(size=(120, 40)) as pilot:
        while "first_frame" not in marks:
            await asyncio.sleep(0.001)
        first_frame = marks["first_frame"]
        screen = app.screen
        while len(screen.rows) < {items}:
            await asyncio.sleep(0.005)
        await pilot.pause()
        rows_shown = time.perf_counter() - started
        keys, handler = [], []
        if {keystrokes}:
            await pilot.press("slash")
            for key in [*{query!r}, *["backspace"] * len({query!r})]:
                begun = time.perf_counter()
                await pilot.press("space" if key == " " else key)
                keys.append(time.perf_counter() - begun)
            for end in range(len({query!r}) + 1):
                screen.filter_input.value = {query!r}[:end]
                begun = time.perf_counter()
                screen.show_rows()
                handler.append(time.perf_counter() - begun)
    print(json.dumps({{"first_frame_s": first_frame, "rows_shown_s": rows_shown, "keystrokes_s": keys,
                      "filter_s": handler, "bare_keystrokes_s": await bare(len(keys))}}))


async def bare(count):
    # The same Pilot round trip into a lone Input: what Pilot's idle waits cost on this machine
    from textual.app import App
    from textual.widgets import Input

    class Bare(App):
        def compose(self):
            yield Input()

    times = []
    async with Bare().run_test(size=(120, 40)) as pilot:
        for _ in range(count):
            begun = time.perf_counter()
            await pilot.press("a")
            times.append(time.perf_counter() - begun)
    return times

asyncio.run(main())
"""


def run_child(root: Path, items: int, keystrokes: bool) -> dict[str, object]:
    """One app process on `root`: its first paint, keystroke times and peak RSS."""
    code = CHILD.format(items=items, keystrokes=keystrokes, query=QUERY)
    process = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True,
                               env={k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")})
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the app process failed: {out}")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(root: Path, items: int) -> dict[str, float]:
    cold = run_child(root, items, keystrokes=False)
    warm = [run_child(root, items, keystrokes=i == 0) for i in range(3)]
    keys = sorted(float(k) for k in warm[0]["keystrokes_s"])  # type: ignore[attr-defined]
    handler = sorted(float(k) for k in warm[0]["filter_s"])  # type: ignore[attr-defined]
    bare = statistics.median(float(k) for k in warm[0]["bare_keystrokes_s"])  # type: ignore[attr-defined]
    return {"first_frame_s": round(statistics.median(float(w["first_frame_s"]) for w in warm), 3),  # type: ignore[arg-type]
            "rows_shown_cold_s": round(float(cold["rows_shown_s"]), 3),  # type: ignore[arg-type]
            "rows_shown_s": round(statistics.median(float(w["rows_shown_s"]) for w in warm), 3),  # type: ignore[arg-type]
            "keystroke_median_s": round(statistics.median(keys) - bare, 4),
            "keystroke_roundtrip_median_s": round(statistics.median(keys), 4),
            "bare_input_roundtrip_median_s": round(bare, 4),
            "keystroke_p90_s": round(keys[int(len(keys) * 0.9)], 4),
            "filter_median_s": round(statistics.median(handler), 4), "filter_max_s": round(max(handler), 4),
            "peak_rss_mib": max(float(w["peak_rss_mib"]) for w in [cold, *warm])}  # type: ignore[arg-type]


def missed(results: dict[str, float]) -> list[str]:
    return [f"{name}: {results[name]} >= {bound}" for name, bound in TARGETS.items() if results[name] >= bound]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="500 items and 5,000 model calls (for CI)")
    options = parser.parse_args()
    items, calls = (500, 5_000) if options.small else (5_000, 50_000)
    from agentsprint.config import offline_env

    offline_env()
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-") as folder:
        root = Path(folder) / "project"
        make_project(root, items, calls)
        results = measure(root, items)
    report = {"items": items, "model_calls": calls, "targets": TARGETS, "results": results,
              "missed": missed(results),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "load_avg_1m": round(os.getloadavg()[0], 2)},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not options.small:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{items} items, {calls} model calls, {os.cpu_count()} CPUs, load {report['machine']['load_avg_1m']}")
    for name, value in results.items():
        bound = TARGETS.get(name)
        print(f"  {name:<22}{value:>10}  {'< ' + str(bound) if bound else '(reported only)'}")
    for problem in report["missed"]:
        print(f"MISSED {problem}")
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
