"""Start-up cost of the CLI: `agentsprint --help`, and `agentsprint list` on a generated backlog.

    python benchmarks/startup.py            # 21 runs each, 1,000 items
    python benchmarks/startup.py --small    # 7 runs each, 200 items (CI)

Each command runs as a fresh process with stdout to a pipe (as in a script). Wall time and CPU time
(user + system, from wait4()) are medians over the runs; peak RSS comes from wait4() too. `list` is
measured warm (its parse cache filled by one earlier run, as for any backlog used before) and once
cold. The targets are checked on CPU time: on a shared machine the wall time of a process follows the
load (0.26 s for `--help` at load 4 on 2 cores, 0.2 s idle) while its CPU time does not; the wall
time is reported beside it. A full run records its results in benchmarks/results/startup.json
(`--small` does not overwrite them); the exit code is 1 when a target is missed.
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

TARGETS = {"help": {"seconds": 0.15}, "list": {"seconds": 0.25, "rss_mib": 60.0}}
RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
SCRIPT = Path(sys.executable).parent / "agentsprint"


def measure(args: list[str], cwd: Path, runs: int) -> dict[str, float]:
    """Median, min and max wall time and the largest peak RSS over `runs` processes."""
    samples = [run_once(args, cwd) for _ in range(runs)]
    times = [wall for wall, _, _ in samples]
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "cpu_median_s": round(statistics.median(c for _, c, _ in samples), 4),
            "peak_rss_mib": round(max(rss for _, _, rss in samples), 1)}


def run_once(args: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall time, CPU time and peak RSS of one process (reaped here so wait4() reports its own usage)."""
    started = time.perf_counter()
    process = subprocess.Popen([str(SCRIPT), *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"agentsprint {' '.join(args)} exited with {process.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def make_backlog(root: Path, count: int) -> None:
    """A git repository with `count` realistic items, written an hour ago (not being edited right now)."""
    from agentsprint.backlog import atomic_write
    from agentsprint.backlog.files import file_name
    from agentsprint.backlog.render import render_item
    from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate

    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run([str(SCRIPT), "init"], cwd=root, check=True, capture_output=True)
    dod = [parse_gate(e) for e in ("tests: pytest -q tests/test_pagination.py", "lint: ruff check src",
                                   "secrets", "review: human")]
    types, priorities = list(ItemType), list(Priority)
    an_hour_ago = time.time() - 3600
    for n in range(1, count + 1):
        item = Item(id=f"AS-{n}", title=f"Fix off-by-one in pagination of report {n}", type=types[n % len(types)],
                    priority=priorities[n % len(priorities)], value=n % 13, labels=["api", f"team-{n % 5}"],
                    depends_on=[f"AS-{n - 1}"] if n > 1 and n % 3 else [], scope=["src/pagination/**"],
                    budget=Budget(tokens=500_000, usd=2.5, time="30m", rounds=3), dod=dod,
                    body=f"What is wrong in report {n} and what done looks like.\n\n## Acceptance criteria\n"
                         "- the last page shows the last rows\n- no other page changes\n")
        path = root / "backlog" / file_name(item)
        atomic_write(path, render_item(item), durable=False)
        os.utime(path, (an_hour_ago, an_hour_ago))


def table(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'command':<14}{'CPU':>9}{'wall':>9}{'min':>9}{'max':>9}{'peak RSS':>11}  target (CPU)"]
    for name, row in results.items():
        target = TARGETS.get(name, {})
        goals = [f"< {target['seconds']} s"] if "seconds" in target else []
        goals += [f"< {target['rss_mib']:.0f} MiB"] if "rss_mib" in target else []
        lines.append(f"{name:<14}{row['cpu_median_s']:>8.3f}s{row['median_s']:>8.3f}s{row['min_s']:>8.3f}s"
                     f"{row['max_s']:>8.3f}s"
                     f"{row['peak_rss_mib']:>7.1f} MiB  {', '.join(goals) or '(reported only)'}")
    return "\n".join(lines)


def missed(results: dict[str, dict[str, float]]) -> list[str]:
    """Targets not met, in words."""
    problems = []
    for name, target in TARGETS.items():
        row = results[name]
        if row["cpu_median_s"] >= target["seconds"]:
            problems.append(f"{name}: median CPU time {row['cpu_median_s']:.3f} s >= {target['seconds']} s")
        if "rss_mib" in target and row["peak_rss_mib"] >= target["rss_mib"]:
            problems.append(f"{name}: peak RSS {row['peak_rss_mib']} MiB >= {target['rss_mib']} MiB")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="7 runs and 200 items (for CI)")
    parser.add_argument("--runs", type=int, help="processes per measurement")
    parser.add_argument("--items", type=int, help="backlog size for list")
    options = parser.parse_args()
    runs = options.runs or (7 if options.small else 21)
    items = options.items or (200 if options.small else 1000)
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-") as folder:
        root = Path(folder) / "project"
        make_backlog(root, items)
        results = {"list (cold)": measure(["list"], root, 1)}  # first run: parses every file
        results["help"] = measure(["--help"], root, runs)
        results["list"] = measure(["list"], root, runs)
    report = {"items": items, "runs": runs, "targets": TARGETS, "results": results, "missed": missed(results),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "load_avg_1m": round(os.getloadavg()[0], 2)},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not options.small:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{items} items, {runs} runs each, {os.cpu_count()} CPUs, load {report['machine']['load_avg_1m']}")
    print(table(results))
    for problem in report["missed"]:
        print(f"MISSED {problem}")
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
